//! Echo checks shared by the end-to-end tests of the example servers over TCP
//! (`examples_e2e.rs`) and Unix sockets (`unix_e2e.rs`): messages of random size written in
//! random fragments and compared byte for byte when they come back, many clients at once, and
//! the clean stop every example server owes on SIGINT.

use std::io::{Read, Write};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::ServerProcess;

/// How long an example server may take to exit after SIGINT.
pub const SIGINT_EXIT: Duration = Duration::from_secs(1);

/// Writes `data` in random fragments, sometimes pausing briefly so fragments arrive in separate
/// reads.
pub fn write_fragmented(
    stream: &mut impl Write,
    data: &[u8],
    rng: &mut SmallRng,
) -> std::io::Result<()> {
    let mut offset = 0;
    while offset < data.len() {
        let take = rng.random_range(1..=data.len() - offset);
        stream.write_all(&data[offset..offset + take])?;
        offset += take;
        if rng.random_ratio(1, 8) {
            thread::sleep(Duration::from_micros(200));
        }
    }
    Ok(())
}

/// One client on `stream`: `messages` random messages (1 in 10 up to 64 KiB, else up to 512 B),
/// each written in random fragments and read back whole before the next. Returns the bytes
/// echoed; `Err` names the client, the message and what went wrong.
pub fn echo_client(
    mut stream: impl Read + Write,
    seed: u64,
    messages: usize,
) -> Result<usize, String> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut total = 0;
    let mut echoed = vec![0u8; 70_000];
    for i in 0..messages {
        let size = if rng.random_ratio(1, 10) {
            rng.random_range(1..=65_536)
        } else {
            rng.random_range(1..=512)
        };
        let message: Vec<u8> = (0..size).map(|_| rng.random()).collect();
        write_fragmented(&mut stream, &message, &mut rng)
            .map_err(|e| format!("client {seed}: write of message {i}: {e}"))?;
        stream
            .read_exact(&mut echoed[..size])
            .map_err(|e| format!("client {seed}: read of message {i} ({size} bytes): {e}"))?;
        if echoed[..size] != message[..] {
            return Err(format!(
                "client {seed}: message {i} ({size} bytes) came back different"
            ));
        }
        total += size;
    }
    Ok(total)
}

/// Runs `client(seed)` on `clients` threads at once, with seeds `first_seed..`; fails the test
/// with the first five failures if any client failed, else returns the bytes they all echoed.
pub fn run_clients<F>(clients: usize, first_seed: u64, client: F) -> usize
where
    F: Fn(u64) -> Result<usize, String> + Send + Sync + 'static,
{
    let client = Arc::new(client);
    let threads: Vec<_> = (0..clients as u64)
        .map(|i| {
            let client = Arc::clone(&client);
            thread::spawn(move || client(first_seed + i))
        })
        .collect();
    let mut bytes = 0;
    let mut failures = Vec::new();
    for t in threads {
        match t.join().expect("client thread panicked") {
            Ok(n) => bytes += n,
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} client(s) failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    bytes
}

/// Sends SIGINT and asserts the server exits 0 within [`SIGINT_EXIT`].
pub fn assert_exits_on_sigint(server: &mut ServerProcess) {
    let status = server
        .interrupt_and_wait(SIGINT_EXIT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "exit status after SIGINT: {status}");
}
