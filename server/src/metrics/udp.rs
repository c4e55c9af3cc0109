//! Rendering the UDP counters of the loops that serve UDP (a stream server's loops with
//! `Server::with_udp`, or a standalone `UdpServer`'s loops) as `gev_udp_*` families, labelled by
//! `loop` like the stream families. Nothing is rendered when no loop serves UDP, so a TCP-only
//! server's exposition is unchanged.

use std::fmt::Write;

use super::render::header;
use crate::udp::UdpCounters;

/// Each family: name, help, and the counter it shows.
type Family = (&'static str, &'static str, fn(&UdpCounters) -> u64);

const FAMILIES: [Family; 9] = [
    (
        "gev_udp_datagrams_received_total",
        "UDP datagrams received and delivered to the datagram handler.",
        |c| c.datagrams_in,
    ),
    (
        "gev_udp_datagrams_sent_total",
        "UDP datagrams the kernel accepted for sending (replies and handle sends).",
        |c| c.datagrams_out,
    ),
    (
        "gev_udp_bytes_received_total",
        "Payload bytes of the UDP datagrams received.",
        |c| c.bytes_in,
    ),
    (
        "gev_udp_bytes_sent_total",
        "Payload bytes of the UDP datagrams sent.",
        |c| c.bytes_out,
    ),
    (
        "gev_udp_dropped_output_full_total",
        "UDP datagrams dropped because the loop's output queue was full (socket buffer full), or left unsent at stop.",
        |c| c.dropped_output_full,
    ),
    (
        "gev_udp_dropped_oversized_total",
        "UDP datagrams received longer than max_datagram (truncated), dropped.",
        |c| c.dropped_oversized,
    ),
    (
        "gev_udp_send_errors_total",
        "UDP datagrams the kernel refused to send (e.g. EMSGSIZE, unreachable), dropped.",
        |c| c.send_errors,
    ),
    (
        "gev_udp_recv_batches_total",
        "UDP receive syscalls (recvmmsg, or recvfrom without batching), including empty ones.",
        |c| c.recv_calls,
    ),
    (
        "gev_udp_send_batches_total",
        "UDP send syscalls (sendmmsg, or sendto without batching).",
        |c| c.send_calls,
    ),
];

/// Appends the `gev_udp_*` families for `loops` (`(loop index, counters)`) to `out`.
pub(super) fn render(loops: &[(usize, UdpCounters)], out: &mut String) {
    if loops.is_empty() {
        return;
    }
    for (name, help, value) in FAMILIES {
        header(out, name, "counter", help);
        for (index, counters) in loops {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{name}{{loop=\"{index}\"}} {}", value(counters));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_without_udp() {
        let mut out = String::new();
        render(&[], &mut out);
        assert_eq!(out, "");
    }

    #[test]
    fn every_counter_per_loop() {
        let busy = UdpCounters {
            datagrams_in: 1,
            datagrams_out: 2,
            bytes_in: 3,
            bytes_out: 4,
            dropped_output_full: 5,
            dropped_oversized: 6,
            send_errors: 7,
            recv_calls: 8,
            send_calls: 9,
        };
        let mut out = String::new();
        render(&[(0, busy), (1, UdpCounters::default())], &mut out);
        let series: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(series.len(), 18);
        for (i, (name, _, _)) in FAMILIES.iter().enumerate() {
            assert_eq!(series[2 * i], format!("{name}{{loop=\"0\"}} {}", i + 1));
            assert_eq!(series[2 * i + 1], format!("{name}{{loop=\"1\"}} 0"));
            assert!(out.contains(&format!("# TYPE {name} counter\n")));
        }
    }
}
