//! `idle`: N authenticated sessions with presence, held open; the server's resident memory before, while held,
//! and after they close, and the memory each idle session costs. With `--steps 1000,5000,19000` the sessions
//! arrive in stages and each stage reports the server's memory and CPU per session (the growth curve).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{login_many, report_failures};
use crate::client::Client;
use crate::proc::{cpu_secs, rss_kb, CpuWatch, ToolCpu, ToolCpuUse};
use crate::progress::{Printer, Progress};
use crate::report::Report;
use crate::stats::Summary;
use crate::tls::tls_connector;
use crate::{BenchError, Target};

#[derive(Clone, Debug)]
pub struct IdleOptions {
    pub sessions: usize,
    /// Spread the sessions over this many accounts (distinct resources); default one account per session.
    pub accounts: Option<usize>,
    pub concurrency: usize,
    /// How long all sessions stay open after the last one logged in.
    pub hold: Duration,
    pub pid: Option<u32>,
    pub show_progress: bool,
    /// Session counts at which to measure (ascending); the last one replaces `sessions`.
    pub steps: Vec<usize>,
}

/// The server at one stage of the growth curve.
#[derive(Debug)]
pub struct Step {
    pub online: usize,
    pub rss_kb: Option<u64>,
    /// Server CPU spent while this stage's sessions logged in, per new session.
    pub login_cpu_ms_per_session: Option<f64>,
    /// Server CPU while all sessions so far sat idle for a second.
    pub idle_cpu_pct: Option<f64>,
}

#[derive(Debug)]
pub struct IdleResult {
    pub sessions: usize,
    pub accounts: usize,
    pub online: usize,
    pub failures: Vec<String>,
    pub login_elapsed: Duration,
    pub login_latency: Summary,
    pub rss_before_kb: Option<u64>,
    /// Once every session is up and a second has passed.
    pub rss_connected_kb: Option<u64>,
    /// At the end of the hold time.
    pub rss_held_kb: Option<u64>,
    /// A second after every session closed.
    pub rss_closed_kb: Option<u64>,
    pub server_idle_cpu_pct: Option<f64>,
    pub sessions_lost: Vec<String>,
    pub tool_cpu: ToolCpuUse,
    pub tool_rss_kb: Option<u64>,
    pub steps: Vec<Step>,
}

impl IdleResult {
    /// Server memory per held session, in KiB.
    pub fn kb_per_session(&self) -> Option<f64> {
        let (before, held) = (self.rss_before_kb?, self.rss_held_kb?);
        (self.online > 0).then(|| (held as f64 - before as f64) / self.online as f64)
    }

    pub fn report(&self) -> Report {
        let mut r = Report::new("idle");
        r.int("sessions", self.sessions as u64, "");
        r.int("accounts", self.accounts as u64, "");
        r.int("online", self.online as u64, "");
        report_failures(&mut r, "failed", &self.failures);
        r.float("login_elapsed_s", self.login_elapsed.as_secs_f64(), "s");
        r.float("logins_per_sec", self.online as f64 / self.login_elapsed.as_secs_f64(), "/s");
        r.latency("login", &self.login_latency);
        r.opt_int("server_rss_before_kb", self.rss_before_kb, "KiB");
        r.opt_int("server_rss_connected_kb", self.rss_connected_kb, "KiB");
        r.opt_int("server_rss_held_kb", self.rss_held_kb, "KiB");
        r.opt_int("server_rss_closed_kb", self.rss_closed_kb, "KiB");
        r.opt_float("server_kb_per_session", self.kb_per_session(), "KiB");
        r.opt_float("server_idle_cpu_pct", self.server_idle_cpu_pct, "%");
        report_failures(&mut r, "sessions_lost", &self.sessions_lost);
        for step in &self.steps {
            let n = step.online;
            r.opt_int(&format!("step_{n}_server_rss_kb"), step.rss_kb, "KiB");
            let per_session = self
                .rss_before_kb
                .zip(step.rss_kb)
                .filter(|_| n > 0)
                .map(|(before, rss)| (rss as f64 - before as f64) / n as f64);
            r.opt_float(&format!("step_{n}_server_kb_per_session"), per_session, "KiB");
            r.opt_float(&format!("step_{n}_server_login_cpu_ms_per_session"), step.login_cpu_ms_per_session, "ms");
            r.opt_float(&format!("step_{n}_server_idle_cpu_pct"), step.idle_cpu_pct, "%");
        }
        r.opt_int("bench_rss_kb", self.tool_rss_kb, "KiB");
        r.tool_cpu(&self.tool_cpu);
        r
    }
}

