//! The worker's TLS steps (a child module of `worker`, so the data path there stays as it was):
//! driving a connection's handshake from readiness events, and the handshake-only mode.
//!
//! A TLS connection goes connect -> **handshake** -> (WebSocket upgrade) -> open. While the
//! handshake is in flight every event on the connection goes to [`Worker::tls_event`], which
//! lets rustls read, process and write as far as the socket allows and returns to the loop
//! when it would block. When the handshake completes the worker records its time (from TCP
//! connected), what it negotiated and whether it resumed a session, then continues as a plain
//! connection would after its TCP connect.
//!
//! Handshake-only (`--handshake-only`): each connection slot opens a connection, handshakes,
//! sends close_notify and closes, then starts again, one handshake at a time. In a closed loop
//! it starts again at once; with `-R` the slot follows the open-loop timetable, and a
//! handshake's latency runs from its intended start, so a slow server is charged for every
//! handshake it delayed (no coordinated omission). The handshake is the "request": it is
//! counted as sent when its connect starts and completed when the handshake completes. With
//! resumption on, a TLS 1.3 connection stays open until its session ticket has arrived (the
//! server sends it after the handshake), so the next handshake can resume; that wait is not
//! part of the measured latency.

use std::cmp::Reverse;

use super::Worker;
use crate::conn::{Pending, Phase};
use crate::error_kind::ErrorKind;
use crate::tls::AlpnMismatch;

impl Worker {
    /// Whether this event belongs to the TLS layer rather than to the framing: the handshake is
    /// in flight, or (handshake-only) the finished connection waits for its session ticket.
    pub(super) fn tls_owns_event(&self, id: usize) -> bool {
        let Some(conn) = self.slots[id].conn.as_ref() else {
            return false;
        };
        conn.stream.tls().is_some()
            && (conn.stream.tls_handshaking()
                || (conn.phase == Phase::Open && self.shared.config.handshake_only()))
    }

    /// Advance a connection's TLS handshake (or its wait for a ticket) after an event.
    pub(super) fn tls_event(&mut self, id: usize, wake: u64) {
        let now = self.shared.now();
        let Some(conn) = self.slots[id].conn.as_mut() else {
            return;
        };
        let Some(tls) = conn.stream.tls_mut() else {
            return;
        };
        if conn.phase == Phase::Open {
            // Handshake-only, waiting for the session ticket.
            match tls.pump() {
                Ok(true) if !tls.ticket_settled() => {}
                Ok(_) => self.finish_handshake_only(id, now),
                Err(e) => self.close(id, ErrorKind::from_io(&e), now),
            }
            return;
        }
        match tls.drive_handshake() {
            Ok(false) => return,
            Ok(true) => {}
            Err(e) => {
                self.close(id, ErrorKind::from_tls_handshake(&e), now);
                return;
            }
        }
        let info = tls.info();
        let handshake_ns = now.saturating_sub(tls.handshake_started);
        let tcp_ns = tls.handshake_started.saturating_sub(conn.started);
        self.tls.handshake_done(handshake_ns, &info);
        let options = self.shared.config.tls.as_ref().map(|t| &t.options);
        if let (Some(required), Some(chosen)) =
            (options.and_then(|o| o.required_alpn.as_ref()), &info.alpn)
        {
            if chosen != required {
                let error = AlpnMismatch {
                    chosen: chosen.clone(),
                    required: required.clone(),
                };
                let error = std::io::Error::other(error);
                self.close(id, ErrorKind::from_tls_handshake(&error), now);
                return;
            }
        }
        if self.shared.config.handshake_only() {
            self.handshake_completed(id, now, tcp_ns);
            return;
        }
        // `connect_us` is the TCP connect (plus a WebSocket upgrade) without the TLS handshake,
        // which `tls.handshake_us` reports on its own.
        conn.started += handshake_ns;
        self.on_tcp_connected(id, wake);
    }

    /// Handshake-only: when slot `id` may start its next handshake. `Some(intended)` to start
    /// now (closed loop: now; open loop: its due time, possibly past); `None` when it must wait
    /// (re-queued for its due time) or is done (window over, quota used).
    pub(super) fn handshake_due(&mut self, id: usize, now: u64) -> Option<u64> {
        let shared = &self.shared;
        let slot = &mut self.slots[id];
        if shared.end.is_some_and(|end| now >= end) {
            return None;
        }
        let intended = if shared.schedule.is_open() {
            slot.timetable.start(&shared.schedule, slot.index, now);
            let due = slot.timetable.next_due(&shared.schedule)?;
            if due > now {
                self.connect_queue.push(Reverse((due, id)));
                return None;
            }
            due
        } else {
            now
        };
        if shared.end.is_some_and(|end| intended >= end) {
            return None;
        }
        if intended >= shared.measure_start {
            match slot.quota {
                Some(0) => return None,
                Some(q) => {
                    slot.quota = Some(q - 1);
                    self.quota_left -= 1;
                }
                None => {}
            }
        }
        slot.timetable.advance();
        Some(intended)
    }

    /// Handshake-only: the connect for a handshake intended at `intended` has started.
    pub(super) fn handshake_begun(&mut self, id: usize, intended: u64, now: u64) {
        let measured = intended >= self.shared.measure_start;
        let Some(conn) = self.slots[id].conn.as_mut() else {
            return;
        };
        conn.pending.push(Pending {
            intended,
            sent: now,
            measured,
            count: 1,
        });
        if measured {
            self.measured_in_flight += 1;
            self.recorder.sent(0);
        }
    }

    /// Handshake-only: the handshake completed; record it, then close (at once, or once the
    /// session ticket is in).
    fn handshake_completed(&mut self, id: usize, now: u64, tcp_ns: u64) {
        let resume = self
            .shared
            .config
            .tls
            .as_ref()
            .is_some_and(|t| t.options.resume);
        let slot = &mut self.slots[id];
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        conn.phase = Phase::Open;
        self.connecting -= 1;
        self.recorder.connected(tcp_ns);
        slot.failures = 0;
        if let Some(handshake) = conn.pending.pop() {
            if handshake.measured {
                self.measured_in_flight -= 1;
                self.recorder.reply(
                    now.saturating_sub(handshake.intended),
                    now.saturating_sub(handshake.sent),
                );
            }
        }
        let Some(tls) = conn.stream.tls_mut() else {
            return;
        };
        // Records that came with the server's last flight (a TLS 1.2 ticket, an early TLS 1.3
        // one) may still be in the socket; edge-triggered epoll would not report them again.
        let pumped = tls.pump();
        match pumped {
            Ok(true) if resume && !tls.ticket_settled() => {}
            Ok(_) => self.finish_handshake_only(id, now),
            Err(e) => self.close(id, ErrorKind::from_io(&e), now),
        }
    }

    /// Handshake-only: the server sent no session ticket within `--timeout`; close without
    /// counting an error (the next handshake is a full one) but count it.
    pub(super) fn ticket_wait_expired(&mut self, id: usize, now: u64) {
        self.tls.tickets_missing += 1;
        self.finish_handshake_only(id, now);
    }

    /// Handshake-only: send close_notify, close, and let the slot start its next handshake.
    fn finish_handshake_only(&mut self, id: usize, now: u64) {
        let Some(mut conn) = self.slots[id].conn.take() else {
            return;
        };
        if let Some(tls) = conn.stream.tls_mut() {
            tls.close_notify();
        }
        // Dropping the socket closes it and removes it from the poll.
        drop(conn);
        self.connect_queue.push(Reverse((now, id)));
    }
}
