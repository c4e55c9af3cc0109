//! Timers of one loop: user callbacks from [`LoopHandle::run_after`](crate::LoopHandle::run_after)
//! and [`run_every`](crate::LoopHandle::run_every), plus the loop's own deadlines (idle sweep,
//! close linger, TLS handshake deadlines, the accept back-off of a loop that accepts). A binary
//! heap ordered by deadline; the loop polls with the earliest deadline as timeout and runs what
//! expired on its own thread. Cancelled user timers are dropped lazily when they reach the top
//! of the heap.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use crate::connection::ConnId;

/// Identifies a user timer; pass it to [`LoopHandle::cancel`](crate::LoopHandle::cancel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub(crate) u64);

/// A user callback, run on the loop thread.
pub(crate) enum TimerCallback {
    Once(Box<dyn FnOnce() + Send>),
    Every {
        interval: Duration,
        callback: Box<dyn FnMut() + Send>,
    },
}

/// What a heap entry stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    User(TimerId),
    IdleSweep,
    Linger(ConnId),
    /// The TLS handshake deadline of a connection (ignored if it completed).
    Handshake(ConnId),
    /// The end of an accept back-off (out of descriptors) of a loop that accepts for itself.
    AcceptRetry,
}

/// The loop's timer heap.
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64, TimerKind)>>,
    callbacks: HashMap<TimerId, TimerCallback>,
    /// Insertion counter: equal deadlines fire in insertion order.
    sequence: u64,
}

impl Timers {
    pub(crate) fn schedule(&mut self, deadline: Instant, kind: TimerKind) {
        self.sequence += 1;
        self.heap.push(Reverse((deadline, self.sequence, kind)));
    }

    pub(crate) fn add_user(&mut self, id: TimerId, deadline: Instant, callback: TimerCallback) {
        self.callbacks.insert(id, callback);
        self.schedule(deadline, TimerKind::User(id));
    }

    pub(crate) fn cancel(&mut self, id: TimerId) {
        self.callbacks.remove(&id);
    }

    /// Takes a user callback out to run it (put an `Every` back with [`add_user`](Self::add_user)).
    pub(crate) fn take_user(&mut self, id: TimerId) -> Option<TimerCallback> {
        self.callbacks.remove(&id)
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((deadline, _, kind))) = self.heap.peek() {
            if let TimerKind::User(id) = kind {
                if !self.callbacks.contains_key(id) {
                    self.heap.pop();
                    continue;
                }
            }
            return Some(*deadline);
        }
        None
    }

    /// The next entry whose deadline is at or before `now`, with its deadline.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<(Instant, TimerKind)> {
        let deadline = self.next_deadline()?;
        if deadline > now {
            return None;
        }
        self.heap.pop().map(|Reverse((d, _, kind))| (d, kind))
    }

    /// Number of live user timers.
    #[cfg(test)]
    pub(crate) fn user_count(&self) -> usize {
        self.callbacks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_deadline_order_and_skips_cancelled() {
        let mut timers = Timers::default();
        let t0 = Instant::now();
        timers.add_user(
            TimerId(1),
            t0 + Duration::from_millis(20),
            TimerCallback::Once(Box::new(|| {})),
        );
        timers.add_user(
            TimerId(2),
            t0 + Duration::from_millis(10),
            TimerCallback::Once(Box::new(|| {})),
        );
        timers.schedule(t0 + Duration::from_millis(15), TimerKind::IdleSweep);
        timers.cancel(TimerId(2));
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_millis(15)));
        assert!(timers.pop_expired(t0).is_none());
        let later = t0 + Duration::from_millis(30);
        assert_eq!(timers.pop_expired(later).unwrap().1, TimerKind::IdleSweep);
        assert_eq!(
            timers.pop_expired(later).unwrap().1,
            TimerKind::User(TimerId(1))
        );
        assert!(timers.pop_expired(later).is_none());
        assert_eq!(timers.user_count(), 1);
    }
}
