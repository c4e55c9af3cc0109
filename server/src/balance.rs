//! Load balancing: which loop owns a newly accepted connection. The acceptor asks its
//! [`Balancer`] with the peer address and the current connection count of every loop.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A strategy choosing the loop for a new connection. Any
/// `Fn(&SocketAddr, &[usize]) -> usize + Send + Sync` is one.
///
/// ```
/// use std::sync::Arc;
/// use gev::{Balancer, LoadBalance};
///
/// // Pin every peer to a loop by its port.
/// let by_port = |peer: &std::net::SocketAddr, loads: &[usize]| peer.port() as usize % loads.len();
/// let strategy = LoadBalance::Custom(Arc::new(by_port));
/// # let _ = strategy;
/// ```
pub trait Balancer: Send + Sync + 'static {
    /// The index of the loop for `peer`; `connections_per_loop[i]` is loop `i`'s open
    /// connections. An index out of range is reduced modulo the number of loops.
    fn pick(&self, peer: &SocketAddr, connections_per_loop: &[usize]) -> usize;
}

impl<F> Balancer for F
where
    F: Fn(&SocketAddr, &[usize]) -> usize + Send + Sync + 'static,
{
    fn pick(&self, peer: &SocketAddr, connections_per_loop: &[usize]) -> usize {
        self(peer, connections_per_loop)
    }
}

/// Loops in turn.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl Balancer for RoundRobin {
    fn pick(&self, _peer: &SocketAddr, connections_per_loop: &[usize]) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % connections_per_loop.len().max(1)
    }
}

/// The loop with the fewest open connections (the lowest index on ties).
#[derive(Debug, Default, Clone, Copy)]
pub struct LeastConnections;

impl Balancer for LeastConnections {
    fn pick(&self, _peer: &SocketAddr, connections_per_loop: &[usize]) -> usize {
        connections_per_loop
            .iter()
            .enumerate()
            .min_by_key(|&(_, &n)| n)
            .map_or(0, |(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:4000".parse().unwrap()
    }

    #[test]
    fn round_robin_cycles() {
        let rr = RoundRobin::default();
        let picks: Vec<usize> = (0..6).map(|_| rr.pick(&peer(), &[0, 0, 0])).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn least_connections_picks_minimum() {
        assert_eq!(LeastConnections.pick(&peer(), &[5, 2, 2, 9]), 1);
    }

    #[test]
    fn closures_are_balancers() {
        let always_last = |_: &SocketAddr, loads: &[usize]| loads.len() - 1;
        assert_eq!(always_last.pick(&peer(), &[0, 0, 0]), 2);
    }
}
