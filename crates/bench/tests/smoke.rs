//! Smoke test: a real drupe server (the workspace's `target/debug/drupe`, or `$DRUPE_BIN`) on a free port with
//! three accounts; the login, chat and room scenarios run against it with tiny numbers and lose nothing.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use drupe_bench::scenario::{chat, login, room};
use drupe_bench::{Mechanism, Target};

/// A drupe server process and its data directory, both gone when dropped.
struct Server {
    child: Child,
    port: u16,
    data: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn drupe_bin() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = match std::env::var_os("DRUPE_BIN").map(PathBuf::from) {
        // A relative DRUPE_BIN (as scripts/test sets it) is relative to the workspace, not to this crate.
        Some(bin) if bin.is_relative() && !bin.exists() => workspace.join(bin),
        Some(bin) => bin,
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), PathBuf::from);
            target.join("debug/drupe")
        }
    };
    assert!(
        bin.exists(),
        "no drupe binary at {}: build the workspace first (cargo build --workspace) or set DRUPE_BIN",
        bin.display()
    );
    bin
}

fn drupe(data: &PathBuf) -> Command {
    let mut cmd = Command::new(drupe_bin());
    cmd.env("DRUPE_DATA_DIR", data)
        .env("DRUPE_C2S_LISTEN", "127.0.0.1:0")
        .env("DRUPE_C2S_LISTEN_TLS", "")
        .env("DRUPE_HTTP_LISTEN_TLS", "")
        .env("DRUPE_SERVER_CREATE_ADMIN", "false")
        .env("DRUPE_LOG", "warn")
        .env_remove("DRUPE_CONFIG");
    cmd
}

fn start_server_with_users(users: usize) -> Server {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let data = std::env::temp_dir().join(format!("drupe-bench-smoke-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..users {
        let mut add = drupe(&data)
            .args(["user", "add", &format!("user{i}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        add.stdin.take().unwrap().write_all(b"secret\n").unwrap();
        assert!(add.wait().unwrap().success(), "drupe user add user{i} failed");
    }
    let mut child = drupe(&data).arg("serve").stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let port = loop {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "drupe exited before it was ready");
        if let Some(rest) = line.trim().strip_prefix("drupe ready c2s=") {
            let addr = rest.split_whitespace().next().unwrap();
            break addr.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    Server { child, port, data }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_chat_against_drupe() {
    let server = start_server_with_users(3);
    let pid = Some(server.child.id());
    for mechanism in [Mechanism::Plain, Mechanism::ScramSha1, Mechanism::ScramSha256] {
        let target = Arc::new(Target { mechanism, ..Target::local(server.port) });
        let opts = login::LoginOptions { users: 3, concurrency: 3, rate: None, pid, show_progress: false };
        let r = login::run(target, &opts).await.unwrap();
        assert_eq!((r.ok, r.failures.len()), (3, 0), "{mechanism:?}: {:?}", r.failures);
        assert!(r.latency.p50_ms > 0.0 && r.latency.max_ms < 30_000.0, "{:?}", r.latency);
        assert!(r.logins_per_sec() > 0.0);
        assert!(r.server_cpu_pct.is_some());
    }

    let opts = chat::ChatOptions {
        users: 3,
        rate: 30.0,
        duration: Duration::from_secs(1),
        concurrency: 3,
        drain: Duration::from_secs(5),
        pid,
        show_progress: false,
    };
    let r = chat::run(Arc::new(Target::local(server.port)), &opts).await.unwrap();
    assert_eq!(r.users_online, 3);
    assert!(r.sent >= 20 && r.sent <= 40, "sent {} at 30/s for 1 s", r.sent);
    assert_eq!((r.delivered, r.undelivered, r.errors), (r.sent, 0, 0));
    assert!(r.measured.lost_sessions.is_empty(), "{:?}", r.measured.lost_sessions);
    assert_eq!(r.measured.latency.count, r.sent);
    assert!(r.measured.latency.p50_ms > 0.0 && r.measured.latency.p99_ms < 5_000.0, "{:?}", r.measured.latency);
    assert!(r.measured.server_rss_kb.unwrap() > 1000);
    let json = r.report().to_json();
    assert!(json.contains("\"undelivered\":0"), "{json}");
}

/// Three occupants sending 10 msgs/s for a second to `room`.
fn three_occupants(room: &str, archive: bool, pid: u32) -> room::RoomOptions {
    room::RoomOptions {
        occupants: 3,
        rate: 10.0,
        duration: Duration::from_secs(1),
        concurrency: 3,
        drain: Duration::from_secs(5),
        room: room.into(),
        archive,
        pid: Some(pid),
        show_progress: false,
    }
}

/// drupe locks a new room until its owner accepts a configuration (XEP-0045 §10.1.2): the tool's first occupant
/// does, and the others join after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_against_drupe() {
    let server = start_server_with_users(3);
    let opts = three_occupants("smoke@conference.localhost", false, server.child.id());
    let r = room::run(Arc::new(Target::local(server.port)), &opts).await.unwrap();
    assert_eq!((r.occupants, r.join_failures.len()), (3, 0), "{:?}", r.join_failures);
    // Each occupant reads the presence of those who joined after it (2 + 1 + 0) and, unless it was read while
    // joining, the room subject.
    assert!((3..=6).contains(&r.backlog), "backlog {}", r.backlog);
    assert!(r.sent >= 5 && r.sent <= 15, "sent {} at 10/s for 1 s", r.sent);
    assert_eq!(r.deliveries, r.sent * 3, "every message reflected to all 3 occupants");
    assert!(r.measured.lost_sessions.is_empty(), "{:?}", r.measured.lost_sessions);
}

/// `--archive`: the first occupant configures the new room as persistent and archived; messages still reach
/// everyone (the sender's own copy after its archive row is committed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_room_against_drupe() {
    let server = start_server_with_users(3);
    let opts = three_occupants("archived@conference.localhost", true, server.child.id());
    let r = room::run(Arc::new(Target::local(server.port)), &opts).await.unwrap();
    assert_eq!((r.occupants, r.join_failures.len()), (3, 0), "{:?}", r.join_failures);
    assert!(r.sent >= 5, "sent {}", r.sent);
    assert_eq!(r.deliveries, r.sent * 3, "every message reflected to all 3 occupants");
    assert!(r.report().to_json().contains("\"archived\":1"));
}

#[tokio::test]
async fn wrong_password_is_counted_as_a_failure() {
    let server = start_server_with_users(1);
    let target = Arc::new(Target { password: "wrong".into(), ..Target::local(server.port) });
    let opts = login::LoginOptions { users: 1, concurrency: 1, rate: None, pid: None, show_progress: false };
    let r = login::run(target, &opts).await.unwrap();
    assert_eq!(r.ok, 0);
    assert!(r.failures[0].contains("not-authorized"), "{:?}", r.failures);
}
