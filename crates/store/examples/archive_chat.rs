//! What 1:1 chat costs the archive, through the store alone: each message is archived twice (sender's and
//! recipient's copy, one write job) at a steady rate between random pairs of 1,000 owners, with the server's upkeep
//! (per-owner index passes and the full-text backlog every second). Prints the writer thread's CPU per message
//! and the latency of the appends (queue, group commit, fsync).
//!
//! `cargo run --release -p drupe-store --example archive_chat [messages] [msgs/s]` (Linux: reads /proc for the
//! thread's CPU). Run it pinned to one core (`taskset -c 0`) to see the writer share it, as in the server.

use std::time::{Duration, Instant};

use drupe_proto::sasl::{Credentials, ScramKeys};
use drupe_store::{ArchiveEntry, SqliteOptions, Store};

const OWNERS: usize = 1_000;

/// CPU time of this process's threads whose name starts with `name`, in milliseconds.
fn thread_cpu_ms(name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .flatten()
        .filter(|task| std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.starts_with(name)))
        .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
        .map(|stat| {
            // After the command name: utime and stime are the 12th and 13th fields, in 10 ms ticks.
            let fields: Vec<u64> =
                stat.rsplit(')').next().unwrap_or("").split_whitespace().filter_map(|f| f.parse().ok()).collect();
            fields.get(10).zip(fields.get(11)).map_or(0, |(user, system)| (user + system) * 10)
        })
        .sum()
}

fn credentials() -> Credentials {
    let keys = |len| ScramKeys { salt: vec![1], iterations: 4096, stored_key: vec![1; len], server_key: vec![2; len] };
    Credentials { sha1: keys(20), sha256: keys(32) }
}

/// Message `n` between `from` and `to`, as the server archives it: the stanza, and a body shaped like the load
/// tool's (a send time and a sender, so most words are new to the full-text index).
fn copies(n: usize, from: usize, to: usize) -> Vec<(String, ArchiveEntry)> {
    let body = format!("drupe-bench 8f3a2c1d {} {from}", 1_700_000_000_000_000u64 + n as u64 * 137);
    let stanza = format!(
        "<message xmlns='jabber:client' from='user{from}@localhost/bench' to='user{to}@localhost' type='chat' \
         id='m{n}'><body>{body}</body><stanza-id xmlns='urn:xmpp:sid:0' by='user{to}@localhost' id='{n:020}'/></message>"
    );
    let entry = |with: usize, outgoing: bool| ArchiveEntry {
        stanza_id: format!("{n:020}"),
        with: format!("user{with}@localhost"),
        outgoing,
        timestamp_ms: 1_700_000_000_000 + n as i64,
        origin_id: None,
        body: Some(body.clone()),
        stanza: stanza.clone(),
    };
    vec![(format!("user{from}"), entry(to, true)), (format!("user{to}"), entry(from, false))]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1).map(|arg| arg.parse::<usize>().expect("a number"));
    let messages = args.next().unwrap_or(60_000);
    let rate = args.next().unwrap_or(8_000).max(1);
    // In the working directory: /tmp may be a RAM disk, where fsync costs nothing.
    let dir = tempfile::tempdir_in(".").expect("tempdir");
    let store = Store::open_sqlite(&dir.path().join("archive.sqlite"), SqliteOptions::default()).expect("open");
    for owner in 0..OWNERS {
        store.account_create(&format!("user{owner}"), &credentials()).await.expect("account");
    }
    let upkeep = {
        let store = store.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = store.archive_index_tail().await;
                let _ = store.archive_index_pending().await;
            }
        })
    };

    let writer_before = thread_cpu_ms("drupe-store-wri");
    let started = Instant::now();
    let tick = Duration::from_secs(1) / u32::try_from(rate).unwrap_or(u32::MAX);
    let mut appends = tokio::task::JoinSet::new();
    let mut latencies = Vec::with_capacity(messages);
    for n in 0..messages {
        if let Some(wait) = (started + tick * n as u32).checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        // Two different owners, spread over all of them.
        let from = (n * 7_919) % OWNERS;
        let to = (from + 1 + (n * 104_729) % (OWNERS - 1)) % OWNERS;
        let store = store.clone();
        appends.spawn(async move {
            let sent = Instant::now();
            store.archive_append_all(copies(n, from, to)).await.expect("append");
            sent.elapsed()
        });
        while let Some(done) = appends.try_join_next() {
            latencies.push(done.expect("append task"));
        }
    }
    while let Some(done) = appends.join_next().await {
        latencies.push(done.expect("append task"));
    }
    let wall = started.elapsed();
    let writer_ms = thread_cpu_ms("drupe-store-wri") - writer_before;
    upkeep.abort();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    println!(
        "{messages} messages at {rate}/s over {OWNERS} owners: {:.2} s; writer CPU {:.1} us/message ({:.0} % of a core); \
         append p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
        wall.as_secs_f64(),
        writer_ms as f64 * 1e3 / messages as f64,
        writer_ms as f64 / wall.as_secs_f64() / 10.0,
        at(0.5),
        at(0.99),
        at(1.0),
    );
}
