//! Client listeners: one accept loop over the STARTTLS and the direct TLS listener takes a connection permit
//! before `accept`, so at most `c2s.max_connections` sessions exist (a permit held per listener would leave one
//! idle per listener); each accepted socket gets one session task that owns it.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::c2s;
use crate::context::Context;

async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

pub async fn serve(plain: TcpListener, direct_tls: Option<TcpListener>, ctx: Arc<Context>, permits: Arc<Semaphore>) {
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = ctx.shutdown.cancelled() => return,
        };
        let (accepted, tls) = tokio::select! {
            r = plain.accept() => (r, false),
            r = accept(direct_tls.as_ref()) => (r, true),
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
        ctx.tracker.spawn(async move {
            c2s::run(socket, peer, tls, ctx2).await;
            drop(permit);
        });
    }
}
