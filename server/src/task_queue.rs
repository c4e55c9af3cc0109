//! The cross-thread door into a loop: a mutex-protected batch of tasks plus a `mio::Waker`.
//!
//! Wakeups are collapsed: only the first push after the loop drained the queue writes to the
//! waker (one `eventfd` write syscall); later pushes see the `notified` flag already set and only
//! append. A push from the loop's own thread never wakes (the loop drains before it polls again).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A multi-producer, single-consumer queue that wakes its consumer's `mio::Poll`.
pub(crate) struct TaskQueue<T> {
    items: Mutex<Vec<T>>,
    /// Set by the first push after a drain; cleared by the drain.
    notified: AtomicBool,
    waker: mio::Waker,
}

impl<T> TaskQueue<T> {
    pub(crate) fn new(waker: mio::Waker) -> Self {
        TaskQueue {
            items: Mutex::new(Vec::new()),
            notified: AtomicBool::new(false),
            waker,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<T>> {
        // No code panics while holding the lock, so a poisoned lock still holds a valid Vec.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Push from any thread other than the consumer's; wakes the consumer if it was not
    /// already notified since its last drain.
    pub(crate) fn push(&self, item: T) {
        self.lock().push(item);
        if !self.notified.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.waker.wake() {
                tracing::error!(error = %e, "cannot wake event loop");
            }
        }
    }

    /// Push from the consumer's own thread: no wakeup, the consumer checks
    /// [`is_notified`](Self::is_notified) before it polls.
    pub(crate) fn push_local(&self, item: T) {
        self.lock().push(item);
        self.notified.store(true, Ordering::Release);
    }

    /// True when tasks may be waiting.
    pub(crate) fn is_notified(&self) -> bool {
        self.notified.load(Ordering::Acquire)
    }

    /// Moves every waiting task into `into` (which should be empty, its allocation is reused).
    pub(crate) fn drain(&self, into: &mut Vec<T>) {
        // Clear the flag before taking the items: a push that lands after the take then sees
        // `false` and wakes us again, so no task is left waiting without a wakeup.
        self.notified.store(false, Ordering::SeqCst);
        std::mem::swap(&mut *self.lock(), into);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll, Token};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn wakes_once_per_drain_and_keeps_order() {
        let mut poll = Poll::new().unwrap();
        let waker = mio::Waker::new(poll.registry(), Token(7)).unwrap();
        let queue = Arc::new(TaskQueue::new(waker));
        let producer = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    queue.push(i);
                }
            })
        };
        producer.join().unwrap();
        let mut events = Events::with_capacity(8);
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(events.iter().count(), 1, "1000 pushes, one wakeup");
        let mut got = Vec::new();
        queue.drain(&mut got);
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
        assert!(!queue.is_notified());
        queue.push_local(5);
        assert!(queue.is_notified());
    }
}
