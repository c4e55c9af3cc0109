//! Adversarial clients (`--misbehave KIND=FRACTION[,...]`): a share of the run's connections
//! that break the rules on purpose while the others run the normal workload.
//!
//! Where it sits: beside the data path, not in it. `cli` parses the mix ([`Mix::parse`]), `run`
//! gives the well-behaved workers only the well-behaved connections and starts one extra thread,
//! [`driver`], that owns every misbehaving connection. Misbehaving connections therefore never
//! touch the workers' recorders: the well-behaved latency and throughput in the summary are those
//! of well-behaved connections alone, and the misbehaving ones are reported apart, per kind, in
//! [`crate::summary::Misbehaving`].
//!
//! Each kind, and what a robust server does about it, is documented on [`Kind`] and in
//! loadgen/README.md ("Misbehaving clients").

pub mod driver;
pub mod garbage;

use std::fmt;
use std::time::Duration;

/// Default pace of `slow-write`: one byte per second.
pub const DEFAULT_SLOW_WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// One way a client can misbehave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Writes requests as fast as the socket takes them and never reads. A robust server stops
    /// reading (backpressure) or closes once its output for the connection reaches a bound; it
    /// neither buffers without limit nor spins on a socket that is always readable.
    NeverRead,
    /// Writes requests as fast as the socket takes them and reads at most this many bytes per
    /// second. A robust server bounds the output it holds per connection, as for `never-read`.
    SlowRead { bytes_per_sec: u64 },
    /// Slowloris: writes each message one byte per interval (the WebSocket upgrade too). A
    /// robust server bounds how long a handshake or request may take, or at least how many
    /// connections it holds, so slow writers cannot use up its descriptors.
    SlowWrite { interval: Duration },
    /// Writes half a message, then resets the connection (SO_LINGER 0, so the close sends RST),
    /// and reconnects. A robust server frees the connection at once: no descriptor leak, no
    /// connection left in CLOSE_WAIT.
    Reset,
    /// Writes one message, shuts down its write side, and keeps reading until the server closes.
    /// A robust server answers what it got, then closes; it does not spin on the end of input or
    /// keep the half-closed connection forever.
    HalfClose,
    /// Writes bytes that break the framing (a huge length prefix, an invalid WebSocket frame, a
    /// request that is not HTTP; for raw TCP, which has no framing, binary noise). A robust
    /// server closes the connection (WebSocket: close 1002; HTTP: 400 then close) and keeps
    /// serving everyone else.
    Garbage,
    /// Connects and then does nothing. A robust server closes it after an idle (or handshake)
    /// timeout so abandoned connections cannot pile up; the client reconnects when closed.
    Abandon,
    /// Connects, sends one message, reads the reply, closes, and starts again. A robust server
    /// accepts and frees connections at that pace without growing memory or descriptors.
    Churn,
}

/// Every kind name, in the order of the README.
pub const KIND_NAMES: [&str; 8] = [
    "never-read",
    "slow-read",
    "slow-write",
    "reset",
    "half-close",
    "garbage",
    "abandon",
    "churn",
];

