//! `chat`: M users online, sending 1:1 messages to random other online users at an aggregate rate R for S
//! seconds; delivered rate, loss and latency, and the server's CPU over the sending window.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::traffic::{converse, Directory, Schedule, Totals};
use super::{drain, login_many, report_failures};
use crate::proc::{rss_kb, CpuWatch, ToolCpu, ToolCpuUse};
use crate::progress::{Printer, Progress};
use crate::report::Report;
use crate::stats::Summary;
use crate::tls::tls_connector;
use crate::{BenchError, Target};

#[derive(Clone, Debug)]
pub struct ChatOptions {
    pub users: usize,
    /// Messages per second, all users together.
    pub rate: f64,
    pub duration: Duration,
    /// Logins in flight while the users come online.
    pub concurrency: usize,
    /// How long to wait after the last send for messages still under way.
    pub drain: Duration,
    /// Server process to read CPU and memory of.
    pub pid: Option<u32>,
    pub show_progress: bool,
}

#[derive(Debug)]
pub struct ChatResult {
    pub users_online: usize,
    pub login_failures: Vec<String>,
    pub sent: u64,
    pub delivered: u64,
    pub errors: u64,
    /// Sent and not delivered by the end of the drain time (bounces included).
    pub undelivered: u64,
    pub duration: Duration,
    pub latency: Summary,
    pub lost_sessions: Vec<String>,
    pub server_cpu_pct: Option<f64>,
    pub server_rss_kb: Option<u64>,
    pub tool_cpu: ToolCpuUse,
    pub offered_rate: f64,
}

impl ChatResult {
    pub fn sent_per_sec(&self) -> f64 {
        self.sent as f64 / self.duration.as_secs_f64()
    }

    pub fn delivered_per_sec(&self) -> f64 {
        self.delivered as f64 / self.duration.as_secs_f64()
    }

    pub fn report(&self) -> Report {
        let mut r = Report::new("chat");
        r.int("users_online", self.users_online as u64, "");
        report_failures(&mut r, "login_failures", &self.login_failures);
        r.float("offered_rate", self.offered_rate, "msg/s");
        r.float("duration_s", self.duration.as_secs_f64(), "s");
        r.int("sent", self.sent, "");
        r.float("sent_per_sec", self.sent_per_sec(), "msg/s");
        r.int("delivered", self.delivered, "");
        r.float("delivered_per_sec", self.delivered_per_sec(), "msg/s");
        r.int("undelivered", self.undelivered, "");
        r.float("loss_pct", if self.sent > 0 { 100.0 * self.undelivered as f64 / self.sent as f64 } else { 0.0 }, "%");
        r.int("bounced", self.errors, "");
        r.latency("latency", &self.latency);
        r.opt_float("server_cpu_pct", self.server_cpu_pct, "%");
        r.opt_int("server_rss_kb", self.server_rss_kb, "KiB");
        report_failures(&mut r, "sessions_lost", &self.lost_sessions);
        r.tool_cpu(&self.tool_cpu);
        if self.sent_per_sec() < 0.95 * self.offered_rate {
            r.warn(format!(
                "sent {:.0} msg/s of the {:.0} offered: the tool or the server's TCP backpressure held senders back",
                self.sent_per_sec(),
                self.offered_rate
            ));
        }
        r
    }
}

pub async fn run(target: Arc<Target>, opts: &ChatOptions) -> Result<ChatResult, BenchError> {
    if opts.users < 2 || opts.rate <= 0.0 || opts.duration.is_zero() {
        return Err(BenchError("chat needs --users >= 2, --rate > 0 and --duration > 0".into()));
    }
    let tls = tls_connector(target.tls_resumption);
    let progress = Progress::new();
    let _printer = Printer::start("chat", progress.clone(), opts.show_progress);
    let sessions = (0..opts.users).map(|i| (i, "bench".to_owned())).collect();
    let logged = login_many(&target, &tls, sessions, opts.concurrency, &progress).await;
    if logged.clients.len() < 2 {
        return Err(BenchError(format!(
            "only {} of {} users logged in; first failure: {}",
            logged.clients.len(),
            opts.users,
            logged.failures.first().map_or("-", String::as_str)
        )));
    }
    let directory = Directory::new(opts.users);
    for (slot, c) in &logged.clients {
        directory.set_online(*slot, &c.jid);
    }
    let online = logged.clients.len();
    // Each user sends rate/online messages per second, phases spread at random so the aggregate is smooth.
    let period = Duration::from_secs_f64(online as f64 / opts.rate);
    let start = Instant::now();
    let until = start + opts.duration;
    let tool_cpu = ToolCpu::start();
    let server_cpu = opts.pid.and_then(CpuWatch::start);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut set = JoinSet::new();
    for (slot, client) in logged.clients {
        let offset = period.mul_f64(rand::thread_rng().gen_range(0.0..1.0));
        let schedule = Schedule { first: start + offset, period, until };
        set.spawn(converse(client, slot, schedule, directory.clone(), progress.clone(), stop_rx.clone()));
    }
    tokio::time::sleep_until(until).await;
    let server_cpu_pct = server_cpu.and_then(|w| w.percent());
    let tool_cpu = tool_cpu.finish();
    drain(&progress, opts.drain).await;
    let server_rss_kb = opts.pid.and_then(rss_kb);
    let _ = stop_tx.send(true);
    let mut totals = Totals::default();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(outcome) => totals.add(outcome),
            Err(e) => totals.lost_sessions.push(format!("client task: {e}")),
        }
    }
    Ok(ChatResult {
        users_online: online,
        login_failures: logged.failures,
        sent: totals.sent,
        delivered: totals.delivered,
        errors: totals.errors,
        undelivered: totals.undelivered(),
        duration: opts.duration,
        latency: totals.latencies.summary(),
        lost_sessions: totals.lost_sessions,
        server_cpu_pct,
        server_rss_kb,
        tool_cpu,
        offered_rate: opts.rate,
    })
}
