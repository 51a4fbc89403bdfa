//! `drupe-bench`: the command line over the scenarios in the library; prints a table or one JSON object.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use drupe_bench::report::Report;
use drupe_bench::scenario::{chat, idle, lanying, login, room};
use drupe_bench::{Mechanism, Target};

#[derive(Parser)]
#[command(name = "drupe-bench", version, about = "Load tool for XMPP servers (STARTTLS, SASL, c2s)")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Args)]
#[command(next_help_heading = "Common options")]
struct Common {
    /// Server host to connect to.
    #[arg(long, global = true, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, global = true, default_value_t = 5222)]
    port: u16,
    /// XMPP domain of the accounts (stream `to`, TLS server name).
    #[arg(long, global = true, default_value = "localhost")]
    domain: String,
    /// Username pattern; `{}` becomes the user index (0, 1, ...).
    #[arg(long, global = true, default_value = "user{}")]
    user_pattern: String,
    /// Password of every account.
    #[arg(long, global = true, default_value = "secret", env = "DRUPE_BENCH_PASSWORD")]
    password: String,
    /// SASL mechanism: PLAIN, SCRAM-SHA-1 or SCRAM-SHA-256.
    #[arg(long, global = true, default_value = "PLAIN")]
    mechanism: String,
    /// Server process id, to report its memory (VmRSS) and CPU time from /proc.
    #[arg(long, global = true)]
    pid: Option<u32>,
    /// Print one JSON object instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Also append the JSON object, as one line, to this file.
    #[arg(long, global = true)]
    json_out: Option<std::path::PathBuf>,
    /// No progress line on stderr.
    #[arg(long, global = true)]
    quiet: bool,
    /// Worker threads of the tool's runtime (default: the CPUs it may run on).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Seconds a login may take before it counts as failed.
    #[arg(long, global = true, default_value_t = 30.0)]
    timeout: f64,
    /// Let clients resume TLS sessions (default: a full handshake per connection).
    #[arg(long, global = true)]
    tls_resumption: bool,
    /// login: log in over RFC 7395 WebSocket at this URL (e.g. wss://127.0.0.1:5443/xmpp-websocket) instead of
    /// TCP with STARTTLS.
    #[arg(long, global = true)]
    websocket: Option<String>,
}

#[derive(Subcommand)]
enum Scenario {
    /// Hold N authenticated sessions open and report the server's memory per session.
    Idle {
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        /// Spread sessions over this many accounts (as distinct resources); default: one account each.
        #[arg(long)]
        accounts: Option<usize>,
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
        /// Seconds to hold the sessions once all are online.
        #[arg(long, default_value_t = 5.0)]
        hold: f64,
        /// Measure at these session counts (ascending, e.g. 1000,5000,19000); the last replaces --sessions.
        #[arg(long, value_delimiter = ',')]
        steps: Vec<usize>,
    },
    /// N complete logins (connect, STARTTLS, SASL, bind, presence, close).
    Login {
        #[arg(long, default_value_t = 1000)]
        users: usize,
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
        /// Start logins at this rate per second instead of as fast as possible.
        #[arg(long)]
        rate: Option<f64>,
    },
    /// M online users send 1:1 messages to random other users at an aggregate rate.
    Chat {
        #[arg(long, default_value_t = 200)]
        users: usize,
        /// Messages per second, all users together.
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        /// Seconds of sending.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Logins in flight while the users come online.
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
        /// Seconds to wait for messages still under way after the last send.
        #[arg(long, default_value_t = 5.0)]
        drain: f64,
    },
    /// Users log in over the ramp, then each messages a random online user every interval.
    Lanying {
        #[arg(long, default_value_t = 4000)]
        users: usize,
        /// Seconds over which the logins are spread.
        #[arg(long, default_value_t = 60.0)]
        ramp: f64,
        /// Seconds between two messages of one user.
        #[arg(long, default_value_t = 10.0)]
        interval: f64,
        /// Seconds of sending after the ramp.
        #[arg(long, default_value_t = 60.0)]
        duration: f64,
        #[arg(long, default_value_t = 5.0)]
        drain: f64,
    },
    /// One XEP-0045 room: K occupants join, then S messages/s in total go to the room.
    Room {
        #[arg(long, default_value_t = 100)]
        occupants: usize,
        /// Messages per second sent to the room, all occupants together.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
        #[arg(long, default_value_t = 5.0)]
        drain: f64,
        /// The room's bare JID (default: bench@conference.<domain>).
        #[arg(long)]
        room: Option<String>,
        /// Configure the new room as persistent with its message archive on (every message archived durably).
        #[arg(long)]
        archive: bool,
    },
}