impl Kind {
    /// The name on the command line and in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Kind::NeverRead => "never-read",
            Kind::SlowRead { .. } => "slow-read",
            Kind::SlowWrite { .. } => "slow-write",
            Kind::Reset => "reset",
            Kind::HalfClose => "half-close",
            Kind::Garbage => "garbage",
            Kind::Abandon => "abandon",
            Kind::Churn => "churn",
        }
    }

    /// Parse `NAME` or `NAME=PARAM` (only `slow-read` needs a parameter, `slow-write` takes an
    /// optional interval).
    fn parse(text: &str) -> Result<Kind, MixError> {
        let (name, param) = match text.split_once('=') {
            Some((name, param)) => (name.trim(), Some(param.trim())),
            None => (text.trim(), None),
        };
        let no_param = |kind: Kind| match param {
            None => Ok(kind),
            Some(p) => Err(MixError(format!(
                "--misbehave kind {name} takes no parameter (got {name}={p})"
            ))),
        };
        match name {
            "never-read" => no_param(Kind::NeverRead),
            "reset" => no_param(Kind::Reset),
            "half-close" => no_param(Kind::HalfClose),
            "garbage" => no_param(Kind::Garbage),
            "abandon" => no_param(Kind::Abandon),
            "churn" => no_param(Kind::Churn),
            "slow-read" => {
                let usage = || {
                    MixError(format!(
                        "--misbehave slow-read needs a rate: write slow-read=BYTES_PER_S=FRACTION, e.g. slow-read=100=0.05 (got {text:?})"
                    ))
                };
                let bytes_per_sec: u64 = param.ok_or_else(usage)?.parse().map_err(|_| usage())?;
                if bytes_per_sec == 0 {
                    return Err(usage());
                }
                Ok(Kind::SlowRead { bytes_per_sec })
            }
            "slow-write" => match param {
                None => Ok(Kind::SlowWrite {
                    interval: DEFAULT_SLOW_WRITE_INTERVAL,
                }),
                Some(p) => {
                    let interval = humantime::parse_duration(p).map_err(|_| {
                        MixError(format!(
                            "--misbehave slow-write interval {p:?} is not a time: write e.g. slow-write=500ms=0.05"
                        ))
                    })?;
                    if interval.is_zero() {
                        return Err(MixError(
                            "--misbehave slow-write interval must be longer than 0".into(),
                        ));
                    }
                    Ok(Kind::SlowWrite { interval })
                }
            },
            other => Err(MixError(format!(
                "unknown --misbehave kind {other:?}; use one of {}",
                KIND_NAMES.join(", ")
            ))),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::SlowRead { bytes_per_sec } => write!(f, "slow-read={bytes_per_sec}"),
            Kind::SlowWrite { interval } => {
                write!(f, "slow-write={}", humantime::format_duration(*interval))
            }
            other => f.write_str(other.name()),
        }
    }
}

/// One entry of the mix: a kind and the fraction of all connections that behave so.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    pub kind: Kind,
    pub fraction: f64,
}

/// The whole `--misbehave` value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mix {
    pub shares: Vec<Share>,
}

/// A `--misbehave` value that cannot be used; the message is one line naming the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MixError(pub String);

impl Mix {
    /// Parse `KIND=FRACTION[,KIND=FRACTION...]`, where KIND may carry its own parameter
    /// (`slow-read=100=0.05`): the fraction is always the text after the last `=`.
    pub fn parse(text: &str) -> Result<Mix, MixError> {
        let mut shares = Vec::new();
        for entry in text.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(MixError(format!(
                    "--misbehave {text:?} has an empty entry; write KIND=FRACTION[,KIND=FRACTION...]"
                )));
            }
            let Some((kind_text, fraction_text)) = entry.rsplit_once('=') else {
                return Err(MixError(format!(
                    "--misbehave entry {entry:?} has no fraction; write KIND=FRACTION, e.g. never-read=0.1"
                )));
            };
            let kind = Kind::parse(kind_text)?;
            let fraction: f64 = fraction_text.trim().parse().map_err(|_| {
                MixError(format!(
                    "--misbehave fraction {fraction_text:?} of {} is not a number; write a fraction in (0, 1], e.g. 0.1",
                    kind.name()
                ))
            })?;
            if !(fraction.is_finite() && fraction > 0.0 && fraction <= 1.0) {
                return Err(MixError(format!(
                    "--misbehave fraction {fraction} of {} is out of range; write a fraction in (0, 1]",
                    kind.name()
                )));
            }
            if shares.iter().any(|s: &Share| s.kind.name() == kind.name()) {
                return Err(MixError(format!(
                    "--misbehave names {} twice; give each kind once",
                    kind.name()
                )));
            }
            shares.push(Share { kind, fraction });
        }
        let total: f64 = shares.iter().map(|s| s.fraction).sum();
        if total > 1.0 + 1e-9 {
            return Err(MixError(format!(
                "--misbehave fractions add up to {total:.3}, more than all connections; make them sum to at most 1"
            )));
        }
        Ok(Mix { shares })
    }

    /// How many of `connections` each kind gets: the fraction rounded to the nearest count, at
    /// least one for every listed kind. Fails when that leaves more misbehaving connections than
    /// there are connections.
    pub fn counts(&self, connections: usize) -> Result<Vec<(Kind, usize)>, MixError> {
        let counts: Vec<(Kind, usize)> = self
            .shares
            .iter()
            .map(|s| {
                let n = (s.fraction * connections as f64).round() as usize;
                (s.kind, n.max(1))
            })
            .collect();
        let total: usize = counts.iter().map(|(_, n)| n).sum();
        if total > connections {
            return Err(MixError(format!(
                "--misbehave needs {total} misbehaving connections (at least one per kind) but -c is {connections}; raise -c or list fewer kinds"
            )));
        }
        Ok(counts)
    }

    /// The mix as written on the command line (normalised).
    pub fn describe(&self) -> String {
        self.shares
            .iter()
            .map(|s| format!("{}={}", s.kind, s.fraction))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The mix applied to a run's `-c`: how many connections of each kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub mix: Mix,
    pub counts: Vec<(Kind, usize)>,
}

