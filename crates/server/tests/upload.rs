//! XEP-0363 HTTP File Upload end to end: the service found by disco, slots granted or refused over XMPP, and the
//! files PUT and fetched over the real HTTPS listener (with a small raw HTTP/1.1 client, so what is on the wire is
//! what is checked).

mod common;

use std::time::Duration;

use common::{error_condition, ns, Client, Element, TestServer, DOMAIN, WAIT};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const UPLOAD: &str = "urn:xmpp:http:upload:0";
const SERVICE: &str = "upload.localhost";

async fn server_with(adjust: impl FnOnce(&mut drupe_server::config::Config)) -> TestServer {
    TestServer::start_with(|c| {
        c.http.listen_tls = "127.0.0.1:0".into();
        adjust(c);
    })
    .await
}

// --- a raw HTTPS client ---------------------------------------------------------------------------------------

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// (port, path-and-query) of an `https://localhost:<port>/...` URL.
fn split_url(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("https://").unwrap_or_else(|| panic!("not https: {url}"));
    let (authority, path) = rest.split_once('/').expect("a path");
    let (host, port) = authority.rsplit_once(':').expect("a port");
    assert_eq!(host, DOMAIN);
    (port.parse().expect("port"), format!("/{path}"))
}

async fn connect(url: &str) -> (Tls, String) {
    let (port, path) = split_url(url);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let tls = common::tls_connector().connect(ServerName::try_from(DOMAIN).unwrap(), tcp).await.expect("TLS");
    (tls, path)
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn head_of(method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req + "\r\n"
}

/// One request on a fresh connection; the response is read to the end (`Connection: close`).
async fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let (mut tls, path) = connect(url).await;
    let mut all = headers.to_vec();
    let len = body.len().to_string();
    if method == "PUT" && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-length")) {
        all.push(("Content-Length", &len));
    }
    tls.write_all(head_of(method, &path, &all).as_bytes()).await.unwrap();
    tls.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT * 4, tls.read_to_end(&mut raw)).await.expect("response in time").ok();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect();
    Response { status, headers, body: raw[split + 4..].to_vec() }
}

// --- XMPP side --------------------------------------------------------------------------------------------------

fn slot_request(id: &str, filename: &str, size: usize, content_type: &str) -> String {
    format!(
        "<iq type='get' id='{id}' to='{SERVICE}'><request xmlns='{UPLOAD}' filename='{filename}' size='{size}' \
         content-type='{content_type}'/></iq>"
    )
}

/// Requests a slot and returns (put URL, get URL), failing on an error.
async fn slot(client: &mut Client, filename: &str, size: usize, content_type: &str) -> (String, String) {
    let id = client.id();
    let reply = client.iq(&slot_request(&id, filename, size, content_type)).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    let slot = reply.child("slot", UPLOAD).expect("slot");
    let put = slot.child("put", UPLOAD).and_then(|p| p.attr("url")).expect("put url").to_owned();
    let get = slot.child("get", UPLOAD).and_then(|p| p.attr("url")).expect("get url").to_owned();
    (put, get)
}

async fn refused(client: &mut Client, filename: &str, size: usize) -> Element {
    let id = client.id();
    let reply = client.iq(&slot_request(&id, filename, size, "application/octet-stream")).await;
    assert_eq!(reply.attr("type"), Some("error"), "{}", reply.to_xml());
    reply
}

fn random_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|_| rand::random::<u8>()).collect()
}

#[tokio::test]
async fn the_service_is_discoverable_with_its_size_limit() {
    let server = server_with(|c| c.upload.max_file_bytes = 12345).await;
    let mut alice = server.login("alice").await;
    let items =
        alice.iq(&format!("<iq type='get' id='i1' to='{DOMAIN}'><query xmlns='{}'/></iq>", ns::DISCO_ITEMS)).await;
    let query = items.child("query", ns::DISCO_ITEMS).expect("items");
    assert!(query.children().any(|i| i.attr("jid") == Some(SERVICE)), "{}", items.to_xml());

    let info =
        alice.iq(&format!("<iq type='get' id='i2' to='{SERVICE}'><query xmlns='{}'/></iq>", ns::DISCO_INFO)).await;
    let query = info.child("query", ns::DISCO_INFO).expect("info");
    let identity = query.child("identity", ns::DISCO_INFO).expect("identity");
    assert_eq!((identity.attr("category"), identity.attr("type")), (Some("store"), Some("file")));
    assert!(query.children().any(|f| f.attr("var") == Some(UPLOAD)));
    let form = query.child("x", "jabber:x:data").expect("form");
    let fields = drupe_proto::dataform::fields(form);
    assert!(fields.contains(&("FORM_TYPE".into(), vec![UPLOAD.into()])));
    assert!(fields.contains(&("max-file-size".into(), vec!["12345".into()])), "{fields:?}");
}

