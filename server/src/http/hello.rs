//! [`HelloWorld`]: the handler of the `gev-http` benchmark server. GET and POST (any path)
//! answer `200 Hello, World!`, HEAD the same head without a body, anything else `405`; when the
//! client asked to close (`Connection: close`, or HTTP/1.0 without keep-alive) the reply
//! carries `Connection: close` and the connection closes once it is flushed.

use crate::{CloseReason, Conn, Handler};

use super::{HttpProtocol, Method, Request, Response};

/// Answers every request with the greeting (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct HelloWorld;

impl Handler<HttpProtocol> for HelloWorld {
    fn on_message<'a>(
        &self,
        conn: &mut Conn<'_, HttpProtocol>,
        request: Request<'a>,
    ) -> Option<Response<'a>> {
        let close = !request.keep_alive;
        if close {
            // The reply below is still packed and flushed before the close.
            conn.close();
        }
        Some(match request.method {
            Method::Get | Method::Post => Response::Hello {
                close,
                head_only: false,
            },
            Method::Head => Response::Hello {
                close,
                head_only: true,
            },
            Method::Other => Response::MethodNotAllowed { close },
        })
    }

    fn on_close(&self, conn: &mut Conn<'_, HttpProtocol>, reason: CloseReason) {
        if reason == CloseReason::Protocol {
            tracing::debug!(peer = %conn.peer_addr(), "closed after a bad request");
        }
    }
}
