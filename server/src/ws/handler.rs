//! `WsHandler`: the application's side of a WebSocket connection, and [`WsAdapter`], which runs
//! it as the core's `Handler<WsProtocol>`.
//!
//! The adapter turns the decoder's events into calls: `Open` -> `on_open`, text/binary ->
//! `on_message` (its returned reply is sent on the same connection), the peer's `Close` (already
//! echoed by the protocol) or the end of the TCP connection -> `on_close`, exactly once and only
//! after `on_open`. It also enforces the handshake time limit (a timer armed on connect) and the
//! closing handshake's time limit. Sends from other threads go through [`WsConn::handle`], a
//! `ConnHandle<WsProtocol>` whose `send` takes a `WsReply<'static>`.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::connection::{Conn, ConnHandle, ConnId};
use crate::handler::{CloseReason, Handler};

use super::handshake::HandshakeRequest;
use super::message::{WsMessage, WsReply};
use super::protocol::WsProtocol;

/// A whole data message, as the application receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsData<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

/// How a WebSocket connection ended, as `on_close` is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsClose {
    /// The peer sent a Close frame (already answered). `code` is `None` for an empty Close.
    Peer { code: Option<u16>, reason: String },
    /// The connection ended without a closing handshake from the peer (the core's reason: the
    /// peer dropped TCP, a protocol error failed it, idle timeout, shutdown, ...).
    Connection(CloseReason),
}

/// The application's callbacks for WebSocket connections (one value serves all of them).
pub trait WsHandler: Send + Sync + 'static {
    /// The upgrade succeeded.
    fn on_open(&self, _conn: &mut WsConn<'_, '_>, _request: &HandshakeRequest) {}

    /// A whole message arrived; a returned reply is sent on this connection.
    fn on_message<'a>(&self, conn: &mut WsConn<'_, '_>, message: WsData<'a>)
        -> Option<WsReply<'a>>;

    /// The connection ended (called once, only for connections that were opened).
    fn on_close(&self, _conn: &mut WsConn<'_, '_>, _close: WsClose) {}
}

/// Per-connection state of the adapter (kept in the core's context slot).
struct WsConnState {
    /// Set when the handshake completes; read by the handshake timer.
    opened: Arc<AtomicBool>,
    close_reported: bool,
    /// The application's own state ([`WsConn::set_context`]).
    user: Option<Box<dyn Any + Send>>,
}

/// A WebSocket connection as the handler sees it on its loop thread.
pub struct WsConn<'a, 'c> {
    conn: &'a mut Conn<'c, WsProtocol>,
    close_timeout: Duration,
}