#[tokio::test]
async fn without_an_https_listener_or_when_disabled_there_is_no_upload_service() {
    let no_listener = TestServer::start_with(|c| c.http.listen_tls = String::new()).await;
    let disabled = server_with(|c| c.upload.enabled = false).await;
    for server in [no_listener, disabled] {
        let mut alice = server.login("alice").await;
        let items =
            alice.iq(&format!("<iq type='get' id='i1' to='{DOMAIN}'><query xmlns='{}'/></iq>", ns::DISCO_ITEMS)).await;
        assert!(items.to_xml().contains("conference.localhost"), "{}", items.to_xml());
        assert!(!items.to_xml().contains(SERVICE), "{}", items.to_xml());
        let reply = alice.iq(&slot_request("s1", "a.txt", 10, "text/plain")).await;
        assert_eq!(error_condition(&reply).as_deref(), Some("service-unavailable"));
    }
}

#[tokio::test]
async fn a_file_goes_up_and_comes_back_byte_for_byte() {
    let server = server_with(|_| {}).await;
    let mut alice = server.login("alice").await;
    let data = random_bytes(300_000);
    let (put, get) = slot(&mut alice, "très cool.bin", data.len(), "application/octet-stream").await;
    assert!(get.contains("/upload/") && get.ends_with("/tr%C3%A8s%20cool.bin"), "{get}");
    assert!(put.starts_with(&get) && put.contains("?e="), "{put}");

    let r = request("PUT", &put, &[("Content-Type", "application/octet-stream")], &data).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    // The slot is used up.
    assert_eq!(request("PUT", &put, &[], &data).await.status, 409);

    let r = request("GET", &get, &[], &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body == data, "the downloaded bytes differ");
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.header("content-length"), Some("300000"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(r.header("cache-control").is_some_and(|v| v.contains("immutable")));
    assert!(r.header("content-disposition").is_some_and(|v| v.starts_with("attachment")));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let etag = r.header("etag").expect("etag").to_owned();
    assert_eq!(request("GET", &get, &[("If-None-Match", &etag)], &[]).await.status, 304);
    // Usage is accounted to the owner.
    assert_eq!(server.store().upload_usage("alice").await.unwrap(), (1, 300_000));
    // Nothing is listed, and a guessed slot is not there.
    let base = get.split("/upload/").next().unwrap();
    assert_eq!(request("GET", &format!("{base}/upload/"), &[], &[]).await.status, 404);
    assert_eq!(request("GET", &format!("{base}/upload/AAAAAAAAAAAAAAAAAAAAAA/x.bin"), &[], &[]).await.status, 404);
}

#[tokio::test]
async fn an_oversized_file_is_refused_with_the_maximum() {
    let server = server_with(|c| c.upload.max_file_bytes = 1000).await;
    let mut alice = server.login("alice").await;
    let reply = refused(&mut alice, "big.bin", 1001).await;
    assert_eq!(error_condition(&reply).as_deref(), Some("not-acceptable"));
    let error = reply.child("error", ns::CLIENT).unwrap();
    assert_eq!(error.attr("type"), Some("modify"));
    let max = error.child("file-too-large", UPLOAD).and_then(|f| f.child("max-file-size", UPLOAD)).expect("max");
    assert_eq!(max.text(), "1000");
    // Exactly the maximum is fine.
    slot(&mut alice, "ok.bin", 1000, "application/octet-stream").await;
}

#[tokio::test]
async fn bad_filenames_are_refused() {
    let server = server_with(|_| {}).await;
    let mut alice = server.login("alice").await;
    for name in ["a/b.txt", "..", ""] {
        let reply = refused(&mut alice, name, 10).await;
        assert_eq!(error_condition(&reply).as_deref(), Some("bad-request"), "{name:?}");
    }
}

#[tokio::test]
async fn the_quota_counts_stored_files_and_open_slots() {
    let server = server_with(|c| {
        c.upload.quota_bytes = 1000;
        c.upload.daily_bytes = 0;
    })
    .await;
    let mut alice = server.login("alice").await;
    slot(&mut alice, "a.bin", 600, "application/octet-stream").await;
    let reply = refused(&mut alice, "b.bin", 600).await;
    assert_eq!(error_condition(&reply).as_deref(), Some("resource-constraint"));
    let text = reply.child("error", ns::CLIENT).and_then(|e| e.child("text", ns::STANZA_ERRORS)).expect("text");
    assert!(text.text().contains("Quota"), "{}", text.text());
    // Someone else's quota is their own.
    let mut bob = server.login("bob").await;
    slot(&mut bob, "b.bin", 600, "application/octet-stream").await;
}

#[tokio::test]
async fn the_daily_limit_counts_every_slot_of_the_day() {
    let server = server_with(|c| {
        c.upload.quota_bytes = 0;
        c.upload.daily_bytes = 1000;
    })
    .await;
    let mut alice = server.login("alice").await;
    let (put, _) = slot(&mut alice, "a.bin", 500, "application/octet-stream").await;
    assert_eq!(request("PUT", &put, &[], &random_bytes(500)).await.status, 201);
    slot(&mut alice, "b.bin", 500, "application/octet-stream").await;
    let reply = refused(&mut alice, "c.bin", 1).await;
    assert_eq!(error_condition(&reply).as_deref(), Some("resource-constraint"));
    let text = reply.child("error", ns::CLIENT).and_then(|e| e.child("text", ns::STANZA_ERRORS)).unwrap().text();
    assert!(text.contains("Daily"), "{text}");
}

#[tokio::test]
async fn a_tampered_or_wrong_put_is_refused_and_stores_nothing() {
    let server = server_with(|_| {}).await;
    let mut alice = server.login("alice").await;
    let data = random_bytes(1000);
    let (put, get) = slot(&mut alice, "a.bin", data.len(), "application/octet-stream").await;
    let (url, query) = put.split_once('?').unwrap();
    let sig = query.split("s=").nth(1).unwrap();
    let expires: i64 = query.split('&').next().unwrap().trim_start_matches("e=").parse().unwrap();
    let mut flipped = sig.to_owned();
    let last = if flipped.ends_with('A') { "B" } else { "A" };
    flipped.replace_range(flipped.len() - 1.., last);
    let tampered = [
        format!("{url}?e={expires}&s={flipped}"),
        format!("{url}?e={}&s={sig}", expires + 3600),
        format!("{url}?e={expires}"),
        url.to_owned(),
        put.replacen("/a.bin?", "/b.bin?", 1),
    ];
    for bad in &tampered {
        assert_eq!(request("PUT", bad, &[], &data).await.status, 403, "{bad}");
    }
    // The body must be exactly the slot's size.
    assert_eq!(request("PUT", &put, &[], &data[..999]).await.status, 400);
    assert_eq!(request("PUT", &put, &[], &random_bytes(1001)).await.status, 413);
    assert_eq!(request("GET", &get, &[], &[]).await.status, 404);
    // The genuine URL still works afterwards.
    assert_eq!(request("PUT", &put, &[], &data).await.status, 201);
    assert_eq!(request("GET", &get, &[], &[]).await.body, data);
}

#[tokio::test]
async fn media_is_served_in_ranges_and_head_and_preflight_answer() {
    let server = server_with(|_| {}).await;
    let mut alice = server.login("alice").await;
    let data = random_bytes(10_000);
    let (put, get) = slot(&mut alice, "voice.ogg", data.len(), "audio/ogg").await;
    let pre =
        request("OPTIONS", &put, &[("Origin", "https://web.example"), ("Access-Control-Request-Method", "PUT")], &[])
            .await;
    assert!(pre.status == 200 || pre.status == 204, "{}", pre.status);
    assert!(pre.header("access-control-allow-methods").is_some_and(|m| m.contains("PUT")));
    assert_eq!(pre.header("access-control-allow-origin"), Some("*"));
    assert_eq!(request("PUT", &put, &[("Content-Type", "audio/ogg")], &data).await.status, 201);

    let r = request("GET", &get, &[("Range", "bytes=100-199")], &[]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 100-199/10000"));
    assert_eq!(r.header("content-length"), Some("100"));
    assert!(r.body == data[100..200]);
    assert!(r.header("content-disposition").is_some_and(|v| v.starts_with("inline")));
    let r = request("GET", &get, &[("Range", "bytes=-10")], &[]).await;
    assert!(r.status == 206 && r.body == data[9990..]);
    let r = request("GET", &get, &[("Range", "bytes=20000-")], &[]).await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */10000"));

    let r = request("HEAD", &get, &[], &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("10000"));
    assert_eq!(r.header("content-type"), Some("audio/ogg"));
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn an_interrupted_upload_leaves_nothing_behind() {
    let server = server_with(|_| {}).await;
    let mut alice = server.login("alice").await;
    let (put, get) = slot(&mut alice, "half.bin", 100_000, "application/octet-stream").await;
    let (mut tls, path) = connect(&put).await;
    tls.write_all(head_of("PUT", &path, &[("Content-Length", "100000")]).as_bytes()).await.unwrap();
    tls.write_all(&random_bytes(50_000)).await.unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(tls);
    let tmp = server.data_dir().join("upload").join("tmp");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);
        if left == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{left} partial file(s) left in {}", tmp.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(request("GET", &get, &[], &[]).await.status, 404);
    // The slot can still be used.
    assert_eq!(request("PUT", &put, &[], &random_bytes(100_000)).await.status, 201);
}

#[tokio::test]
async fn an_expired_file_is_purged() {
    let server = server_with(|c| c.upload.expire_days = 7).await;
    let mut alice = server.login("alice").await;
    let data = random_bytes(2000);
    let (put, get) = slot(&mut alice, "old.bin", data.len(), "application/octet-stream").await;
    assert_eq!(request("PUT", &put, &[], &data).await.status, 201);
    let slot_id = get.split("/upload/").nth(1).unwrap().split('/').next().unwrap().to_owned();
    let stored = server.data_dir().join("upload").join(&slot_id);
    assert!(stored.exists());
    alice.close().await;
    let get2 = {
        let mut bob = server.login("bob").await;
        let (put, get) = slot(&mut bob, "new.bin", 10, "application/octet-stream").await;
        assert_eq!(request("PUT", &put, &[], &[7; 10]).await.status, 201);
        bob.close().await;
        get
    };
    // Eight days pass for alice's file (edited in the database beside the running server: WAL lets it).
    {
        let conn = rusqlite::Connection::open(server.data_dir().join("drupe.sqlite3")).unwrap();
        conn.busy_timeout(WAIT).unwrap();
        let eight_days_ago = now_ms() - 8 * 86_400_000;
        let n = conn
            .execute("UPDATE upload_files SET created_ms = ?1 WHERE slot = ?2", (eight_days_ago, &slot_id))
            .unwrap();
        assert_eq!(n, 1);
    }
    // A partial upload a crash left behind a day ago, and one that may still be running.
    let tmp = server.data_dir().join("upload").join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let stale = tmp.join("crashed.part");
    std::fs::File::create(&stale)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(86_400))
        .unwrap();
    let running = tmp.join("running.part");
    std::fs::write(&running, b"x").unwrap();
    let server = server.restart().await;
    // The purge runs at start.
    let deadline = tokio::time::Instant::now() + WAIT;
    while stored.exists() {
        assert!(tokio::time::Instant::now() < deadline, "expired file still on disk");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let port_url = |u: &str| {
        // The restarted server listens on a new port.
        let base = server.server_config().http.public_url.clone();
        format!("{base}/upload/{}", u.split("/upload/").nth(1).unwrap())
    };
    assert_eq!(request("GET", &port_url(&get), &[], &[]).await.status, 404);
    assert_eq!(server.store().upload_file(&slot_id).await.unwrap(), None);
    assert!(!stale.exists(), "a stale partial upload is removed");
    assert!(running.exists(), "a recent partial upload is left alone");
    // The recent file stays.
    assert_eq!(request("GET", &port_url(&get2), &[], &[]).await.body, vec![7; 10]);
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}
