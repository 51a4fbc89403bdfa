//! Message traffic between online users: each user task sends chat messages on its own timer to random other
//! online users and measures the latency of the messages it receives from the send time in their body.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use drupe_proto::xml::Element;
use rand::Rng;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::now_us;
use crate::client::{Client, ClientError, Outgoing};
use crate::progress::Progress;
use crate::raw::{self, tree};
use crate::stats::Samples;

/// Prefix of every message body this tool sends: `drupe-bench <run id> <send time µs> <sender slot>`. The run id
/// (random per process) keeps messages left over from an earlier run (e.g. stored offline by an overloaded server
/// and delivered to the same accounts now) out of this run's counts and latencies.
const BODY_PREFIX: &str = "drupe-bench ";

fn run_id() -> u64 {
    static RUN: OnceLock<u64> = OnceLock::new();
    *RUN.get_or_init(rand::random)
}

/// Bytes a user may have queued for a server that does not read them before it skips sending.
const MAX_QUEUED: usize = 256 * 1024;

/// Who can be messaged: the bound JID of every user slot and whether it is online.
pub struct Directory {
    jids: Vec<OnceLock<String>>,
    online: Vec<AtomicBool>,
    /// In a room scenario: every message goes to this room as `groupchat`.
    room: Option<String>,
}

impl Directory {
    pub fn new(users: usize) -> Arc<Directory> {
        Arc::new(Directory::build(users, None))
    }

    /// Every user sends its messages to `room`.
    pub fn for_room(users: usize, room: String) -> Arc<Directory> {
        Arc::new(Directory::build(users, Some(room)))
    }

    fn build(users: usize, room: Option<String>) -> Directory {
        Directory {
            jids: (0..users).map(|_| OnceLock::new()).collect(),
            online: (0..users).map(|_| AtomicBool::new(false)).collect(),
            room,
        }
    }

    pub fn set_online(&self, slot: usize, jid: &str) {
        let _ = self.jids[slot].set(jid.to_owned());
        self.online[slot].store(true, Relaxed);
    }

    pub fn set_offline(&self, slot: usize) {
        self.online[slot].store(false, Relaxed);
    }

    /// A random online user other than `me`, if one is found in a few tries.
    fn pick(&self, me: usize) -> Option<&str> {
        let n = self.jids.len();
        let mut rng = rand::thread_rng();
        for _ in 0..16 {
            let j = rng.gen_range(0..n);
            if j != me && self.online[j].load(Relaxed) {
                return self.jids[j].get().map(String::as_str);
            }
        }
        None
    }
}

/// When one user sends: first at `first`, then every `period`, the last no later than `until`.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub first: Instant,
    pub period: Duration,
    pub until: Instant,
}

/// What one user task saw.
#[derive(Debug, Default)]
pub struct Outcome {
    pub sent: u64,
    pub delivered: u64,
    /// Messages bounced with `type='error'`.
    pub errors: u64,
    pub latencies: Samples,
    /// Why the session ended before it was told to stop.
    pub lost_session: Option<String>,
}

/// Runs user `me` until `stop` turns true (or its sender is dropped), then closes the stream.
pub async fn converse(
    client: Client,
    me: usize,
    schedule: Schedule,
    directory: Arc<Directory>,
    progress: Arc<Progress>,
    mut stop: watch::Receiver<bool>,
) -> Outcome {
    let mut out = Outcome::default();
    let mut ticker = tokio::time::interval_at(schedule.first, schedule.period.max(Duration::from_micros(100)));
    // Burst: a late tick is made up for, so that the aggregate rate holds when a worker falls behind briefly.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut sending = schedule.first < schedule.until;
    let Client { mut incoming, mut outgoing, jid } = client;
    loop {
        tokio::select! {
            r = incoming.next_raw() => match r.and_then(|raw| receive_raw(&mut outgoing, raw, &mut out, &progress)) {
                Ok(()) => {}
                Err(e) => {
                    out.lost_session = Some(e.to_string());
                    break;
                }
            },
            r = outgoing.write(), if outgoing.pending() => if let Err(e) = r {
                out.lost_session = Some(e.to_string());
                break;
            },
            _ = ticker.tick(), if sending => {
                if Instant::now() >= schedule.until {
                    sending = false;
                    continue;
                }
                if outgoing.queued_bytes() > MAX_QUEUED {
                    // The server has not taken what was queued: it pushes back, and this tick is not sent.
                    continue;
                }
                // Stamped when queued: time spent waiting for the server to take the bytes is latency too.
                let body = format!("{BODY_PREFIX}{} {} {me}", run_id(), now_us());
                match &directory.room {
                    Some(room) => outgoing.queue_typed_message(room, "groupchat", &body),
                    None => {
                        let Some(to) = directory.pick(me) else { continue };
                        outgoing.queue_message(to, &body);
                    }
                }
                out.sent += 1;
                Progress::add(&progress.sent, 1);
            }
            r = stop.changed() => if r.is_err() || *stop.borrow() { break },
        }
    }
    directory.set_offline(me);
    if out.lost_session.is_none() {
        Client { incoming, outgoing, jid }.close().await;
    } else {
        Progress::add(&progress.failures, 1);
    }
    Progress::sub(&progress.online, 1);
    out
}

