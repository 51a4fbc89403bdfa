//! The durability contract under `kill -9`: every write whose `await` returned is on disk.
//!
//! The test binary runs itself again as a child that writes from many tasks and prints
//! each acknowledged id; the parent kills it mid-stream, reopens the file and looks for
//! every acknowledged id.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drupe_store::{OfflinePush, SqliteOptions, Store};

const CHILD_DB: &str = "DRUPE_STORE_CRASH_CHILD_DB";
const TEST_NAME: &str = "acknowledged_writes_survive_kill_9";

#[test]
fn acknowledged_writes_survive_kill_9() {
    if let Some(path) = std::env::var_os(CHILD_DB) {
        write_until_killed(Path::new(&path));
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let path = common::db_path(&dir);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the child");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    let mut acknowledged = BTreeSet::new();
    while acknowledged.len() < 300 {
        let line = lines.next().expect("the child stopped before writing enough").unwrap();
        if let Some(id) = line.strip_prefix("acked ") {
            acknowledged.insert(id.parse::<i64>().unwrap());
        }
    }
    child.kill().expect("SIGKILL the child"); // kill -9 on Unix
    child.wait().unwrap();
    // Acknowledgements printed before the kill count too.
    for line in lines {
        if let Some(id) = line.unwrap().strip_prefix("acked ") {
            acknowledged.insert(id.parse::<i64>().unwrap());
        }
    }

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open_sqlite(&path, SqliteOptions::default()).expect("reopen");
        let stored: BTreeSet<i64> = store.offline_list("alice").await.unwrap().into_iter().map(|m| m.id).collect();
        let lost: Vec<_> = acknowledged.difference(&stored).collect();
        assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
        eprintln!("{} writes acknowledged, {} found after kill -9", acknowledged.len(), stored.len());
    });
}

/// The child: 16 tasks pushing and printing each acknowledged id, stopping on their own
/// after 20 s or 100,000 writes should the parent never kill it.
fn write_until_killed(path: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open_sqlite(path, SqliteOptions::default()).unwrap();
        store.account_create("alice", &common::credentials(1)).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let writers: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    for n in 0..6250 {
                        if Instant::now() > deadline {
                            return;
                        }
                        let pushed = store.offline_push("alice", "<message/>", n, u32::MAX).await;
                        if let Ok(OfflinePush::Stored(id)) = pushed {
                            println!("acked {id}");
                        }
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
    });
}
