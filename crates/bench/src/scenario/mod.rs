//! The scenarios, and what they share: logging in many sessions with bounded concurrency, and the clock that
//! message bodies carry.
//!
//! Every scenario is bounded in count and time and returns a typed result that renders as a [`Report`].

pub mod chat;
pub mod idle;
pub mod lanying;
pub mod login;
pub mod room;
pub mod traffic;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;

use crate::client::{self, Client};
use crate::progress::Progress;
use crate::report::Report;
use crate::stats::Samples;
use crate::Target;

/// Microseconds since the first call in this process: the send time carried in message bodies (sender and
/// receiver are in the same process, so a monotonic clock works and no clock sync is needed).
pub fn now_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// Sessions logged in by [`login_many`].
pub struct Logged {
    /// `(slot, client)` for every session that logged in, `slot` being its position in the input.
    pub clients: Vec<(usize, Client)>,
    /// Connect to bind result, per successful login.
    pub latencies: Samples,
    pub failures: Vec<String>,
    pub elapsed: Duration,
}

/// Logs in one session per `(user index, resource)` with at most `concurrency` logins in flight, and sends
/// initial presence on each.
pub async fn login_many(
    target: &Arc<Target>,
    tls: &TlsConnector,
    sessions: Vec<(usize, String)>,
    concurrency: usize,
    progress: &Arc<Progress>,
) -> Logged {
    let start = Instant::now();
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for (slot, (user, resource)) in sessions.into_iter().enumerate() {
        let permit = permits.clone().acquire_owned().await.expect("semaphore is never closed");
        let (target, tls, progress) = (target.clone(), tls.clone(), progress.clone());
        set.spawn(async move {
            let t0 = Instant::now();
            let result = async {
                let mut c = client::login(&target, &tls, user, &resource).await?;
                let latency = t0.elapsed();
                c.send_presence().await?;
                Ok::<_, client::ClientError>((c, latency))
            }
            .await;
            drop(permit);
            match &result {
                Ok(_) => {
                    Progress::add(&progress.logins, 1);
                    Progress::add(&progress.online, 1);
                }
                Err(_) => Progress::add(&progress.failures, 1),
            }
            (slot, result)
        });
    }
    let mut logged =
        Logged { clients: Vec::new(), latencies: Samples::new(), failures: Vec::new(), elapsed: start.elapsed() };
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((slot, Ok((client, latency)))) => {
                logged.latencies.record(latency);
                logged.clients.push((slot, client));
            }
            Ok((_, Err(e))) => logged.failures.push(e.to_string()),
            Err(e) => logged.failures.push(format!("client task: {e}")),
        }
    }
    logged.clients.sort_by_key(|(slot, _)| *slot);
    logged.elapsed = start.elapsed();
    logged
}

/// Adds the failure count and the most frequent failure reasons to a report.
pub fn report_failures(report: &mut Report, key: &str, failures: &[String]) {
    report.int(key, failures.len() as u64, "");
    if failures.is_empty() {
        return;
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for f in failures {
        *counts.entry(f.as_str()).or_default() += 1;
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (reason, n) in counts.into_iter().take(3) {
        report.warn(format!("{n} × {key}: {reason}"));
    }
}

/// Waits until `sent` messages were all delivered or bounced, or `limit` passed.
pub async fn drain(progress: &Progress, limit: Duration) {
    drain_fanout(progress, limit, 1).await;
}

/// [`drain`] where each message is delivered `fanout` times (a room reflects it to every occupant).
pub async fn drain_fanout(progress: &Progress, limit: Duration, fanout: u64) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let done = Progress::get(&progress.delivered) + Progress::get(&progress.errors);
        if done >= Progress::get(&progress.sent).saturating_mul(fanout) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