/// Keeps a session open, answering pings, until `stop`.
async fn hold(client: Client, mut stop: watch::Receiver<bool>) -> Option<String> {
    let Client { mut incoming, mut outgoing, jid } = client;
    loop {
        tokio::select! {
            r = incoming.next_stanza() => match r {
                Ok(el) => {
                    outgoing.answer_ping(&el);
                }
                Err(e) => return Some(e.to_string()),
            },
            r = outgoing.write(), if outgoing.pending() => if let Err(e) = r {
                return Some(e.to_string());
            },
            r = stop.changed() => if r.is_err() || *stop.borrow() { break },
        }
    }
    Client { incoming, outgoing, jid }.close().await;
    None
}

pub async fn run(target: Arc<Target>, opts: &IdleOptions) -> Result<IdleResult, BenchError> {
    let accounts = opts.accounts.unwrap_or(opts.sessions).clamp(1, opts.sessions.max(1));
    if opts.sessions == 0 {
        return Err(BenchError("idle needs --sessions > 0".into()));
    }
    let tls = tls_connector(target.tls_resumption);
    let progress = Progress::new();
    let _printer = Printer::start("idle", progress.clone(), opts.show_progress);
    let rss_before_kb = opts.pid.and_then(rss_kb);
    let tool_cpu = ToolCpu::start();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut set = JoinSet::new();
    let mut failures = Vec::new();
    let mut login_elapsed = Duration::ZERO;
    let mut latencies = crate::stats::Samples::new();
    let mut steps = Vec::new();
    let mut online = 0;
    let stages = if opts.steps.is_empty() { vec![opts.sessions] } else { opts.steps.clone() };
    let mut first = 0;
    for &upto in &stages {
        let sessions = (first..upto).map(|i| (i % accounts, format!("idle{i}"))).collect();
        let cpu_before = opts.pid.and_then(cpu_secs);
        let logged = login_many(&target, &tls, sessions, opts.concurrency, &progress).await;
        let new = logged.clients.len();
        let login_cpu = opts.pid.and_then(cpu_secs).zip(cpu_before).map(|(after, before)| after - before);
        online += new;
        first = upto;
        failures.extend(logged.failures);
        login_elapsed += logged.elapsed;
        latencies.merge(logged.latencies);
        for (_, client) in logged.clients {
            set.spawn(hold(client, stop_rx.clone()));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        if opts.steps.is_empty() {
            break;
        }
        let idle = opts.pid.and_then(CpuWatch::start);
        tokio::time::sleep(Duration::from_secs(1)).await;
        steps.push(Step {
            online,
            rss_kb: opts.pid.and_then(rss_kb),
            login_cpu_ms_per_session: login_cpu.filter(|_| new > 0).map(|s| s * 1000.0 / new as f64),
            idle_cpu_pct: idle.and_then(|w| w.percent()),
        });
    }
    let rss_connected_kb = opts.pid.and_then(rss_kb);
    let server_cpu = opts.pid.and_then(CpuWatch::start);
    tokio::time::sleep(opts.hold).await;
    let rss_held_kb = opts.pid.and_then(rss_kb);
    let server_idle_cpu_pct = server_cpu.and_then(|w| w.percent());
    let tool_rss_kb = rss_kb(std::process::id());
    let tool_cpu = tool_cpu.finish();
    let _ = stop_tx.send(true);
    let mut sessions_lost = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(None) => {}
            Ok(Some(e)) => sessions_lost.push(e),
            Err(e) => sessions_lost.push(format!("client task: {e}")),
        }
    }
    if opts.pid.is_some() {
        // Give the server a moment to tear the sessions down before reading what memory it kept.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(IdleResult {
        sessions: opts.sessions,
        accounts,
        online,
        failures,
        login_elapsed,
        login_latency: latencies.summary(),
        rss_before_kb,
        rss_connected_kb,
        rss_held_kb,
        rss_closed_kb: opts.pid.and_then(rss_kb),
        server_idle_cpu_pct,
        sessions_lost,
        tool_cpu,
        tool_rss_kb,
        steps,
    })
}
