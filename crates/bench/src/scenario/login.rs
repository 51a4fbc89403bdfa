//! `login`: N complete logins (connect, STARTTLS, SASL, bind, presence, close), as fast as possible with at most
//! C in flight or started at a fixed rate; logins per second and the latency from connect to bind result.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::report_failures;
use crate::client;
use crate::proc::{CpuWatch, ToolCpu, ToolCpuUse};
use crate::progress::{Printer, Progress};
use crate::report::Report;
use crate::stats::{Samples, Summary};
use crate::tls::tls_connector;
use crate::{BenchError, Target};

#[derive(Clone, Debug)]
pub struct LoginOptions {
    pub users: usize,
    /// Most logins in flight.
    pub concurrency: usize,
    /// Start logins at this rate per second instead of as fast as possible.
    pub rate: Option<f64>,
    pub pid: Option<u32>,
    pub show_progress: bool,
}

#[derive(Debug)]
pub struct LoginResult {
    pub attempted: usize,
    pub ok: usize,
    pub failures: Vec<String>,
    pub elapsed: Duration,
    pub latency: Summary,
    pub server_cpu_pct: Option<f64>,
    pub tool_cpu: ToolCpuUse,
    pub mechanism: &'static str,
    /// `tcp` (STARTTLS) or `websocket`.
    pub transport: &'static str,
    /// Logins that started later than their slot because C were already in flight (fixed-rate mode only).
    pub late_starts: u64,
}

impl LoginResult {
    pub fn logins_per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    pub fn report(&self) -> Report {
        let mut r = Report::new("login");
        r.text("mechanism", self.mechanism);
        r.text("transport", self.transport);
        r.int("attempted", self.attempted as u64, "");
        r.int("ok", self.ok as u64, "");
        report_failures(&mut r, "failed", &self.failures);
        r.float("elapsed_s", self.elapsed.as_secs_f64(), "s");
        r.float("logins_per_sec", self.logins_per_sec(), "/s");
        r.latency("login", &self.latency);
        r.opt_float("server_cpu_pct", self.server_cpu_pct, "%");
        let per_login = self.server_cpu_pct.filter(|_| self.ok > 0).map(|pct| {
            // CPU-seconds used over the run, per login, in ms.
            pct / 100.0 * self.elapsed.as_secs_f64() / self.ok as f64 * 1000.0
        });
        r.opt_float("server_cpu_ms_per_login", per_login, "ms");
        r.int("late_starts", self.late_starts, "");
        r.tool_cpu(&self.tool_cpu);
        r
    }
}

pub async fn run(target: Arc<Target>, opts: &LoginOptions) -> Result<LoginResult, BenchError> {
    if opts.users == 0 || opts.rate.is_some_and(|r| r <= 0.0) {
        return Err(BenchError("login needs --users > 0 and --rate > 0 when given".into()));
    }
    let tls = tls_connector(target.tls_resumption);
    let progress = Progress::new();
    let _printer = Printer::start("login", progress.clone(), opts.show_progress);
    let tool_cpu = ToolCpu::start();
    let server_cpu = opts.pid.and_then(CpuWatch::start);
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let start = Instant::now();
    let mut late_starts = 0;
    let mut set = JoinSet::new();
    for i in 0..opts.users {
        if let Some(rate) = opts.rate {
            tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        }
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                late_starts += u64::from(opts.rate.is_some());
                permits.clone().acquire_owned().await.expect("semaphore is never closed")
            }
        };
        let (target, tls, progress) = (target.clone(), tls.clone(), progress.clone());
        set.spawn(async move {
            let t0 = Instant::now();
            let result = async {
                if let Some(url) = &target.websocket {
                    return crate::ws::websocket_login_cycle(&target, &tls, url, i, "bench").await;
                }
                let mut c = client::login(&target, &tls, i, "bench").await?;
                let latency = t0.elapsed();
                c.send_presence().await?;
                c.close().await;
                Ok::<_, client::ClientError>(latency)
            }
            .await;
            drop(permit);
            match &result {
                Ok(_) => Progress::add(&progress.logins, 1),
                Err(_) => Progress::add(&progress.failures, 1),
            }
            result
        });
    }
    let mut latencies = Samples::new();
    let mut failures = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(latency)) => latencies.record(latency),
            Ok(Err(e)) => failures.push(e.to_string()),
            Err(e) => failures.push(format!("client task: {e}")),
        }
    }
    let elapsed = start.elapsed();
    Ok(LoginResult {
        attempted: opts.users,
        ok: latencies.len(),
        failures,
        elapsed,
        latency: latencies.summary(),
        server_cpu_pct: server_cpu.and_then(|w| w.percent()),
        tool_cpu: tool_cpu.finish(),
        mechanism: target.mechanism.name(),
        transport: if target.websocket.is_some() { "websocket" } else { "tcp" },
        late_starts,
    })
}