fn secs(v: f64, name: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v).with_context(|| format!("--{name} must be a non-negative number of seconds"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drupe-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let c = cli.common;
    let Some(mechanism) = Mechanism::from_name(&c.mechanism) else {
        bail!("--mechanism must be PLAIN, SCRAM-SHA-1 or SCRAM-SHA-256, not `{}`", c.mechanism);
    };
    let target = Arc::new(Target {
        host: c.host,
        port: c.port,
        domain: c.domain,
        user_pattern: c.user_pattern,
        password: c.password,
        mechanism,
        timeout: secs(c.timeout, "timeout")?,
        tls_resumption: c.tls_resumption,
        websocket: c.websocket,
    });
    let threads = c.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("bench-worker")
        .enable_all()
        .build()?;
    let show_progress = !c.quiet && !c.json;
    let (pid, show) = (c.pid, show_progress);
    let report: Report = runtime.block_on(async {
        Ok::<_, anyhow::Error>(match cli.scenario {
            Scenario::Idle { sessions, accounts, concurrency, hold, steps } => {
                if !steps.is_empty() && (steps.windows(2).any(|w| w[0] >= w[1]) || steps[0] == 0) {
                    anyhow::bail!("--steps must be ascending session counts above 0");
                }
                let opts = idle::IdleOptions {
                    sessions: steps.last().copied().unwrap_or(sessions),
                    steps,
                    accounts,
                    concurrency,
                    hold: secs(hold, "hold")?,
                    pid,
                    show_progress: show,
                };
                idle::run(target, &opts).await?.report()
            }
            Scenario::Login { users, concurrency, rate } => {
                let opts = login::LoginOptions { users, concurrency, rate, pid, show_progress: show };
                login::run(target, &opts).await?.report()
            }
            Scenario::Chat { users, rate, duration, concurrency, drain } => {
                let opts = chat::ChatOptions {
                    users,
                    rate,
                    duration: secs(duration, "duration")?,
                    concurrency,
                    drain: secs(drain, "drain")?,
                    pid,
                    show_progress: show,
                };
                chat::run(target, &opts).await?.report()
            }
            Scenario::Lanying { users, ramp, interval, duration, drain } => {
                let opts = lanying::LanyingOptions {
                    users,
                    ramp: secs(ramp, "ramp")?,
                    interval: secs(interval, "interval")?,
                    duration: secs(duration, "duration")?,
                    drain: secs(drain, "drain")?,
                    pid,
                    show_progress: show,
                };
                lanying::run(target, &opts).await?.report()
            }
            Scenario::Room { occupants, rate, duration, concurrency, drain, room, archive } => {
                let room = room.unwrap_or_else(|| format!("bench@conference.{}", target.domain));
                let opts = room::RoomOptions {
                    occupants,
                    rate,
                    duration: secs(duration, "duration")?,
                    concurrency,
                    drain: secs(drain, "drain")?,
                    room,
                    archive,
                    pid,
                    show_progress: show,
                };
                room::run(target, &opts).await?.report()
            }
        })
    })?;
    // Dropping the runtime would wait for nothing useful: every scenario has closed its clients.
    runtime.shutdown_timeout(Duration::from_secs(1));
    if let Some(path) = &c.json_out {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        writeln!(file, "{}", report.to_json()).with_context(|| format!("writing {}", path.display()))?;
    }
    if c.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    for w in &report.warnings {
        if c.json {
            eprintln!("drupe-bench: warning: {w}");
        }
    }
    Ok(())
}