/// A XEP-0045 self-presence (status 110): the room has taken this occupant in.
pub fn is_own_join(el: &Element) -> bool {
    el.name() == "presence"
        && el.attr("type").is_none()
        && el.children().filter(|x| x.name() == "x").flat_map(|x| x.children()).any(|s| s.attr("code") == Some("110"))
}

/// [`receive`] without building a tree for what is most of the traffic: a message carrying this run's send time
/// (read from the raw body, which holds only digits and spaces after its prefix).
fn receive_raw(outgoing: &mut Outgoing, raw: &[u8], out: &mut Outcome, progress: &Progress) -> Result<(), ClientError> {
    if raw::name(raw) == b"message" && raw::attr(raw, b"type") != Some(b"error") {
        // Room history replayed on join carries a delay stamp: not this run's traffic.
        if raw::contains(raw, b"<delay") {
            return Ok(());
        }
        if let Some(sent_us) =
            raw::find(raw, BODY_PREFIX.as_bytes()).and_then(|at| sent_time(&raw[at + BODY_PREFIX.len()..]))
        {
            out.delivered += 1;
            out.latencies.record_us(now_us().saturating_sub(sent_us));
            Progress::add(&progress.delivered, 1);
        }
        return Ok(());
    }
    receive(outgoing, &tree(raw)?, out, progress);
    Ok(())
}

/// The send time of a body that follows [`BODY_PREFIX`] with `<run id> <send time µs>`, if it is this run's.
fn sent_time(fields: &[u8]) -> Option<u64> {
    let number = |b: &[u8]| -> Option<(u64, usize)> {
        let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
        std::str::from_utf8(&b[..n]).ok()?.parse().ok().map(|v| (v, n))
    };
    let (run, n) = number(fields)?;
    let rest = fields.get(n..)?.strip_prefix(b" ")?;
    (run == run_id()).then_some(())?;
    number(rest).map(|(sent, _)| sent)
}

fn receive(outgoing: &mut Outgoing, el: &Element, out: &mut Outcome, progress: &Progress) {
    // Room history replayed on join carries a delay stamp: not this run's traffic.
    if outgoing.answer_ping(el) || el.name() != "message" || el.children().any(|c| c.name() == "delay") {
        return;
    }
    if el.attr("type") == Some("error") {
        out.errors += 1;
        Progress::add(&progress.errors, 1);
        return;
    }
    let Some(body) = el.children().find(|c| c.name() == "body").map(Element::text) else { return };
    let mut fields = body.strip_prefix(BODY_PREFIX).unwrap_or_default().split(' ');
    if fields.next().and_then(|r| r.parse::<u64>().ok()) != Some(run_id()) {
        return; // not ours, or from an earlier run
    }
    let Some(sent_us) = fields.next().and_then(|t| t.parse::<u64>().ok()) else { return };
    out.delivered += 1;
    out.latencies.record_us(now_us().saturating_sub(sent_us));
    Progress::add(&progress.delivered, 1);
}

