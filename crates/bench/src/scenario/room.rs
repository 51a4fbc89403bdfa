//! `room`: K occupants join one XEP-0045 room (timed), then random occupants send S messages per second in total to
//! it for D seconds; every message is reflected to all K occupants, so deliveries/s = S × K when the server keeps up.
//! The window starts once every occupant has read the presence backlog of later joiners (`settle_time_s`).

use std::sync::Arc;
use std::time::Duration;

use drupe_proto::xml::Element;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::traffic::{is_own_join, window, Directory, Measured};
use super::{login_many, report_failures};
use crate::client::Client;
use crate::proc::cpu_secs;
use crate::progress::{Printer, Progress};
use crate::raw::{self, tree};
use crate::report::Report;
use crate::tls::tls_connector;
use crate::{BenchError, Target};

#[derive(Clone, Debug)]
pub struct RoomOptions {
    pub occupants: usize,
    /// Messages per second sent to the room, all occupants together.
    pub rate: f64,
    pub duration: Duration,
    pub concurrency: usize,
    pub drain: Duration,
    /// The room's bare JID.
    pub room: String,
    /// The first occupant configures the room it creates as persistent with its message archive on
    /// (XEP-0045 §10.1.3, XEP-0313 §5.1.2), so every message is archived before its sender sees it reflected.
    pub archive: bool,
    pub pid: Option<u32>,
    pub show_progress: bool,
}

#[derive(Debug)]
pub struct RoomResult {
    pub occupants: usize,
    /// The room was configured with its archive on.
    pub archived: bool,
    pub login_failures: Vec<String>,
    pub join_failures: Vec<String>,
    pub join_time: Duration,
    /// From the last join confirmation until every occupant had read its join backlog.
    pub settle_time: Duration,
    /// Stanzas read while settling (mostly later joiners' presence).
    pub backlog: usize,
    /// CPU seconds the server and the tool used while joining and while settling (less noisy than the wall
    /// clock on a shared machine).
    pub join_cpu: PhaseCpu,
    pub settle_cpu: PhaseCpu,
    pub sent: u64,
    pub deliveries: u64,
    /// Messages bounced with `type='error'`.
    pub errors: u64,
    pub duration: Duration,
    pub measured: Measured,
    pub offered_rate: f64,
}

impl RoomResult {
    pub fn report(&self) -> Report {
        let secs = self.duration.as_secs_f64();
        let expected = self.sent * self.occupants as u64;
        let mut r = Report::new("room");
        r.int("occupants", self.occupants as u64, "");
        r.int("archived", u64::from(self.archived), "");
        report_failures(&mut r, "login_failures", &self.login_failures);
        report_failures(&mut r, "join_failures", &self.join_failures);
        r.float("join_time_s", self.join_time.as_secs_f64(), "s");
        r.float("settle_time_s", self.settle_time.as_secs_f64(), "s");
        r.int("backlog_stanzas", self.backlog as u64, "");
        r.opt_float("join_server_cpu_s", self.join_cpu.server, "s");
        r.float("join_bench_cpu_s", self.join_cpu.tool, "s");
        r.opt_float("settle_server_cpu_s", self.settle_cpu.server, "s");
        r.float("settle_bench_cpu_s", self.settle_cpu.tool, "s");
        r.float("offered_rate", self.offered_rate, "msg/s");
        r.int("sent", self.sent, "");
        r.float("sent_per_sec", self.sent as f64 / secs, "msg/s");
        r.int("deliveries", self.deliveries, "");
        r.float("deliveries_per_sec", self.deliveries as f64 / secs, "/s");
        r.int("undelivered", expected.saturating_sub(self.deliveries), "");
        r.int("bounced", self.errors, "");
        self.measured.report_into(&mut r);
        r
    }
}

/// CPU seconds used by the server (when its pid is known) and by this tool over one phase.
#[derive(Clone, Copy, Debug, Default)]
pub struct PhaseCpu {
    pub server: Option<f64>,
    pub tool: f64,
}

/// CPU time so far of the server and of this tool: [`PhaseCpu::since`] makes a phase of two readings.
fn cpu_now(pid: Option<u32>) -> PhaseCpu {
    PhaseCpu { server: pid.and_then(cpu_secs), tool: cpu_secs(std::process::id()).unwrap_or(0.0) }
}

impl PhaseCpu {
    fn since(self, start: PhaseCpu) -> PhaseCpu {
        PhaseCpu { server: self.server.zip(start.server).map(|(b, a)| b - a), tool: self.tool - start.tool }
    }
}

/// Sends the join and reads until the room reports this occupant in (its own presence, status 110).
async fn join(mut client: Client, room: &str, nick: &str, archive: bool, timeout: Duration) -> Result<Client, String> {
    client.outgoing.queue_join(room, nick);
    let until = Instant::now() + timeout;
    client.outgoing.write().await.map_err(|e| e.to_string())?;
    loop {
        let raw = tokio::time::timeout_at(until, client.incoming.next_raw())
            .await
            .map_err(|_| format!("{nick}: no join confirmation"))?
            .map_err(|e| e.to_string())?;
        // Most of what a newcomer reads is the presence of those already in: neither its own (110) nor an error.
        if raw::name(raw) == b"presence" && !raw::contains(raw, b"110") && !raw::contains(raw, b"error") {
            continue;
        }
        let el = tree(raw).map_err(|e| e.to_string())?;
        if el.name() == "presence" && el.attr("type") == Some("error") {
            return Err(format!("{nick}: join refused"));
        }
        if is_own_join(&el) {
            if !has_status(&el, "201") {
                return Ok(client);
            }
            // This occupant created the room, which stays locked until its owner accepts a configuration.
            client.outgoing.queue_room_config(room, if archive { ARCHIVED } else { &[] });
            client.outgoing.write().await.map_err(|e| e.to_string())?;
        }
        if el.name() == "iq" && el.attr("id") == Some("instant") {
            return match el.attr("type") {
                Some("result") => Ok(client),
                _ => Err(format!("{nick}: the new room's default configuration was refused")),
            };
        }
    }
}