impl Plan {
    /// Apply `mix` to `connections` (see [`Mix::counts`]).
    pub fn new(mix: Mix, connections: usize) -> Result<Plan, MixError> {
        let counts = mix.counts(connections)?;
        Ok(Plan { mix, counts })
    }

    /// Misbehaving connections over all kinds.
    pub fn connections(&self) -> usize {
        self.counts.iter().map(|(_, n)| n).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        let mix = Mix::parse(
            "never-read=0.05,slow-read=100=0.05,slow-write=0.05,reset=0.05,half-close=0.025,garbage=0.025,abandon=0.025,churn=0.025",
        )
        .unwrap();
        assert_eq!(mix.shares.len(), 8);
        assert_eq!(mix.shares[1].kind, Kind::SlowRead { bytes_per_sec: 100 });
        assert_eq!(
            mix.shares[2].kind,
            Kind::SlowWrite {
                interval: DEFAULT_SLOW_WRITE_INTERVAL
            }
        );
        let again = Mix::parse(&mix.describe()).unwrap();
        assert_eq!(again, mix);
        let slow = Mix::parse("slow-write=250ms=1").unwrap();
        assert_eq!(
            slow.shares[0].kind,
            Kind::SlowWrite {
                interval: Duration::from_millis(250)
            }
        );
    }

    #[test]
    fn rejections_are_one_line() {
        for bad in [
            "",
            "never-read",
            "never-read=x",
            "never-read=0",
            "never-read=1.5",
            "never-read=-0.1",
            "nope=0.1",
            "slow-read=0.1",
            "slow-read=0=0.1",
            "slow-write=soon=0.1",
            "reset=3=0.1",
            "churn=0.6,abandon=0.6",
            "churn=0.1,churn=0.1",
            "churn=0.1,",
        ] {
            let err = Mix::parse(bad).expect_err(bad).to_string();
            assert!(err.contains("--misbehave"), "{bad}: {err}");
            assert!(!err.contains('\n'), "{bad}: {err}");
        }
    }

    #[test]
    fn counts_round_and_keep_every_kind() {
        let mix = Mix::parse("never-read=0.15,churn=0.001").unwrap();
        let counts = mix.counts(1000).unwrap();
        assert_eq!(counts[0].1, 150);
        assert_eq!(counts[1].1, 1);
        let all = Mix::parse("abandon=0.5,reset=0.5").unwrap();
        assert_eq!(
            all.counts(4).unwrap(),
            vec![(Kind::Abandon, 2), (Kind::Reset, 2)]
        );
        // Rounding 1.5 up twice asks for 4 of 3 connections.
        assert!(all.counts(3).is_err());
    }
}
