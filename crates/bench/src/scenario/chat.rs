//! `chat`: M users online, sending 1:1 messages to random other online users at an aggregate rate R for S
//! seconds; delivered rate, loss and latency, and the server's CPU over the sending window.

use std::sync::Arc;
use std::time::Duration;

use super::traffic::{window, Directory, Measured};
use super::{login_many, report_failures};
use crate::progress::{Printer, Progress};
use crate::report::Report;
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
    pub measured: Measured,
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
        self.measured.report_into(&mut r);
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
    let w = window(logged.clients, directory, opts.rate, opts.duration, opts.drain, opts.pid, &progress).await;
    Ok(ChatResult {
        users_online: online,
        login_failures: logged.failures,
        sent: w.sent,
        delivered: w.delivered,
        errors: w.errors,
        undelivered: w.undelivered,
        duration: opts.duration,
        measured: w.measured,
        offered_rate: opts.rate,
    })
}
