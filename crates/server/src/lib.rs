//! drupe-server: the tokio side of drupe. Listeners accept connections, one task per connection runs the client
//! session over the proto crate, the router connects sessions, modules implement the RFCs and XEPs, and the store
//! crate keeps what must survive.

pub mod accounts;
pub mod config;
pub mod tls;

mod auth;
mod c2s;
mod context;
mod http;
mod listener;
mod modules;
mod queue;
mod router;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use drupe_store::{SqliteOptions, Store, StoreError};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::context::Context;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("tls: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
}

/// Opens the store of `config`'s data directory.
pub fn open_store(config: &Config) -> Result<Store, StartError> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir { path: dir.clone(), source })?;
    let options = SqliteOptions {
        max_batch: config.storage.max_batch,
        readers: config.storage.readers,
        writer_cache_kib: config.storage.writer_cache_kib,
        background_nice: i32::from(config.storage.background_nice),
        ..Default::default()
    };
    Ok(Store::open_sqlite(&dir.join("drupe.sqlite3"), options)?)
}

/// A running server.
pub struct Server {
    /// Where the STARTTLS listener is bound.
    pub c2s: SocketAddr,
    /// Where the direct TLS listener is bound, if enabled.
    pub c2s_tls: Option<SocketAddr>,
    /// Where the HTTPS listener (WebSocket, BOSH, host-meta, ...) is bound, if enabled.
    pub http_tls: Option<SocketAddr>,
    /// Where the plain HTTP listener (behind a reverse proxy) is bound, if enabled.
    pub http: Option<SocketAddr>,
    ctx: Arc<Context>,
}

async fn bind(addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr: addr.to_owned(), source })
}

/// Binds `addr` unless it is empty (a disabled listener).
async fn bind_optional(addr: &str) -> Result<Option<TcpListener>, StartError> {
    match addr {
        "" => Ok(None),
        addr => bind(addr).await.map(Some),
    }
}

impl Server {
    /// Opens the store, loads or generates the certificate, binds the listeners and starts accepting.
    pub async fn start(mut config: Config) -> Result<Server, StartError> {
        let store = open_store(&config)?;
        let tls = tls::server_config(&config.tls.cert, &config.tls.key, &config.domain, &config.data_dir)?;
        let plain = bind(&config.c2s.listen).await?;
        let direct = match config.c2s.listen_tls.as_str() {
            "" => None,
            addr => Some(bind(addr).await?),
        };
        let c2s = plain.local_addr().map_err(|source| StartError::Bind { addr: config.c2s.listen.clone(), source })?;
        let c2s_tls = direct.as_ref().and_then(|l| l.local_addr().ok());
        let https_listener = bind_optional(&config.http.listen_tls).await?;
        let http_listener = bind_optional(&config.http.listen).await?;
        let http_tls = https_listener.as_ref().and_then(|l| l.local_addr().ok());
        let http = http_listener.as_ref().and_then(|l| l.local_addr().ok());
        // Resolved once (port 0 included), so every module advertises the same URL.
        config.http.public_url = http::public_url(&config, http_tls, http);
        let key_path = config.data_dir.join("fast.key");
        let fast_key = c2s::fast::load_or_create_key(&key_path)
            .map_err(|source| StartError::DataDir { path: key_path, source })?;
        let permits = Arc::new(Semaphore::new(config.c2s.max_connections));
        let ctx = Arc::new(Context::new(config, store, tls, fast_key));
        // Persistent rooms (XEP-0045) exist before the first client can address them.
        modules::muc::load(&ctx).await?;
        let router =
            (https_listener.is_some() || http_listener.is_some()).then(|| http::router(ctx.clone(), permits.clone()));
        let listeners = listener::Listeners { c2s: plain, c2s_tls: direct, https: https_listener, http: http_listener };
        ctx.tracker.spawn(listener::serve(listeners, router, ctx.clone(), permits));
        ctx.tracker.spawn(modules::mam::retention(ctx.clone()));
        ctx.tracker.spawn(modules::mam::index_upkeep(ctx.clone()));
        ctx.tracker.spawn(modules::upload::purge(ctx.clone()));
        tracing::info!(%c2s, c2s_tls = ?c2s_tls, https = ?http_tls, http = ?http, domain = %ctx.domain(), "listening");
        Ok(Server { c2s, c2s_tls, http_tls, http, ctx })
    }

    pub fn store(&self) -> &Store {
        &self.ctx.store
    }

    pub fn config(&self) -> &Config {
        &self.ctx.config
    }

    /// Bound sessions right now.
    pub fn session_count(&self) -> usize {
        self.ctx.router.session_count()
    }

    /// Graceful shutdown: stop accepting, send `<system-shutdown/>` to every session, let them drain within the
    /// grace period, then close the store (committing queued writes).
    pub async fn shutdown(self) {
        self.ctx.shutdown.cancel();
        self.ctx.tracker.close();
        let grace = Duration::from_secs(self.ctx.config.server.shutdown_grace_secs);
        if tokio::time::timeout(grace, self.ctx.tracker.wait()).await.is_err() {
            tracing::warn!("sessions did not finish within the shutdown grace period");
        }
        self.ctx.store.close().await;
    }
}
