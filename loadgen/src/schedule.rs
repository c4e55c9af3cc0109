//! When each request should be sent: the first step of the data path.
//!
//! *Closed loop* (no `-R`): a connection keeps `--pipeline` requests outstanding and sends the
//! next one as soon as a reply arrives; the intended send time is the moment it could send.
//!
//! *Open loop* (`-R RATE`): requests are due on a fixed timetable whatever the server does, as
//! in wrk2. The total rate is spread evenly over the connections: each connection sends every
//! `connections / rate` seconds, and connection `i` is offset by `i / rate` so the sends of all
//! connections interleave instead of arriving in bursts. Latency is measured from the *intended*
//! time of each request, so a server that stalls is charged for every request it delayed
//! (no coordinated omission).

/// The run's sending discipline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    Closed {
        pipeline: usize,
    },
    Open {
        /// Nanoseconds between two sends of one connection.
        interval_ns: f64,
        /// Nanoseconds between the first sends of connection i and i+1.
        stagger_ns: f64,
        /// Most requests one connection may have outstanding.
        pipeline: usize,
    },
}

/// One connection's position in the open-loop timetable.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timetable {
    /// Intended time of request 0, ns on the run clock; `None` until the connection first opens.
    origin: Option<u64>,
    /// Requests already sent from this timetable.
    sent: u64,
}

impl Schedule {
    pub fn new(rate: Option<f64>, connections: usize, pipeline: usize) -> Schedule {
        match rate {
            None => Schedule::Closed { pipeline },
            Some(rate) => Schedule::Open {
                interval_ns: connections as f64 * 1e9 / rate,
                stagger_ns: 1e9 / rate,
                pipeline,
            },
        }
    }

    pub fn pipeline(&self) -> usize {
        match *self {
            Schedule::Closed { pipeline } | Schedule::Open { pipeline, .. } => pipeline,
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self, Schedule::Open { .. })
    }
}

impl Timetable {
    /// Start the timetable of connection `index` when it first opens at `now`. Later reconnects
    /// keep the timetable: requests that fell due while the connection was down are sent late
    /// and charged for it.
    pub fn start(&mut self, schedule: &Schedule, index: usize, now: u64) {
        if let (
            None,
            Schedule::Open {
                interval_ns,
                stagger_ns,
                ..
            },
        ) = (self.origin, schedule)
        {
            let offset = (index as f64 * stagger_ns) % interval_ns;
            self.origin = Some(now + offset as u64);
        }
    }

    /// Intended time of the next request (open loop, once started).
    #[inline]
    pub fn next_due(&self, schedule: &Schedule) -> Option<u64> {
        match (self.origin, schedule) {
            (Some(origin), Schedule::Open { interval_ns, .. }) => {
                Some(origin + (self.sent as f64 * interval_ns) as u64)
            }
            _ => None,
        }
    }

    /// The next request was sent.
    #[inline]
    pub fn advance(&mut self) {
        self.sent += 1;
    }

    /// `n` more requests were sent.
    #[inline]
    pub fn advance_by(&mut self, n: u64) {
        self.sent += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_spreads_connections_evenly() {
        // 1000 req/s over 4 connections: each sends every 4 ms, offset by 1 ms.
        let schedule = Schedule::new(Some(1000.0), 4, 1);
        let mut due = Vec::new();
        for index in 0..4 {
            let mut t = Timetable::default();
            t.start(&schedule, index, 0);
            for _ in 0..3 {
                due.push(t.next_due(&schedule).unwrap());
                t.advance();
            }
        }
        due.sort_unstable();
        let expected: Vec<u64> = (0..12).map(|i| i * 1_000_000).collect();
        assert_eq!(due, expected);
    }

    #[test]
    fn restart_keeps_the_timetable() {
        let schedule = Schedule::new(Some(100.0), 1, 1);
        let mut t = Timetable::default();
        t.start(&schedule, 0, 5);
        t.advance();
        t.start(&schedule, 0, 1_000_000_000);
        assert_eq!(t.next_due(&schedule), Some(5 + 10_000_000));
    }

    #[test]
    fn closed_loop_has_no_timetable() {
        let schedule = Schedule::new(None, 4, 2);
        let mut t = Timetable::default();
        t.start(&schedule, 0, 0);
        assert_eq!(t.next_due(&schedule), None);
        assert_eq!(schedule.pipeline(), 2);
    }
}