impl WsConn<'_, '_> {
    /// The connection's id.
    pub fn id(&self) -> ConnId {
        self.conn.id()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> std::net::SocketAddr {
        self.conn.peer_addr()
    }

    /// A handle for sending from any thread (`handle.send(WsReply::text("..."))`).
    pub fn handle(&mut self) -> ConnHandle<WsProtocol> {
        self.conn.handle()
    }

    /// Sends a message now (packed into the output buffer).
    pub fn send(&mut self, reply: WsReply<'_>) {
        self.conn.send(reply);
    }

    /// Starts the closing handshake with `code`; the TCP connection is closed when the peer
    /// answers, or after `WebSocketConfig::close_timeout` if it does not.
    pub fn close(&mut self, code: u16, reason: &str) {
        self.conn.send(WsReply::Close {
            code,
            reason: reason.into(),
        });
        let handle = self.conn.handle();
        self.conn
            .loop_handle()
            .run_after(self.close_timeout, move || handle.close());
    }

    /// Stores the application's per-connection state, replacing any previous value.
    pub fn set_context<T: Any + Send>(&mut self, value: T) {
        if let Some(state) = self.conn.context_mut::<WsConnState>() {
            state.user = Some(Box::new(value));
        }
    }

    /// The application's state, if it is a `T`.
    pub fn context<T: Any + Send>(&self) -> Option<&T> {
        self.conn
            .context::<WsConnState>()?
            .user
            .as_ref()?
            .downcast_ref()
    }

    /// The application's state, mutably, if it is a `T`.
    pub fn context_mut<T: Any + Send>(&mut self) -> Option<&mut T> {
        self.conn
            .context_mut::<WsConnState>()?
            .user
            .as_mut()?
            .downcast_mut()
    }

    /// Removes and returns the application's state if it is a `T`.
    pub fn take_context<T: Any + Send>(&mut self) -> Option<T> {
        let state = self.conn.context_mut::<WsConnState>()?;
        match state.user.take()?.downcast::<T>() {
            Ok(value) => Some(*value),
            Err(other) => {
                state.user = Some(other);
                None
            }
        }
    }
}

/// Runs a [`WsHandler`] as the core's `Handler<WsProtocol>`:
/// `Server::new(options, WsProtocol::new(config), WsAdapter::new(handler, &config))`.
pub struct WsAdapter<H> {
    handler: H,
    handshake_timeout: Duration,
    close_timeout: Duration,
}

impl<H: WsHandler> WsAdapter<H> {
    /// Wraps `handler`, taking the time limits from `config`.
    pub fn new(handler: H, config: &super::WebSocketConfig) -> Self {
        WsAdapter {
            handler,
            handshake_timeout: config.handshake_timeout,
            close_timeout: config.close_timeout,
        }
    }

    /// The wrapped handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    fn report_close(&self, conn: &mut Conn<'_, WsProtocol>, close: WsClose) {
        let Some(state) = conn.context_mut::<WsConnState>() else {
            return;
        };
        if !state.opened.load(Ordering::Relaxed) || state.close_reported {
            return;
        }
        state.close_reported = true;
        let mut ws = WsConn {
            conn,
            close_timeout: self.close_timeout,
        };
        self.handler.on_close(&mut ws, close);
    }
}

impl<H: WsHandler> Handler<WsProtocol> for WsAdapter<H> {
    fn on_connect(&self, conn: &mut Conn<'_, WsProtocol>) {
        let opened = Arc::new(AtomicBool::new(false));
        if !self.handshake_timeout.is_zero() {
            let handle = conn.handle();
            let flag = Arc::clone(&opened);
            // A slow or silent client must not hold a connection slot forever.
            conn.loop_handle()
                .run_after(self.handshake_timeout, move || {
                    if !flag.load(Ordering::Relaxed) {
                        handle.close();
                    }
                });
        }
        conn.set_context(WsConnState {
            opened,
            close_reported: false,
            user: None,
        });
    }

    fn on_message<'a>(
        &self,
        conn: &mut Conn<'_, WsProtocol>,
        message: WsMessage<'a>,
    ) -> Option<WsReply<'a>> {
        let data = match message {
            WsMessage::Open(request) => {
                if let Some(state) = conn.context_mut::<WsConnState>() {
                    state.opened.store(true, Ordering::Relaxed);
                }
                let mut ws = WsConn {
                    conn,
                    close_timeout: self.close_timeout,
                };
                self.handler.on_open(&mut ws, request);
                return None;
            }
            WsMessage::Close { code, reason } => {
                self.report_close(
                    conn,
                    WsClose::Peer {
                        code,
                        reason: reason.to_owned(),
                    },
                );
                // The Close echo is in the output buffer; close TCP once it is flushed
                // (RFC 6455 §7.1.1: the server closes the TCP connection first).
                conn.close();
                return None;
            }
            WsMessage::Text(text) => WsData::Text(text),
            WsMessage::Binary(bytes) => WsData::Binary(bytes),
        };
        let mut ws = WsConn {
            conn,
            close_timeout: self.close_timeout,
        };
        self.handler.on_message(&mut ws, data)
    }

    fn on_close(&self, conn: &mut Conn<'_, WsProtocol>, reason: CloseReason) {
        self.report_close(conn, WsClose::Connection(reason));
    }
}
