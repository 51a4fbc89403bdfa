//! `lanying`: the IM load profile of the Lanying benchmark. N users log in spread evenly over the ramp time;
//! each, once online, sends a message every `interval` to a random online user until ramp + duration has
//! passed. Login average and p99, message latency, and the server's memory at the end.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::traffic::{converse, Directory, Measured, Outcome, Schedule, Totals};
use super::{drain, report_failures};
use crate::client;
use crate::proc::{rss_kb, CpuWatch, ToolCpu};
use crate::progress::{Printer, Progress};
use crate::report::Report;
use crate::stats::{Samples, Summary};
use crate::tls::tls_connector;
use crate::{BenchError, Target};

#[derive(Clone, Debug)]
pub struct LanyingOptions {
    pub users: usize,
    pub ramp: Duration,
    pub interval: Duration,
    /// Sending goes on until `ramp + duration` after the start.
    pub duration: Duration,
    pub drain: Duration,
    pub pid: Option<u32>,
    pub show_progress: bool,
}

#[derive(Debug)]
pub struct LanyingResult {
    pub users: usize,
    pub online: usize,
    pub login_failures: Vec<String>,
    pub login_latency: Summary,
    pub sent: u64,
    pub delivered: u64,
    pub errors: u64,
    /// Sent and not delivered by the end of the drain time (bounces included).
    pub undelivered: u64,
    pub measured: Measured,
}

impl LanyingResult {
    pub fn report(&self) -> Report {
        let mut r = Report::new("lanying");
        r.int("users", self.users as u64, "");
        r.int("online", self.online as u64, "");
        report_failures(&mut r, "login_failures", &self.login_failures);
        r.latency("login", &self.login_latency);
        r.int("sent", self.sent, "");
        r.int("delivered", self.delivered, "");
        r.int("undelivered", self.undelivered, "");
        r.int("bounced", self.errors, "");
        self.measured.report_into(&mut r);
        r
    }
}

enum UserEnd {
    LoginFailed(String),
    Done(Duration, Outcome),
}

pub async fn run(target: Arc<Target>, opts: &LanyingOptions) -> Result<LanyingResult, BenchError> {
    if opts.users < 2 || opts.interval.is_zero() {
        return Err(BenchError("lanying needs --users >= 2 and --interval > 0".into()));
    }
    let tls = tls_connector(target.tls_resumption);
    let progress = Progress::new();
    let _printer = Printer::start("lanying", progress.clone(), opts.show_progress);
    let directory = Directory::new(opts.users);
    let (stop_tx, stop_rx) = watch::channel(false);
    let tool_cpu = ToolCpu::start();
    let server_cpu = opts.pid.and_then(CpuWatch::start);
    let start = Instant::now();
    let until = start + opts.ramp + opts.duration;
    let mut set = JoinSet::new();
    for i in 0..opts.users {
        let login_at = start + opts.ramp.mul_f64(i as f64 / opts.users as f64);
        let (target, tls, progress, directory, stop) =
            (target.clone(), tls.clone(), progress.clone(), directory.clone(), stop_rx.clone());
        let interval = opts.interval;
        set.spawn(async move {
            tokio::time::sleep_until(login_at).await;
            let t0 = Instant::now();
            let login = async {
                let mut c = client::login(&target, &tls, i, "bench").await?;
                let latency = t0.elapsed();
                c.send_presence().await?;
                Ok::<_, client::ClientError>((c, latency))
            };
            let (client, latency) = match login.await {
                Ok(x) => x,
                Err(e) => {
                    Progress::add(&progress.failures, 1);
                    return UserEnd::LoginFailed(e.to_string());
                }
            };
            Progress::add(&progress.logins, 1);
            Progress::add(&progress.online, 1);
            directory.set_online(i, &client.jid);
            let first = Instant::now() + interval.mul_f64(rand::thread_rng().gen_range(0.0..1.0));
            let schedule = Schedule { first, period: interval, until };
            UserEnd::Done(latency, converse(client, i, schedule, directory, progress, stop).await)
        });
    }
    tokio::time::sleep_until(until).await;
    let server_cpu_pct = server_cpu.and_then(|w| w.percent());
    let tool_cpu = tool_cpu.finish();
    drain(&progress, opts.drain).await;
    let server_rss_kb = opts.pid.and_then(rss_kb);
    let _ = stop_tx.send(true);
    let mut totals = Totals::default();
    let mut logins = Samples::new();
    let mut login_failures = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(UserEnd::Done(latency, outcome)) => {
                logins.record(latency);
                totals.add(outcome);
            }
            Ok(UserEnd::LoginFailed(e)) => login_failures.push(e),
            Err(e) => login_failures.push(format!("client task: {e}")),
        }
    }
    Ok(LanyingResult {
        users: opts.users,
        online: logins.len(),
        login_failures,
        login_latency: logins.summary(),
        sent: totals.sent,
        delivered: totals.delivered,
        errors: totals.errors,
        undelivered: totals.undelivered(),
        measured: totals.measured(server_cpu_pct, server_rss_kb, tool_cpu),
    })
}
