//! The few operating-system calls the generator makes beyond sockets: raising the open-file
//! limit (10 000 connections need 10 000 descriptors), reading a thread's CPU time (for the
//! self-check), a `timerfd` that wakes a worker at the exact intended send time (epoll's own
//! timeout has millisecond granularity, which would add up to 1 ms of generator lag to every
//! open-loop request), and the timer slack that keeps that wake-up precise.
//!
//! Every `unsafe` block here is a plain libc call on memory owned by the caller; each carries
//! the argument for its soundness.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// What happened to the open-file limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NofileOutcome {
    /// The soft limit was already high enough.
    Enough { soft: u64 },
    /// The soft limit was raised.
    Raised { from: u64, to: u64 },
}

/// The hard limit is below what the run needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the open-file hard limit is {hard} but {needed} descriptors are needed")]
pub struct NofileTooLow {
    pub hard: u64,
    pub needed: u64,
}

/// Raise the soft `RLIMIT_NOFILE` to at least `needed` (up to the hard limit).
pub fn raise_nofile(needed: u64) -> Result<NofileOutcome, NofileTooLow> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Ok(NofileOutcome::Enough { soft: 0 });
    }
    let (soft, hard): (u64, u64) = (limit.rlim_cur, limit.rlim_max);
    if soft >= needed {
        return Ok(NofileOutcome::Enough { soft });
    }
    if hard < needed {
        return Err(NofileTooLow { hard, needed });
    }
    let raised = libc::rlimit {
        rlim_cur: needed as libc::rlim_t,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: `raised` is a valid rlimit read by the call; the kernel checks the values.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(NofileTooLow { hard, needed });
    }
    Ok(NofileOutcome::Raised {
        from: soft,
        to: needed,
    })
}

/// CPU time the calling thread has used so far.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Ask the kernel to fire this thread's timers within 1 µs of their deadline (the default slack
/// is 50 µs). Best effort: failure only makes wake-ups less punctual.
pub fn set_precise_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong);
    }
}

/// A one-shot monotonic `timerfd` registered with a worker's `mio::Poll`.
#[derive(Debug)]
pub struct SendTimer {
    file: File,
}

impl SendTimer {
    pub fn new() -> io::Result<SendTimer> {
        // SAFETY: timerfd_create takes no pointers; a non-negative result is a fresh descriptor.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by timerfd_create and nothing else owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(SendTimer {
            file: File::from(owned),
        })
    }

    /// Fire once after `delay` (at least 1 ns), replacing any earlier setting.
    pub fn arm(&self, delay: Duration) -> io::Result<()> {
        let delay = delay.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: delay.as_secs() as libc::time_t,
                tv_nsec: delay.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `spec` is a valid itimerspec read by the call; the old value pointer is null,
        // which timerfd_settime allows.
        let rc =
            unsafe { libc::timerfd_settime(self.file.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Consume the expiration count so the descriptor stops being readable.
    pub fn clear(&self) {
        let mut count = [0u8; 8];
        let _ = (&self.file).read(&mut count);
    }

    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn nofile_already_enough_for_small_need() {
        assert!(matches!(raise_nofile(16), Ok(NofileOutcome::Enough { .. })));
    }

    #[test]
    fn nofile_reports_hard_limit() {
        assert!(matches!(
            raise_nofile(u64::MAX / 2),
            Err(NofileTooLow { .. })
        ));
    }

    #[test]
    fn thread_cpu_time_advances_with_work() {
        let before = thread_cpu_time();
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(20) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(thread_cpu_time() > before);
    }

    #[test]
    fn timer_fires_and_clears() {
        let timer = SendTimer::new().unwrap();
        timer.arm(Duration::from_millis(1)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let mut count = [0u8; 8];
        assert_eq!((&timer.file).read(&mut count).unwrap(), 8);
        timer.clear();
        assert!((&timer.file).read(&mut count).is_err());
    }
}
