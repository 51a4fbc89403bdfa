//! Shared counters of a run, and the one-line progress report on stderr.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counters updated by every client task (relaxed atomics: they are only read for display).
#[derive(Debug, Default)]
pub struct Progress {
    pub online: AtomicU64,
    pub logins: AtomicU64,
    pub failures: AtomicU64,
    pub sent: AtomicU64,
    pub delivered: AtomicU64,
    pub errors: AtomicU64,
}

impl Progress {
    pub fn new() -> Arc<Progress> {
        Arc::new(Progress::default())
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    fn line(&self, scenario: &str, elapsed: Duration) -> String {
        format!(
            "[{scenario}] {:>5.1}s online={} logins={} failed={} sent={} delivered={} errors={}",
            elapsed.as_secs_f64(),
            Progress::get(&self.online),
            Progress::get(&self.logins),
            Progress::get(&self.failures),
            Progress::get(&self.sent),
            Progress::get(&self.delivered),
            Progress::get(&self.errors),
        )
    }
}

/// Prints the counters to stderr once a second until dropped (on a terminal in place, otherwise every five
/// seconds on a new line). Does nothing when `enabled` is false.
pub struct Printer {
    task: Option<tokio::task::JoinHandle<()>>,
    tty: bool,
}

impl Printer {
    pub fn start(scenario: &'static str, progress: Arc<Progress>, enabled: bool) -> Printer {
        let tty = std::io::stderr().is_terminal();
        if !enabled {
            return Printer { task: None, tty };
        }
        let every = if tty { Duration::from_secs(1) } else { Duration::from_secs(5) };
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                let line = progress.line(scenario, start.elapsed());
                let mut err = std::io::stderr().lock();
                let _ = if tty { write!(err, "\r{line}\x1b[K") } else { writeln!(err, "{line}") };
                let _ = err.flush();
            }
        });
        Printer { task: Some(task), tty }
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            if self.tty {
                eprintln!();
            }
        }
    }
}
