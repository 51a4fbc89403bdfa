//! TLS for client streams (STARTTLS, RFC 6120 §5, and XEP-0368 direct TLS) on rustls's unbuffered API.
//!
//! tokio-rustls keeps a 4 KiB receive buffer per connection for as long as the connection lives. Here a session
//! holds no TLS buffer while it waits: a read goes into a stack buffer, rustls decrypts the records in place and
//! only the plaintext is copied out. Bytes rustls cannot use yet (an incomplete record) stay in `incoming`, which
//! is freed as soon as it empties; outgoing records are encrypted into `outgoing`, freed once written.
//!
//! `receive` is cancel-safe (it runs inside the session's `select!`): it awaits readiness, then reads and
//! processes synchronously, so a losing branch never drops bytes. Alerts, close_notify and TCP EOF from the peer
//! all end the stream as EOF; TLS errors become `io::Error`s (after a best-effort alert), never panics.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError, UnbufferedStatus, WriteTraffic,
};
use rustls::ServerConfig;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;

/// Most bytes one read takes from the socket: a TLS record of the largest size (RFC 8446 §5.2: 2^14 bytes of
/// plaintext plus 256 of expansion, and the 5-byte header), so a record rarely needs the `incoming` buffer.
const READ_CHUNK: usize = (1 << 14) + 256 + 5;

/// Room reserved per record when encrypting: header, content type, explicit nonce and tag (rustls asks for more
/// when this is short).
const RECORD_OVERHEAD: usize = 64;

/// Largest plaintext fragment per record (RFC 8446 §5.1).
const MAX_FRAGMENT: usize = 1 << 14;

/// A TLS server connection over a TCP socket.
pub struct TlsStream {
    tcp: TcpStream,
    conn: UnbufferedServerConnection,
    /// Received bytes rustls has not consumed: an incomplete record, or a handshake message split across
    /// records. Empty, without capacity, between records.
    incoming: Vec<u8>,
    /// Encrypted bytes to write, in order. Freed once written.
    outgoing: Vec<u8>,
    /// Plaintext that arrived with the end of the handshake, for the first `receive`.
    plaintext: Vec<u8>,
    /// The peer ended its side (close_notify, alert or TCP EOF).
    eof: bool,
}

/// Keeps the `n` bytes rustls wrote into `out` after `start` (and drops the room reserved there on an error).
fn keep_written<E>(out: &mut Vec<u8>, start: usize, written: Result<usize, E>) -> io::Result<()>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match written {
        Ok(n) => {
            out.truncate(start + n);
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(io::Error::other(e))
        }
    }
}

/// Where processing the received bytes stopped.
enum Stop {
    /// The handshake needs more bytes from the peer.
    Blocked,
    /// Everything received was processed; application data may be sent.
    Traffic,
    /// The peer sent close_notify.
    PeerClosed,
}

/// How long close_notify may wait for the peer to take it (the caller bounds the whole close as well).
const SHUTDOWN_STALL: Duration = Duration::from_secs(2);

impl TlsStream {
    /// Runs the server side of the TLS handshake on `tcp`, giving up after `timeout`.
    pub async fn accept(tcp: TcpStream, config: Arc<ServerConfig>, timeout: Duration) -> io::Result<TlsStream> {
        let conn = UnbufferedServerConnection::new(config).map_err(invalid)?;
        let mut s =
            TlsStream { tcp, conn, incoming: Vec::new(), outgoing: Vec::new(), plaintext: Vec::new(), eof: false };
        match tokio::time::timeout(timeout, s.handshake()).await {
            Ok(Ok(())) => Ok(s),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")),
        }
    }

