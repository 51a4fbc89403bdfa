//! The accept loop: one loop over every listener (STARTTLS, direct TLS, HTTPS, plain HTTP) takes a connection
//! permit before `accept`, so at most `c2s.max_connections` connections exist (a permit held per listener would
//! leave one idle per listener); each accepted socket gets one task that owns it: a client session, or an HTTP
//! connection (which may become a WebSocket session, with a permit of its own).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::context::Context;
use crate::{c2s, http};

/// The bound listeners; all but the STARTTLS one may be disabled.
pub struct Listeners {
    pub c2s: TcpListener,
    pub c2s_tls: Option<TcpListener>,
    pub https: Option<TcpListener>,
    pub http: Option<TcpListener>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    C2s,
    C2sTls,
    Https,
    Http,
}

async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Accepts until shutdown. `router` serves the HTTP listeners (present when one is enabled).
pub async fn serve(listeners: Listeners, router: Option<Router>, ctx: Arc<Context>, permits: Arc<Semaphore>) {
    let l = &listeners;
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = ctx.shutdown.cancelled() => return,
        };
        let (accepted, kind) = tokio::select! {
            r = l.c2s.accept() => (r, Kind::C2s),
            r = accept(l.c2s_tls.as_ref()) => (r, Kind::C2sTls),
            r = accept(l.https.as_ref()) => (r, Kind::Https),
            r = accept(l.http.as_ref()) => (r, Kind::Http),
            _ = ctx.shutdown.cancelled() => return,
        };
        let (socket, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Nagle would stall small writes (e.g. the first flight after the TLS handshake) by ~40 ms.
        let _ = socket.set_nodelay(true);
        let ctx2 = ctx.clone();
        match (kind, router.clone()) {
            (Kind::Https | Kind::Http, Some(router)) => ctx.tracker.spawn(async move {
                http::serve_connection(socket, peer, kind == Kind::Https, router, ctx2).await;
                drop(permit);
            }),
            _ => ctx.tracker.spawn(async move {
                c2s::run(socket, peer, kind == Kind::C2sTls, ctx2).await;
                drop(permit);
            }),
        };
    }
}