/// The `muc#roomconfig` fields of an archived room: persistent (only those have an archive) with archiving on.
const ARCHIVED: &[(&str, &str)] = &[("muc#roomconfig_persistentroom", "1"), ("muc#roomconfig_enablearchiving", "1")];

/// Whether a MUC presence carries `<status code=code/>`.
fn has_status(el: &Element, code: &str) -> bool {
    el.children().filter(|x| x.name() == "x").flat_map(|x| x.children()).any(|s| s.attr("code") == Some(code))
}

/// Reads what the room still sends this occupant after everyone joined (the presence of later joiners, K²/2 stanzas
/// for the whole room) until `quiet` passes without a stanza, so the measured window starts with empty queues.
/// Returns the client and how many stanzas it read.
async fn settle(mut client: Client, quiet: Duration, limit: Instant) -> Result<(Client, usize), String> {
    let mut read = 0;
    loop {
        let until = (Instant::now() + quiet).min(limit);
        match tokio::time::timeout_at(until, client.incoming.next_raw()).await {
            Err(_) => return Ok((client, read)),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(raw)) => {
                read += 1;
                if matches!(raw::name(raw), b"presence" | b"message") {
                    continue;
                }
                let el = tree(raw).map_err(|e| e.to_string())?;
                if client.outgoing.answer_ping(&el) {
                    client.outgoing.write().await.map_err(|e| e.to_string())?;
                }
            }
        }
    }
}

pub async fn run(target: Arc<Target>, opts: &RoomOptions) -> Result<RoomResult, BenchError> {
    if opts.occupants < 2 || opts.rate <= 0.0 || opts.duration.is_zero() {
        return Err(BenchError("room needs --occupants >= 2, --rate > 0 and --duration > 0".into()));
    }
    let tls = tls_connector(target.tls_resumption);
    let progress = Progress::new();
    let _printer = Printer::start("room", progress.clone(), opts.show_progress);
    let sessions = (0..opts.occupants).map(|i| (i, "bench".to_owned())).collect();
    let logged = login_many(&target, &tls, sessions, opts.concurrency, &progress).await;
    let started = Instant::now();
    let join_cpu = cpu_now(opts.pid);
    let mut joins = JoinSet::new();
    let mut clients = logged.clients.into_iter();
    // The first occupant creates the room (and configures it if the server locks new rooms) before the rest join.
    let mut occupants = Vec::new();
    let mut join_failures = Vec::new();
    if let Some((slot, client)) = clients.next() {
        match join(client, &opts.room, &format!("u{slot}"), opts.archive, target.timeout).await {
            Ok(c) => occupants.push((slot, c)),
            Err(e) => join_failures.push(e),
        }
    }
    for (slot, client) in clients {
        let room = opts.room.clone();
        let wait = target.timeout;
        joins.spawn(async move { join(client, &room, &format!("u{slot}"), false, wait).await.map(|c| (slot, c)) });
    }
    while let Some(r) = joins.join_next().await {
        match r {
            Ok(Ok(c)) => occupants.push(c),
            Ok(Err(e)) => join_failures.push(e),
            Err(e) => join_failures.push(e.to_string()),
        }
    }
    let join_time = started.elapsed();
    let settle_cpu = cpu_now(opts.pid);
    let join_cpu = settle_cpu.since(join_cpu);
    if occupants.len() < 2 {
        return Err(BenchError(format!("only {} occupants joined {}", occupants.len(), opts.room)));
    }
    let settle_started = Instant::now();
    let limit = settle_started + target.timeout.max(Duration::from_secs(30));
    let mut settling = JoinSet::new();
    for (slot, client) in occupants {
        settling
            .spawn(async move { settle(client, Duration::from_millis(500), limit).await.map(|(c, n)| (slot, c, n)) });
    }
    let mut occupants = Vec::new();
    let mut backlog = 0;
    while let Some(r) = settling.join_next().await {
        match r {
            Ok(Ok((slot, c, read))) => {
                backlog += read;
                occupants.push((slot, c));
            }
            Ok(Err(e)) => join_failures.push(format!("while settling: {e}")),
            Err(e) => join_failures.push(e.to_string()),
        }
    }
    let settle_time = settle_started.elapsed();
    let settle_cpu = cpu_now(opts.pid).since(settle_cpu);
    let joined = occupants.len();
    let directory = Directory::for_room(opts.occupants, opts.room.clone());
    let w = window(occupants, directory, opts.rate, opts.duration, opts.drain, opts.pid, &progress).await;
    Ok(RoomResult {
        occupants: joined,
        archived: opts.archive,
        login_failures: logged.failures,
        join_failures,
        join_time,
        settle_time,
        backlog,
        join_cpu,
        settle_cpu,
        sent: w.sent,
        deliveries: w.delivered,
        errors: w.errors,
        duration: opts.duration,
        measured: w.measured,
        offered_rate: opts.rate,
    })
}
