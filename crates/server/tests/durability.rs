//! Acknowledged means durable, under SIGKILL: the real `drupe` binary runs as a child process while senders with
//! XEP-0198 enabled stream messages to offline and online recipients; the server is killed at a random moment,
//! restarted, and every message an `<a h/>` covered must be in its recipient's offline queue or archive.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{ns, Client, Conn, Element, PASSWORD, QUIET, SM};
use drupe_proto::xml::StreamEvent;
use tokio::time::Instant;

const ROUNDS: usize = 20;
const SENDERS: usize = 3;
const OFFLINE: [&str; 3] = ["rcpt0", "rcpt1", "rcpt2"];
const ONLINE: &str = "online";
/// Messages sent between two acknowledgement requests.
const BATCH: usize = 4;

/// The binary under test: $DRUPE_BIN, else the one cargo built for these tests, else target/debug/drupe.
fn drupe_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("DRUPE_BIN") {
        return PathBuf::from(path);
    }
    match option_env!("CARGO_BIN_EXE_drupe") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/drupe"),
    }
}

/// `drupe --config FILE ...` with no inherited `DRUPE_*` overrides.
fn drupe(config: &Path) -> Command {
    let mut cmd = Command::new(drupe_bin());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("DRUPE_") {
            cmd.env_remove(key);
        }
    }
    cmd.arg("--config").arg(config);
    cmd
}

fn add_user(config: &Path, name: &str) {
    let mut child = drupe(config)
        .args(["user", "add", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("drupe user add runs");
    child.stdin.take().expect("stdin").write_all(format!("{PASSWORD}\n").as_bytes()).expect("password written");
    assert!(child.wait().expect("drupe user add exits").success(), "drupe user add {name} failed");
}

/// `drupe serve`, waiting (bounded) for its ready line; stdout keeps being drained afterwards.
fn serve(config: &Path, log: &Path) -> (Child, SocketAddr) {
    let stderr = std::fs::File::create(log).expect("log file");
    let mut child = drupe(config)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("drupe serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("drupe ready c2s=") {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("no ready line within 20 s; stderr:\n{}", std::fs::read_to_string(log).unwrap_or_default())
    });
    (child, addr.parse().expect("ready line address"))
}

async fn login(addr: SocketAddr, name: &str, resource: &str, presence: bool) -> Client {
    let mut conn = Conn::connect(addr, false).await;
    conn.open().await;
    // Without TLS the server offers only SCRAM.
    conn.auth_scram(name, PASSWORD).await.unwrap_or_else(|f| panic!("{name}: {}", f.to_xml()));
    Client::finish_login(conn, name, Some(resource), presence).await
}

/// One sender's record: every message sent (recipient, body), and how many of them the server acknowledged.
struct Sent {
    messages: Vec<(String, String)>,
    acked: usize,
}

/// Sends batches of messages, each followed by `<r/>`, reading the `<a h/>` before the next batch, until the
/// connection dies.
async fn send_until_killed(
    addr: SocketAddr,
    round: usize,
    sender: usize,
    ready: tokio::sync::mpsc::Sender<()>,
) -> Sent {
    let mut client = login(addr, &format!("sender{sender}"), "s", true).await;
    let enabled = client.enable_sm(false).await;
    assert!(enabled.is("enabled", SM), "{}", enabled.to_xml());
    let _ = ready.send(()).await;
    let mut sent = Sent { messages: Vec::new(), acked: 0 };
    let recipients: Vec<&str> = OFFLINE.iter().copied().chain([ONLINE]).collect();
    'outer: loop {
        let mut data = String::new();
        for _ in 0..BATCH {
            let n = sent.messages.len();
            let to = recipients[(n + sender) % recipients.len()];
            let body = format!("r{round}-s{sender}-{n}");
            data.push_str(&format!("<message type='chat' to='{to}@localhost'><body>{body}</body></message>"));
            sent.messages.push((to.to_owned(), body));
        }
        data.push_str(&format!("<r xmlns='{SM}'/>"));
        if !client.conn.try_send_raw(data).await {
            break;
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match client.conn.next_event_until(deadline).await {
                Ok(StreamEvent::Stanza(el)) if el.is("a", SM) => {
                    let h: usize = el.attr("h").and_then(|h| h.parse().ok()).expect("h is a number");
                    assert!(h <= sent.messages.len(), "h={h} acknowledges more than was sent");
                    sent.acked = sent.acked.max(h);
                    if h == sent.messages.len() {
                        break;
                    }
                }
                Ok(StreamEvent::Stanza(el)) if el.attr("type") == Some("error") => {
                    panic!("a message was refused: {}", el.to_xml())
                }
                Ok(_) => {}
                Err(_) => break 'outer,
            }
        }
    }
    sent
}

