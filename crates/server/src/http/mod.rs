//! The HTTP listener: HTTPS (`http.listen_tls`, the XMPP certificate) and optionally plain HTTP behind a reverse
//! proxy (`http.listen`). One router serves XMPP over WebSocket (RFC 7395, `websocket.rs`), BOSH (XEP-0206,
//! `bosh/`), XEP-0156 discovery (`host_meta.rs`), and what other modules merge in (upload, web client).
//!
//! Connections are accepted by the same loop as client connections (`listener.rs`): a permit from the one
//! `c2s.max_connections` pool before `accept`, one task per connection on the shutdown tracker, hyper serving
//! HTTP/1.1 with upgrades.
//! A WebSocket or BOSH stream is a client session like any other (`c2s::run_framed`) and takes its own permit.

pub mod bosh;
mod host_meta;
pub mod upload;
pub mod web_client;
mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::context::Context;

/// Longest a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Time in-flight requests get to finish after shutdown starts (held BOSH requests are answered by their sessions).
const DRAIN: Duration = Duration::from_secs(2);

/// What a handler knows about the connection its request came on.
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// HTTPS, or plain HTTP from a trusted TLS-terminating proxy (`http.trusted_proxy`).
    pub secure: bool,
    /// Requests come through the trusted proxy: `X-Forwarded-For` names the client.
    pub proxied: bool,
}

impl ConnInfo {
    /// The client's address: the peer, or behind a trusted proxy the last address it appended to
    /// `X-Forwarded-For` (the auth throttle keys on it).
    pub fn client(&self, headers: &HeaderMap) -> SocketAddr {
        if !self.proxied {
            return self.peer;
        }
        // Only the last entry was added by our proxy; earlier ones are whatever the client claimed.
        let last = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back();
        let forwarded = last.and_then(|a| a.trim().parse::<std::net::IpAddr>().ok());
        forwarded.map(|ip| SocketAddr::new(ip, 0)).unwrap_or(self.peer)
    }
}

/// Shared by the handlers of this module.
pub struct Http {
    pub ctx: Arc<Context>,
    /// The `c2s.max_connections` pool: streams over WebSocket and BOSH count like TCP connections.
    pub permits: Arc<Semaphore>,
    pub bosh: bosh::Registry,
}

/// The base URL the listener is reached at: `http.public_url`, else derived from the HTTPS (or plain) port.
pub fn public_url(config: &crate::config::Config, https: Option<SocketAddr>, http: Option<SocketAddr>) -> String {
    if !config.http.public_url.is_empty() {
        return config.http.public_url.trim_end_matches('/').to_owned();
    }
    match (https, http) {
        (Some(a), _) => format!("https://{}:{}", config.domain, a.port()),
        (None, Some(a)) => format!("http://{}:{}", config.domain, a.port()),
        (None, None) => String::new(),
    }
}

/// Every route: ours, then those other modules add.
pub fn router(ctx: Arc<Context>, permits: Arc<Semaphore>) -> Router {
    let http = Arc::new(Http { ctx: ctx.clone(), permits, bosh: bosh::Registry::default() });
    Router::new()
        .merge(websocket::routes(http.clone()))
        .merge(bosh::routes(http.clone()))
        .merge(host_meta::routes(http))
        .merge(upload::routes(ctx.clone()))
        .merge(web_client::routes(ctx))
}

/// One accepted HTTP connection (`secure`: on the HTTPS listener), to its end. The accept loop (`listener.rs`)
/// took its connection permit.
pub async fn serve_connection(socket: TcpStream, peer: SocketAddr, secure: bool, router: Router, ctx: Arc<Context>) {
    let proxied = !secure && ctx.config.http.trusted_proxy;
    let info = ConnInfo { peer, secure: secure || proxied, proxied };
    if !secure {
        return connection(socket, info, router, &ctx).await;
    }
    let timeout = Duration::from_secs(ctx.config.c2s.auth_timeout_secs);
    match tokio::time::timeout(timeout, ctx.tls.accept(socket)).await {
        Ok(Ok(tls)) => connection(tls, info, router, &ctx).await,
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "HTTPS handshake failed"),
        Err(_) => tracing::debug!(%peer, "HTTPS handshake timed out"),
    }
}

/// Serves HTTP/1.1 on one connection until it closes, upgrades to a WebSocket, or the server shuts down.
async fn connection<I>(io: I, info: ConnInfo, router: Router, ctx: &Context)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = router.map_request(move |mut req: axum::http::Request<Incoming>| {
        req.extensions_mut().insert(info);
        req
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => if let Err(e) = r {
            tracing::debug!(peer = %info.peer, error = %e, "HTTP connection ended with an error");
        },
        _ = ctx.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN, conn).await;
        }
    }
}

/// `Access-Control-Allow-Origin: *`: web clients on other origins may use host-meta and BOSH (XEP-0156 §3.2.3).
pub const CORS_ANY: (axum::http::HeaderName, &str) = (axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