    async fn handshake(&mut self) -> io::Result<()> {
        loop {
            let pumped = pump(&mut self.conn, &mut self.incoming, &mut self.plaintext, &mut self.outgoing);
            let stop = match pumped {
                Ok((used, stop)) => {
                    self.incoming.drain(..used);
                    stop
                }
                Err(e) => return Err(self.fail(e)),
            };
            // The server's flight (and, in TLS 1.3, its session tickets) goes out before we wait for the client.
            // (The handshake as a whole has its own deadline.)
            self.flush(Duration::MAX).await?;
            match stop {
                Stop::Traffic => break,
                Stop::PeerClosed => return Err(io::ErrorKind::UnexpectedEof.into()),
                Stop::Blocked => {
                    self.tcp.readable().await?;
                    let mut chunk = [0u8; 4096];
                    match self.tcp.try_read(&mut chunk) {
                        Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                        Ok(n) => self.incoming.extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        if self.incoming.is_empty() {
            self.incoming = Vec::new();
        }
        Ok(())
    }

    /// Waits for plaintext from the peer; an empty result is the end of the stream. Cancel-safe.
    pub async fn receive(&mut self) -> io::Result<Vec<u8>> {
        if !self.plaintext.is_empty() {
            return Ok(std::mem::take(&mut self.plaintext));
        }
        while !self.eof {
            // Records rustls queued while reading go out while we wait (none in normal operation: the answer to a
            // TLS 1.3 KeyUpdate goes out in front of our next write, RFC 8446 §4.6.3).
            let interest =
                if self.outgoing.is_empty() { Interest::READABLE } else { Interest::READABLE | Interest::WRITABLE };
            let ready = self.tcp.ready(interest).await?;
            if ready.is_writable() && !self.outgoing.is_empty() {
                self.write_some()?;
            }
            if ready.is_readable() || ready.is_read_closed() {
                let plain = self.read_records()?;
                if !plain.is_empty() {
                    return Ok(plain);
                }
            }
        }
        Ok(Vec::new())
    }

    /// One non-blocking read, processed at once: the plaintext it completed (often none).
    fn read_records(&mut self) -> io::Result<Vec<u8>> {
        let mut chunk = [0u8; READ_CHUNK];
        let n = match read_now(&mut self.tcp, &mut chunk) {
            Ok(0) => {
                self.eof = true;
                return Ok(Vec::new());
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut plain = Vec::new();
        let pumped = if self.incoming.is_empty() {
            // The common case: whole records in one read, decrypted in place on the stack.
            let buf = &mut chunk[..n];
            let pumped = pump(&mut self.conn, buf, &mut plain, &mut self.outgoing);
            if let Ok((used, _)) = pumped {
                self.incoming.extend_from_slice(&buf[used..]);
            }
            pumped
        } else {
            self.incoming.extend_from_slice(&chunk[..n]);
            let pumped = pump(&mut self.conn, &mut self.incoming, &mut plain, &mut self.outgoing);
            if let Ok((used, _)) = pumped {
                self.incoming.drain(..used);
                if self.incoming.is_empty() {
                    self.incoming = Vec::new();
                }
            }
            pumped
        };
        match pumped {
            Ok((_, Stop::PeerClosed)) => self.eof = true,
            Ok((_, Stop::Traffic)) => {}
            // rustls does not renegotiate: after the handshake it never blocks on one.
            Ok((_, Stop::Blocked)) => return Err(io::Error::other("TLS handshake after the handshake")),
            Err(e) if plain.is_empty() => return Err(self.fail(e)),
            // Hand over what was decrypted before the error; the next read fails again.
            Err(_) => self.eof = true,
        }
        Ok(plain)
    }

    /// Encrypts and writes all of `data`.
    /// Encrypts `data` and writes it; fails with `TimedOut` when the peer takes no byte for `stall`. Cancel-safe:
    /// what was not written yet stays queued, in order, for the next write.
    pub async fn write_all(&mut self, data: &[u8], stall: Duration) -> io::Result<()> {
        self.with_traffic(|w, out| {
            let start = out.len();
            let estimate = data.len() + (data.len() / MAX_FRAGMENT + 1) * RECORD_OVERHEAD;
            out.resize(start + estimate, 0);
            let written = match w.encrypt(data, &mut out[start..]) {
                Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) => {
                    out.resize(start + required_size, 0);
                    w.encrypt(data, &mut out[start..])
                }
                other => other,
            };
            keep_written(out, start, written)
        })?;
        self.flush(stall).await
    }

    /// Sends close_notify and shuts the TCP write side.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.with_traffic(|w, out| {
            let start = out.len();
            out.resize(start + RECORD_OVERHEAD, 0);
            let written = w.queue_close_notify(&mut out[start..]);
            keep_written(out, start, written)
        })?;
        self.flush(SHUTDOWN_STALL).await?;
        self.tcp.shutdown().await
    }

    /// Brings rustls to its traffic state (encoding anything it has queued first) and runs `f` there.
    fn with_traffic(
        &mut self,
        f: impl FnOnce(&mut WriteTraffic<'_, ServerConnectionData>, &mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut f = Some(f);
        loop {
            // `incoming` holds only what rustls could not use yet, so this processes nothing new.
            let UnbufferedStatus { mut discard, state } = self.conn.process_tls_records(&mut self.incoming);
            let done = match state.map_err(invalid)? {
                ConnectionState::WriteTraffic(mut w) => match f.take() {
                    Some(f) => {
                        f(&mut w, &mut self.outgoing)?;
                        true
                    }
                    None => true,
                },
                ConnectionState::EncodeTlsData(mut e) => {
                    encode(&mut e, &mut self.outgoing)?;
                    false
                }
                ConnectionState::TransmitTlsData(t) => {
                    t.done();
                    false
                }
                ConnectionState::ReadTraffic(mut r) => {
                    while let Some(record) = r.next_record() {
                        let record = record.map_err(invalid)?;
                        discard += record.discard;
                        self.plaintext.extend_from_slice(record.payload);
                    }
                    false
                }
                ConnectionState::PeerClosed => {
                    self.eof = true;
                    false
                }
                ConnectionState::Closed => return Err(io::ErrorKind::BrokenPipe.into()),
                _ => return Err(io::Error::other("TLS handshake not complete")),
            };
            if discard > 0 {
                self.incoming.drain(..discard);
            }
            if done {
                return Ok(());
            }
        }
    }

    /// Writes `outgoing` to the socket, then frees it; fails with `TimedOut` when the socket takes no byte for
    /// `stall`. Cancel-safe: what was written is removed as it goes.
    async fn flush(&mut self, stall: Duration) -> io::Result<()> {
        loop {
            self.write_some()?;
            if self.outgoing.is_empty() {
                return Ok(());
            }
            match tokio::time::timeout(stall, self.tcp.writable()).await {
                Ok(ready) => ready?,
                Err(_) => return Err(super::transport::stalled()),
            }
        }
    }

    /// Writes as much of `outgoing` as the socket takes without waiting.
    fn write_some(&mut self) -> io::Result<()> {
        while !self.outgoing.is_empty() {
            match self.tcp.try_write(&self.outgoing) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) if n == self.outgoing.len() => self.outgoing = Vec::new(),
                Ok(n) => drop(self.outgoing.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Turns a TLS error into an `io::Error` after a best-effort, non-blocking write of what is queued (the
    /// alert `pump` encoded for it).
    fn fail(&mut self, e: rustls::Error) -> io::Error {
        let _ = self.tcp.try_write(&self.outgoing);
        self.outgoing = Vec::new();
        self.incoming = Vec::new();
        invalid(e)
    }
}

/// Runs rustls over `buf` (received bytes, none consumed yet) until it needs more input: plaintext is appended to
/// `plain`, records to send to `out`. Returns how many bytes from the front of `buf` were consumed, and why it
/// stopped. The bytes after those are kept by the caller and passed again, unchanged, in front of the next read.
/// A non-blocking read (`WouldBlock` when nothing is there). Unlike `try_read`, a read that leaves part of `buf`
/// unfilled also clears the socket's readiness (epoll: the socket is drained), so the next wait does not begin
/// with a read that can only say `WouldBlock`: one `recvfrom` per message instead of two.
fn read_now(tcp: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    use std::task::{Context, Poll, Waker};
    use tokio::io::{AsyncRead, ReadBuf};
    let mut filled = ReadBuf::new(buf);
    match std::pin::Pin::new(tcp).poll_read(&mut Context::from_waker(Waker::noop()), &mut filled) {
        Poll::Ready(Ok(())) => Ok(filled.filled().len()),
        Poll::Ready(Err(e)) => Err(e),
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

fn pump(
    conn: &mut UnbufferedServerConnection,
    buf: &mut [u8],
    plain: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(usize, Stop), rustls::Error> {
    let mut used = 0;
    loop {
        let UnbufferedStatus { mut discard, state } = conn.process_tls_records(&mut buf[used..]);
        let state = match state {
            Ok(state) => state,
            Err(e) => {
                // rustls queued an alert for most errors; it comes out as the next record to encode.
                let len = buf.len();
                let rest = &mut buf[(used + discard).min(len)..];
                if let UnbufferedStatus { state: Ok(ConnectionState::EncodeTlsData(mut alert)), .. } =
                    conn.process_tls_records(rest)
                {
                    let _ = encode(&mut alert, out);
                }
                return Err(e);
            }
        };
        let stop = match state {
            ConnectionState::ReadTraffic(mut r) => {
                while let Some(record) = r.next_record() {
                    let record = record?;
                    discard += record.discard;
                    plain.extend_from_slice(record.payload);
                }
                None
            }
            ConnectionState::EncodeTlsData(mut e) => {
                encode(&mut e, out).map_err(|e| rustls::Error::General(e.to_string()))?;
                None
            }
            // Records are written in the order they were encoded, before anything encrypted later.
            ConnectionState::TransmitTlsData(t) => {
                t.done();
                None
            }
            ConnectionState::BlockedHandshake => Some(Stop::Blocked),
            ConnectionState::WriteTraffic(_) => Some(Stop::Traffic),
            ConnectionState::PeerClosed | ConnectionState::Closed => Some(Stop::PeerClosed),
            // Early data (0-RTT) is not enabled in the server configuration.
            _ => return Err(rustls::Error::General("unexpected TLS state".into())),
        };
        used += discard;
        if let Some(stop) = stop {
            return Ok((used, stop));
        }
    }
}

/// Appends one handshake (or alert) record rustls has ready to `out`.
fn encode(e: &mut EncodeTlsData<'_, ServerConnectionData>, out: &mut Vec<u8>) -> io::Result<()> {
    let start = out.len();
    out.resize(start + 2048, 0);
    let written = match e.encode(&mut out[start..]) {
        Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
            out.resize(start + required_size, 0);
            e.encode(&mut out[start..])
        }
        other => other,
    };
    keep_written(out, start, written)
}

fn invalid(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;
    use std::time::Duration;

    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::TlsStream;

    fn configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        let cert = certified.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .expect("server config");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).expect("root");
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        (Arc::new(server), Arc::new(client))
    }

    /// Records dribbled a few bytes at a time (so they span reads) while `receive` keeps losing a `select!` to a
    /// timer: every byte arrives once, in order; the echo goes back through `write_all`.
    #[tokio::test]
    async fn receive_is_cancel_safe_and_reassembles_records_split_across_reads() {
        let (server_config, client_config) = configs();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let expected: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let sent = expected.clone();
        let client = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            tcp.set_nodelay(true).expect("nodelay");
            let connector = tokio_rustls::TlsConnector::from(client_config);
            let name = ServerName::try_from("localhost").expect("name");
            let mut tls = connector.connect(name, tcp).await.expect("client handshake");
            let (tcp, conn) = tls.get_mut();
            for piece in sent.chunks(3_000) {
                conn.writer().write_all(piece).expect("plaintext");
                let mut wire = Vec::new();
                while conn.wants_write() {
                    conn.write_tls(&mut wire).expect("records");
                }
                for bytes in wire.chunks(700) {
                    tcp.write_all(bytes).await.expect("write");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            let mut echo = vec![0u8; sent.len()];
            tls.read_exact(&mut echo).await.expect("echo");
            assert!(echo == sent, "echo differs");
            tls.shutdown().await.expect("close_notify");
        });

        let (tcp, _) = listener.accept().await.expect("accept");
        let mut tls = TlsStream::accept(tcp, server_config, Duration::from_secs(5)).await.expect("server handshake");
        let mut received = Vec::new();
        let mut cancelled = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while received.len() < expected.len() {
            assert!(tokio::time::Instant::now() < deadline, "only {} bytes arrived", received.len());
            // Alternately: dropped after exactly one poll, and racing a timer as in the session's `select!`.
            let data = if cancelled % 2 == 0 {
                // Bytes are waiting, so the one poll reads them: it must return them or keep them.
                let _ = tokio::time::timeout_at(deadline, tls.tcp.readable()).await;
                tokio::time::timeout(Duration::ZERO, tls.receive()).await
            } else {
                tokio::time::timeout(Duration::from_micros(300), tls.receive()).await
            };
            match data {
                Ok(data) => {
                    let data = data.expect("receive");
                    assert!(!data.is_empty(), "EOF after {} bytes", received.len());
                    received.extend_from_slice(&data);
                }
                Err(_) => cancelled += 1,
            }
        }
        assert!(received == expected, "bytes lost, duplicated or reordered");
        assert!(cancelled > 0, "the timer never won: the test did not exercise cancellation");
        assert!(tls.incoming.capacity() == 0 && tls.outgoing.capacity() == 0, "a buffer outlived its record");
        tls.write_all(&received, Duration::from_secs(5)).await.expect("echo");
        assert_eq!(tls.outgoing.capacity(), 0, "the write buffer was kept");
        assert!(tls.receive().await.expect("close_notify").is_empty(), "close_notify is EOF");
        client.await.expect("client");
    }
}
