//! Client listeners: a connection permit is taken before `accept`, so at most `c2s.max_connections` sessions exist;
//! each accepted socket gets one session task that owns it.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::c2s;
use crate::context::Context;

pub async fn serve(listener: TcpListener, direct_tls: bool, ctx: Arc<Context>, permits: Arc<Semaphore>) {
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = ctx.shutdown.cancelled() => return,
        };
        let (socket, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = ctx.shutdown.cancelled() => return,
        };
        // Nagle would stall small writes (e.g. the first flight after the TLS handshake) by ~40 ms.
        let _ = socket.set_nodelay(true);
        let ctx2 = ctx.clone();
        ctx.tracker.spawn(async move {
            c2s::run(socket, peer, direct_tls, ctx2).await;
            drop(permit);
        });
    }
}