/// The sum of many users' outcomes.
#[derive(Debug, Default)]
pub struct Totals {
    pub sent: u64,
    pub delivered: u64,
    pub errors: u64,
    pub latencies: Samples,
    pub lost_sessions: Vec<String>,
}

impl Totals {
    pub fn add(&mut self, o: Outcome) {
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.errors += o.errors;
        self.latencies.merge(o.latencies);
        self.lost_sessions.extend(o.lost_session);
    }

    /// Messages sent and never delivered (bounces included).
    pub fn undelivered(&self) -> u64 {
        self.sent.saturating_sub(self.delivered)
    }

    /// The latencies and lost sessions, with what was read of the server and the tool over the same run.
    pub fn measured(
        &mut self,
        server_cpu_pct: Option<f64>,
        server_rss_kb: Option<u64>,
        tool_cpu: crate::proc::ToolCpuUse,
    ) -> Measured {
        Measured {
            latency: self.latencies.summary(),
            lost_sessions: std::mem::take(&mut self.lost_sessions),
            server_cpu_pct,
            server_rss_kb,
            tool_cpu,
        }
    }
}

/// What every traffic scenario (chat, room, lanying) measures besides its own counts.
#[derive(Debug)]
pub struct Measured {
    pub latency: crate::stats::Summary,
    pub lost_sessions: Vec<String>,
    pub server_cpu_pct: Option<f64>,
    pub server_rss_kb: Option<u64>,
    pub tool_cpu: crate::proc::ToolCpuUse,
}

impl Measured {
    pub fn report_into(&self, r: &mut crate::report::Report) {
        r.latency("latency", &self.latency);
        r.opt_float("server_cpu_pct", self.server_cpu_pct, "%");
        r.opt_int("server_rss_kb", self.server_rss_kb, "KiB");
        super::report_failures(r, "sessions_lost", &self.lost_sessions);
        r.tool_cpu(&self.tool_cpu);
    }
}

/// What [`window`] counted and measured.
pub struct Window {
    pub sent: u64,
    pub delivered: u64,
    pub errors: u64,
    pub undelivered: u64,
    pub measured: Measured,
}

/// Runs the sending window shared by `chat` and `room`: every client sends `rate / clients` messages per second
/// (random phases, so the aggregate is smooth) for `duration`, then the tool waits up to `drain` for messages still
/// under way, stops every client and adds up what they saw.
pub async fn window(
    clients: Vec<(usize, Client)>,
    directory: Arc<Directory>,
    rate: f64,
    duration: std::time::Duration,
    drain: std::time::Duration,
    pid: Option<u32>,
    progress: &Arc<Progress>,
) -> Window {
    use crate::proc::{rss_kb, CpuWatch, ToolCpu};
    let occupants = clients.len() as u64;
    let period = std::time::Duration::from_secs_f64(clients.len().max(1) as f64 / rate);
    let start = Instant::now();
    let until = start + duration;
    let tool_cpu = ToolCpu::start();
    let server_cpu = pid.and_then(CpuWatch::start);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut set = tokio::task::JoinSet::new();
    for (slot, client) in clients {
        let offset = period.mul_f64(rand::thread_rng().gen_range(0.0..1.0));
        let schedule = Schedule { first: start + offset, period, until };
        set.spawn(converse(client, slot, schedule, directory.clone(), progress.clone(), stop_rx.clone()));
    }
    tokio::time::sleep_until(until).await;
    let server_cpu_pct = server_cpu.and_then(|w| w.percent());
    let tool_cpu = tool_cpu.finish();
    // In a room every message comes back to every occupant.
    let fanout = if directory.room.is_some() { occupants } else { 1 };
    super::drain_fanout(progress, drain, fanout).await;
    let server_rss_kb = pid.and_then(rss_kb);
    let _ = stop_tx.send(true);
    let mut totals = Totals::default();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(outcome) => totals.add(outcome),
            Err(e) => totals.lost_sessions.push(format!("client task: {e}")),
        }
    }
    let measured = totals.measured(server_cpu_pct, server_rss_kb, tool_cpu);
    Window {
        sent: totals.sent,
        delivered: totals.delivered,
        errors: totals.errors,
        undelivered: totals.undelivered(),
        measured,
    }
}
