//! Readers for `/proc`: the server's resident memory and CPU time, and the tool's own CPU time per worker
//! thread, so that a run can tell whether the tool itself was the bottleneck.

use std::collections::HashMap;
use std::time::Instant;

/// Clock ticks per second of `/proc/*/stat` times; 100 on every Linux configuration in use (USER_HZ).
const TICKS_PER_SEC: f64 = 100.0;

/// Resident set size of process `pid` in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User plus system CPU time of a process or thread from its `stat` file, in seconds.
fn stat_cpu_secs(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may contain spaces and parentheses: fields are counted after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of proc(5) are utime and stime; `rest` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SEC)
}

/// CPU time (user + system) process `pid` has used, in seconds.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    stat_cpu_secs(&format!("/proc/{pid}/stat"))
}

/// CPU use of a process between two points in time, as a percentage of one core.
pub struct CpuWatch {
    pid: u32,
    start_cpu: f64,
    start: Instant,
}

impl CpuWatch {
    pub fn start(pid: u32) -> Option<CpuWatch> {
        Some(CpuWatch { pid, start_cpu: cpu_secs(pid)?, start: Instant::now() })
    }

    /// Percentage of one core used since `start` (200 = two cores busy).
    pub fn percent(&self) -> Option<f64> {
        let used = cpu_secs(self.pid)? - self.start_cpu;
        let wall = self.start.elapsed().as_secs_f64();
        (wall > 0.0).then(|| 100.0 * used / wall)
    }
}

/// Thread name prefixes of async worker threads: the CLI's runtime, and tokio's default (tests).
const WORKER_PREFIXES: &[&str] = &["bench-worker", "tokio-runtime-w"];

fn thread_cpu() -> HashMap<String, (String, f64)> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return out };
    for entry in dir.flatten() {
        let tid = entry.file_name().to_string_lossy().into_owned();
        let name = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap_or_default();
        if let Some(cpu) = stat_cpu_secs(&format!("/proc/self/task/{tid}/stat")) {
            out.insert(tid, (name.trim().to_owned(), cpu));
        }
    }
    out
}

/// The tool's own CPU use over a run.
pub struct ToolCpu {
    start: Instant,
    process: f64,
    threads: HashMap<String, (String, f64)>,
}

/// What [`ToolCpu::finish`] found.
#[derive(Clone, Copy, Debug, Default)]
pub struct ToolCpuUse {
    /// Whole process, percent of one core.
    pub percent: f64,
    /// The busiest async worker thread, percent of one core.
    pub busiest_worker_percent: f64,
    /// Number of async worker threads seen.
    pub workers: usize,
}

impl ToolCpuUse {
    /// Whether the tool ran near the limit of its worker threads, so that the server may have been measured
    /// against a slow client rather than at its own limit.
    pub fn saturated(&self) -> bool {
        let per_worker = if self.workers > 0 { self.percent / self.workers as f64 } else { 0.0 };
        self.busiest_worker_percent > 90.0 || per_worker > 90.0
    }

    pub fn warning(&self) -> Option<String> {
        self.saturated().then(|| {
            format!(
                "drupe-bench itself was saturated ({:.0}% CPU over {} worker thread(s), busiest {:.0}%): \
                 the numbers may measure the tool, not the server; give it more cores (--threads, taskset)",
                self.percent, self.workers, self.busiest_worker_percent
            )
        })
    }
}

impl ToolCpu {
    pub fn start() -> ToolCpu {
        ToolCpu { start: Instant::now(), process: cpu_secs_self(), threads: thread_cpu() }
    }

    pub fn finish(&self) -> ToolCpuUse {
        let wall = self.start.elapsed().as_secs_f64().max(1e-6);
        let mut workers = 0;
        let mut busiest: f64 = 0.0;
        for (tid, (name, cpu)) in thread_cpu() {
            if !WORKER_PREFIXES.iter().any(|p| name.starts_with(p)) {
                continue;
            }
            workers += 1;
            let before = self.threads.get(&tid).map_or(0.0, |(_, c)| *c);
            busiest = busiest.max(100.0 * (cpu - before) / wall);
        }
        ToolCpuUse {
            percent: 100.0 * (cpu_secs_self() - self.process) / wall,
            busiest_worker_percent: busiest,
            workers,
        }
    }
}

fn cpu_secs_self() -> f64 {
    stat_cpu_secs("/proc/self/stat").unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_memory_and_cpu() {
        let pid = std::process::id();
        assert!(rss_kb(pid).unwrap() > 100);
        assert!(cpu_secs(pid).unwrap() >= 0.0);
        assert!(rss_kb(u32::MAX).is_none());
    }
}