/// Every body `name` can still get: its offline messages (delivered on login) and its archive after `after`.
/// Returns them and the id of the newest archive entry.
async fn stored_for(addr: SocketAddr, name: &str, after: Option<String>) -> (HashSet<String>, Option<String>) {
    let mut client = login(addr, name, "check", true).await;
    let mut found = HashSet::new();
    for el in client.collect(QUIET).await {
        if let Some(b) = el.child("body", ns::CLIENT) {
            found.insert(b.text());
        }
    }
    let mut last = after;
    loop {
        let anchor = last.as_ref().map(|id| format!("<after>{id}</after>")).unwrap_or_default();
        let set = format!("<set xmlns='http://jabber.org/protocol/rsm'><max>500</max>{anchor}</set>");
        let (results, reply) = client.mam(&set).await;
        assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
        for r in &results {
            let body = r
                .child("forwarded", "urn:xmpp:forward:0")
                .and_then(|f| f.child("message", ns::CLIENT))
                .and_then(|m| m.child("body", ns::CLIENT))
                .map(Element::text);
            found.extend(body);
            last = r.attr("id").map(str::to_owned);
        }
        let fin = reply.child("fin", common::MAM).expect("fin");
        if results.is_empty() || matches!(fin.attr("complete"), Some("true" | "1")) {
            break;
        }
    }
    client.close().await;
    (found, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("drupe.toml");
    let toml = format!(
        "domain = \"localhost\"\ndata_dir = \"{}\"\n[c2s]\nlisten = \"127.0.0.1:0\"\nlisten_tls = \"\"\n\
         require_tls = false\n[http]\nlisten_tls = \"\"\n[limits]\nmax_offline_messages = 100000\n[server]\ncreate_admin = false\n\
         shutdown_grace_secs = 1\n[auth]\nfailure_delay_ms = 10\n",
        dir.path().join("data").display()
    );
    std::fs::write(&config, toml).expect("config written");
    let senders: Vec<String> = (0..SENDERS).map(|s| format!("sender{s}")).collect();
    for name in senders.iter().map(String::as_str).chain(OFFLINE).chain([ONLINE]) {
        add_user(&config, name);
    }

    let log = dir.path().join("serve.log");
    let (mut child, mut addr) = serve(&config, &log);
    let mut last_ids: HashMap<String, Option<String>> = HashMap::new();
    let (mut total_sent, mut total_acked) = (0, 0);
    let started = std::time::Instant::now();
    for round in 0..ROUNDS {
        let online = login(addr, ONLINE, "live", true).await;
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(SENDERS);
        let tasks: Vec<_> =
            (0..SENDERS).map(|s| tokio::spawn(send_until_killed(addr, round, s, ready_tx.clone()))).collect();
        for _ in 0..SENDERS {
            tokio::time::timeout(common::WAIT, ready_rx.recv()).await.expect("senders ready in time");
        }
        tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 400 + 50)).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("killed server reaped");
        let mut acked: Vec<(String, String)> = Vec::new();
        for task in tasks {
            let sent = tokio::time::timeout(common::WAIT, task).await.expect("sender ends").expect("sender task");
            total_sent += sent.messages.len();
            total_acked += sent.acked;
            acked.extend(sent.messages.into_iter().take(sent.acked));
        }
        drop(online);

        (child, addr) = serve(&config, &log);
        for name in OFFLINE.iter().copied().chain([ONLINE]) {
            let after = last_ids.get(name).cloned().flatten();
            let (found, last) = stored_for(addr, name, after).await;
            let lost: Vec<&String> =
                acked.iter().filter(|(to, b)| to == name && !found.contains(b)).map(|m| &m.1).collect();
            assert!(lost.is_empty(), "round {round}: acknowledged messages to {name} lost: {lost:?}");
            last_ids.insert(name.to_owned(), last);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "durability: {ROUNDS} SIGKILL rounds in {:?}: {total_sent} messages sent, {total_acked} acknowledged, none lost",
        started.elapsed()
    );
    assert!(total_acked > ROUNDS, "too few acknowledged messages to mean anything: {total_acked}");
}
