//! A minimal HTTP/1.1 client for the HTTP listener: one request per connection (`Connection: close`), the whole
//! response returned as text (status line, headers, body).

use std::net::SocketAddr;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::{DOMAIN, WAIT};

fn request_bytes(method: &str, path: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\nContent-Type: text/xml; charset=utf-8\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, request: Vec<u8>, wait: std::time::Duration) -> String {
    s.write_all(&request).await.expect("send request");
    s.flush().await.expect("flush");
    let mut out = Vec::new();
    match timeout(wait, s.read_to_end(&mut out)).await {
        // rustls reports a peer closing without close_notify as an error: what arrived is still the response.
        Ok(_) => {}
        Err(_) => panic!("no complete HTTP response within {wait:?}: {}", String::from_utf8_lossy(&out)),
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request over HTTPS.
pub async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> String {
    request_within(addr, method, path, body, WAIT).await
}

/// A request over HTTPS that may take up to `wait` to be answered (BOSH long polls).
pub async fn request_within(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    wait: std::time::Duration,
) -> String {
    let tcp = timeout(WAIT, TcpStream::connect(addr)).await.expect("connect in time").expect("connect");
    let name = ServerName::try_from(DOMAIN).expect("server name");
    let tls = timeout(WAIT, super::conn::tls_connector().connect(name, tcp))
        .await
        .expect("TLS handshake in time")
        .expect("TLS handshake");
    exchange(tls, request_bytes(method, path, body), wait).await
}

/// A request over plain HTTP.
pub async fn plain_request(addr: SocketAddr, method: &str, path: &str, body: &str) -> String {
    let tcp = timeout(WAIT, TcpStream::connect(addr)).await.expect("connect in time").expect("connect");
    exchange(tcp, request_bytes(method, path, body), WAIT).await
}

/// The body of a response (after the blank line).
pub fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default()
}
