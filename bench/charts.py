#!/usr/bin/env python3
"""Turns the JSON lines of bench/compare.sh into tables and plain SVG charts (standard library only).

Usage: charts.py RESULTS.jsonl [--svg-dir docs/bench] [--markdown docs/benchmarks.md] [--growth IDLE_STEPS.json]

Writes SVG_DIR/chat-latency.svg (message latency against offered load) and SVG_DIR/idle-rss.svg (server RSS
against idle sessions). With --markdown, replaces the "## Side by side" section of that file (up to the next
"## " heading) with tables of the numbers and the ratios drupe/peer, or appends the section when there is none;
without it, prints the section. --growth also draws SVG_DIR/growth-rss.svg and growth-per-session.svg from one
`drupe-bench idle --steps ... --json` result (drupe alone, e.g. 1,000 to 19,000 sessions).
"""
import argparse
import html
import json
import math
import os
import sys

SERVERS = ["ejabberd", "prosody", "drupe"]
LABEL = {"ejabberd": "ejabberd", "prosody": "Prosody", "drupe": "drupe"}
COLOR = {"ejabberd": "#1f77b4", "prosody": "#d62728", "drupe": "#2ca02c"}
HEADING = "## Side by side"


def load(path):
    meta, notes, runs = {}, {}, []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if r.get("scenario") == "meta":
                meta = r
            elif r.get("scenario") == "note":
                notes.setdefault(r["server"], {}).update({k: v for k, v in r.items() if k not in ("scenario", "server")})
            else:
                runs.append(r)
    servers = [s for s in SERVERS if any(r["server"] == s for r in runs)]
    return meta, notes, runs, servers


def of(runs, server, scenario, **match):
    return [r for r in runs if r["server"] == server and r["scenario"] == scenario
            and all(r.get(k) == v for k, v in match.items())]


# ---- formatting ------------------------------------------------------------------------------------------------

def fmt_ms(v):
    if v is None:
        return "–"
    if v >= 1000:
        return f"{v / 1000:.1f} s"
    if v >= 10:
        return f"{v:.0f} ms"
    if v >= 1:
        return f"{v:.1f} ms"
    return f"{v:.2f} ms"


def fmt_int(v):
    return "–" if v is None else f"{round(v):,}"


def fmt_pct(v):
    return "–" if v is None else f"{v:.0f} %"


def fmt_kib(v):
    if v is None:
        return "–"
    return f"{v / 1024:.1f} MiB" if abs(v) >= 10240 else f"{v:.1f} KiB"


def fmt_ms_plain(v):
    return "–" if v is None else f"{v:.2f} ms"


def built_from(dirty):
    """How the measured drupe was built, from the count of files `git status` listed before the run."""
    if dirty == 0:
        return "a clean checkout"
    if dirty is None:
        return "a working tree of unknown state"
    return f"the shared working tree, {dirty} file{'s' if dirty != 1 else ''} with uncommitted changes"


def ratio(d, p):
    if d is None or p is None or p == 0:
        return "–"
    r = d / p
    if abs(r) >= 10:
        return f"{r:,.0f}×"
    if abs(r) >= 0.1 or r == 0:
        return f"{r:.2f}×"
    return f"1/{1 / r:,.0f}" if r > 0 else f"{r:.2g}×"


def table(title_cells, rows, servers, marks=None):
    """rows: (label, {server: value}, formatter[, no_ratio]). Columns: each server, then drupe/peer for each peer.
    marks: {server: suffix} appended to that server's cells (a footnote sign)."""
    marks = marks or {}
    peers = [s for s in servers if s != "drupe"]
    has_drupe = "drupe" in servers
    head = [title_cells] + [LABEL[s] for s in servers] + ([f"drupe/{LABEL[p]}" for p in peers] if has_drupe else [])
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, values, fmt, *no_ratio in rows:
        cells = [label] + [fmt(values.get(s)) + marks.get(s, "") for s in servers]
        if has_drupe:
            if no_ratio and no_ratio[0]:
                cells += ["" for p in peers]
            else:
                cells += [ratio(values.get("drupe"), values.get(p)) + ("†" if marks.get(p) or marks.get("drupe")
                                                                      else "") for p in peers]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


# ---- SVG -------------------------------------------------------------------------------------------------------

class Chart:
    W, H = 640, 400
    L, R, T, B = 70, 150, 40, 50

    def __init__(self, title, xlabel, ylabel, xmin, xmax, ymin, ymax, ylog=False):
        self.title, self.xlabel, self.ylabel = title, xlabel, ylabel
        self.xmin, self.xmax, self.ymin, self.ymax, self.ylog = xmin, xmax, ymin, ymax, ylog
        self.parts = []

    def x(self, v):
        return self.L + (v - self.xmin) / (self.xmax - self.xmin) * (self.W - self.L - self.R)

    def y(self, v):
        if self.ylog:
            v = math.log10(max(v, self.ymin))
            lo, hi = math.log10(self.ymin), math.log10(self.ymax)
        else:
            lo, hi = self.ymin, self.ymax
        return self.H - self.B - (v - lo) / (hi - lo) * (self.H - self.T - self.B)

    def axes(self, xticks, yticks, yfmt, xfmt=lambda v: f"{v:,.0f}"):
        p = self.parts
        x0, x1, y0, y1 = self.L, self.W - self.R, self.H - self.B, self.T
        for t in yticks:
            yy = self.y(t)
            p.append(f'<line x1="{x0}" y1="{yy:.1f}" x2="{x1}" y2="{yy:.1f}" stroke="#ddd"/>')
            p.append(f'<text x="{x0 - 6}" y="{yy + 4:.1f}" text-anchor="end">{html.escape(yfmt(t))}</text>')
        for t in xticks:
            xx = self.x(t)
            p.append(f'<line x1="{xx:.1f}" y1="{y0}" x2="{xx:.1f}" y2="{y0 + 5}" stroke="#333"/>')
            p.append(f'<text x="{xx:.1f}" y="{y0 + 18}" text-anchor="middle">{html.escape(xfmt(t))}</text>')
        p.append(f'<polyline points="{x0},{y1} {x0},{y0} {x1},{y0}" fill="none" stroke="#333"/>')
        p.append(f'<text x="{(x0 + x1) / 2}" y="{self.H - 12}" text-anchor="middle">{html.escape(self.xlabel)}</text>')
        p.append(f'<text x="16" y="{(y0 + y1) / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 16 {(y0 + y1) / 2})">{html.escape(self.ylabel)}</text>')
        p.append(f'<text x="{self.W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">'
                 f'{html.escape(self.title)}</text>')

    def line(self, points, color, dash=False):
        if not points:
            return
        pts = " ".join(f"{self.x(a):.1f},{self.y(b):.1f}" for a, b in points)
        d = ' stroke-dasharray="5,4"' if dash else ""
        self.parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"{d}/>')
        for a, b in points:
            self.parts.append(f'<circle cx="{self.x(a):.1f}" cy="{self.y(b):.1f}" r="3.5" fill="{color}"/>')

    def legend(self, entries):
        x = self.W - self.R + 14
        for i, (text, color, dash) in enumerate(entries):
            y = self.T + 10 + i * 20
            d = ' stroke-dasharray="5,4"' if dash else ""
            self.parts.append(f'<line x1="{x}" y1="{y}" x2="{x + 24}" y2="{y}" stroke="{color}" stroke-width="2"{d}/>')
            self.parts.append(f'<text x="{x + 30}" y="{y + 4}">{html.escape(text)}</text>')

    def svg(self):
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.W}" height="{self.H}" '
                f'viewBox="0 0 {self.W} {self.H}" font-family="sans-serif" font-size="12">\n'
                f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(self.parts) + "\n</svg>\n")


def nice_ticks(hi, n=5):
    if hi <= 0:
        return [0, 1]
    step = 10 ** math.floor(math.log10(hi / n))
    for m in (1, 2, 2.5, 5, 10):
        if hi / (step * m) <= n:
            step *= m
            break
    return [i * step for i in range(int(math.ceil(hi / step)) + 1)]


def chat_chart(runs, servers):
    data = {}
    for s in servers:
        rs = sorted(of(runs, s, "chat"), key=lambda r: r["offered_rate"])
        data[s] = [(r["offered_rate"], r.get("latency_p50_ms"), r.get("latency_p99_ms")) for r in rs]
    xs = [x for v in data.values() for x, _, _ in v]
    ys = [y for v in data.values() for _, a, b in v for y in (a, b) if y]
    if not xs or not ys:
        return None
    ymin = 10 ** math.floor(math.log10(max(min(ys), 0.01)))
    ymax = 10 ** math.ceil(math.log10(max(ys)))
    if ymax <= ymin:
        ymax = ymin * 10
    xt = nice_ticks(max(xs))
    c = Chart("Chat: message latency against offered load", "offered messages per second (all users)",
              "latency (log scale)", 0, xt[-1], ymin, ymax, ylog=True)
    yt = [10 ** e for e in range(int(math.log10(ymin)), int(math.log10(ymax)) + 1)]
    c.axes(xt, yt, lambda v: f"{v / 1000:g} s" if v >= 1000 else f"{v:g} ms")
    legend = []
    for s in servers:
        c.line([(x, b) for x, _, b in data[s] if b], COLOR[s])
        c.line([(x, a) for x, a, _ in data[s] if a], COLOR[s], dash=True)
        legend += [(f"{LABEL[s]} p99", COLOR[s], False), (f"{LABEL[s]} p50", COLOR[s], True)]
    c.legend(legend)
    return c.svg()


def idle_points(runs, server):
    rs = sorted(of(runs, server, "idle"), key=lambda r: r["sessions"])
    if not rs or rs[0].get("server_rss_before_kb") is None:
        return []
    pts = [(0, rs[0]["server_rss_before_kb"] / 1024)]
    pts += [(r["sessions"], r["server_rss_held_kb"] / 1024) for r in rs if r.get("server_rss_held_kb")]
    return pts


def idle_chart(runs, servers):
    data = {s: idle_points(runs, s) for s in servers}
    xs = [x for v in data.values() for x, _ in v]
    ys = [y for v in data.values() for _, y in v]
    if not xs:
        return None
    xt, yt = nice_ticks(max(xs)), nice_ticks(max(ys))
    c = Chart("Idle sessions: server memory (RSS)", "sessions held (TLS, authenticated, with presence)",
              "server RSS", 0, xt[-1], 0, yt[-1])
    c.axes(xt, yt, lambda v: f"{v:,.0f} MiB")
    for s in servers:
        c.line(data[s], COLOR[s])
    c.legend([(LABEL[s], COLOR[s], False) for s in servers])
    return c.svg()


def growth_charts(run):
    """Two charts from one `drupe-bench idle --steps ... --json` result: RSS and CPU per login against sessions."""
    steps = sorted(int(k.split("_")[1]) for k in run if k.startswith("step_") and k.endswith("_server_rss_kb"))
    if not steps:
        return None, None
    rss = [(0, run["server_rss_before_kb"] / 1024)] + [(n, run[f"step_{n}_server_rss_kb"] / 1024) for n in steps]
    per = [(n, run[f"step_{n}_server_kb_per_session"]) for n in steps]
    cpu = [(n, run[f"step_{n}_server_login_cpu_ms_per_session"]) for n in steps]
    xt = nice_ticks(max(steps))
    yt = nice_ticks(max(y for _, y in rss))
    c = Chart("Growth: server RSS against sessions (drupe)", "sessions held (TLS, authenticated, with presence)",
              "server RSS", 0, xt[-1], 0, yt[-1])
    c.axes(xt, yt, lambda v: f"{v:,.0f} MiB")
    c.line(rss, COLOR["drupe"])
    c.legend([(LABEL["drupe"], COLOR["drupe"], False)])
    rss_svg = c.svg()
    yt = nice_ticks(max(max(y for _, y in per), max(y for _, y in cpu) * 10))
    c = Chart("Growth: per session, at each stage (drupe)", "sessions held",
              "KiB RSS per session; server CPU per login in 0.1 ms", 0, xt[-1], 0, yt[-1])
    c.axes(xt, yt, lambda v: f"{v:g}")
    c.line(per, COLOR["drupe"])
    c.line([(n, y * 10) for n, y in cpu], COLOR["drupe"], dash=True)
    c.legend([("KiB / session", COLOR["drupe"], False), ("CPU / login", COLOR["drupe"], True)])
    return rss_svg, c.svg()


# ---- markdown --------------------------------------------------------------------------------------------------

def section(meta, notes, runs, servers, svg_rel):
    L = []
    w = L.append
    # Results from before EJABBERD_DB have no "ejabberd_db": ejabberd ran on SQLite then.
    ejabberd_db = meta.get("ejabberd_db", "sqlite")
    mnesia = ejabberd_db == "mnesia"
    w(HEADING)
    w("")
    w(f"One run of `bash bench/compare.sh` on {meta.get('date', '?')}: ejabberd {meta.get('ejabberd', '?')} "
      f"(on {'Mnesia' if mnesia else 'SQLite'}) and "
      f"Prosody {meta.get('prosody', '?')} from Debian 12, and drupe at commit {meta.get('drupe_commit', '?')} "
      f"({built_from(meta.get('drupe_dirty_files'))}). "
      f"The machine: {meta.get('cpus', '?')} vCPUs, {meta.get('mem_gib', '?')} GiB RAM, kernel "
      f"{meta.get('kernel', '?')}; load average {meta.get('loadavg_start', '?')} at the start (the CPUs are shared "
      f"with other sessions, so expect ±15 % between runs). The servers ran one after the other, each pinned to CPU "
      f"{meta.get('server_cpu', 0)} (`taskset -c`), drupe-bench pinned to CPU {meta.get('bench_cpu', 1)}.")
    w("")
    w("All three were set up for the same service (configs in `bench/peers/`): domain `localhost`, "
      f"{meta.get('accounts', '?'):,} accounts `user0`… with one password, STARTTLS required with one self-signed "
      "ECDSA P-256 certificate, SASL PLAIN over TLS checked against SCRAM-SHA-1 stored keys at 4,096 iterations "
      "(drupe also stores SCRAM-SHA-256), offline storage and the message archive (XEP-0313, every 1:1 message) "
      + ("on. Storage: ejabberd on Mnesia, its default (`default_db: mnesia`; `EJABBERD_DB=mnesia`), the "
         "storage its own published figures use; Prosody on SQLite (`storage = \"sql\"` with LuaDBI SQLite3); "
         "drupe on its own SQLite. " if mnesia else
         "on, SQLite storage (ejabberd: `sql_type: sqlite`, `EJABBERD_DB=sqlite`; Prosody: `storage = \"sql\"` "
         "with LuaDBI SQLite3; drupe: its own). ")
      + "Listening on 127.0.0.1 only. ejabberd had no traffic shaper (the packaged config limits "
      "each client to 3,000 B/s) and a listen backlog of 128 (its default is 5). Each server got an unrecorded "
      "warm-up (20 logins, 2 s of chat) after its start; the idle steps ran first, on the fresh server.")
    w("")
    w("Ratios are drupe ÷ peer: above 1 means drupe has more of it, which is better for rates and worse for "
      "latency, memory and CPU.")
    w("")

    # idle
    idle_rows = []
    last = {}
    base = {}
    for s in servers:
        rs = sorted(of(runs, s, "idle"), key=lambda r: r["sessions"])
        if rs:
            last[s], base[s] = rs[-1], rs[0].get("server_rss_before_kb")
    if last:
        n = max(r["sessions"] for r in last.values())
        per = {s: (r["server_rss_held_kb"] - base[s]) / r["sessions"]
               for s, r in last.items() if r.get("server_rss_held_kb") is not None and base[s] is not None}
        idle_rows = [
            ("server RSS after start and warm-up", {s: base[s] for s in last}, fmt_kib),
            (f"server RSS with {n:,} sessions", {s: r.get("server_rss_held_kb") for s, r in last.items()}, fmt_kib),
            ("**RSS per idle session**", per, fmt_kib),
            ("logins/s while connecting (200 in flight)", {s: r.get("logins_per_sec") for s, r in last.items()},
             fmt_int),
            ("login p99 while connecting", {s: r.get("login_p99_ms") for s, r in last.items()}, fmt_ms),
            ("failed logins", {s: r.get("login_failures", 0) for s, r in last.items()}, fmt_int, True),
        ]
        steps = meta.get("idle_steps", "")
        w(f"### Idle sessions ({steps.replace(' ', ', ')} sessions, ascending on one server, held 5 s each)")
        w("")
        w(table("", idle_rows, servers))
        w("")
        w("RSS per session = (RSS with the most sessions − RSS before the first step) ÷ sessions. The RSS is "
          "`VmRSS` of the server process (for ejabberd, the Erlang VM `beam.smp`).")
        w("")
        w(f"![server RSS against idle sessions]({svg_rel}/idle-rss.svg)")
        w("")

    # login
    mechs = []
    for r in runs:
        if r["scenario"] == "login" and r.get("mechanism") not in mechs:
            mechs.append(r.get("mechanism"))
    if mechs:
        w(f"### Login storm ({meta.get('login_users', '?'):,} logins, {meta.get('login_concurrency', '?')} in flight; "
          "connect, STARTTLS, SASL, bind, presence, close)")
        w("")
        rows = []
        for m in mechs:
            got = {s: (of(runs, s, "login", mechanism=m) or [None])[0] for s in servers}
            got = {s: r for s, r in got.items() if r}
            g = lambda k: {s: r.get(k) for s, r in got.items()}
            rows += [
                (f"**{m}** logins/s", g("logins_per_sec"), fmt_int),
                (f"{m} p50", g("login_p50_ms"), fmt_ms),
                (f"{m} p99", g("login_p99_ms"), fmt_ms),
                (f"{m} server CPU", g("server_cpu_pct"), fmt_pct),
                (f"{m} server CPU per login", g("server_cpu_ms_per_login"), fmt_ms_plain),
                (f"{m} failed", g("failed"), fmt_int, True),
            ]
        w(table("", rows, servers))
        w("")

    # chat
    rates = sorted({r["offered_rate"] for r in runs if r["scenario"] == "chat"})
    if rates:
        w(f"### Chat ({meta.get('chat_users', '?')} users online, 1:1 messages to random online users, "
          f"{meta.get('chat_duration', '?')} s per rate, archive on)")
        w("")
        # A chat run after one that left messages undelivered: a server with offline storage delivers that backlog
        # to this run's users (the same accounts), where it counts as delivered, with a latency of 0 (the send
        # stamps come from another drupe-bench process's clock).
        tainted = {}
        for s in servers:
            prev = 0
            for r in of(runs, s, "chat"):
                if prev > 0:
                    tainted.setdefault(r["offered_rate"], {})[s] = prev
                prev = r.get("undelivered") or 0
        parts = []
        for rate in rates:
            got = {s: (of(runs, s, "chat", offered_rate=rate) or [None])[0] for s in servers}
            got = {s: r for s, r in got.items() if r}
            g = lambda k: {s: r.get(k) for s, r in got.items()}
            marks = {s: "†" for s in tainted.get(rate, {})}
            rows = [
                (f"**{rate:,.0f}/s** delivered/s", g("delivered_per_sec"), fmt_int),
                (f"{rate:,.0f}/s undelivered after 5 s", g("undelivered"), fmt_int, True),
                (f"{rate:,.0f}/s latency p50", g("latency_p50_ms"), fmt_ms),
                (f"{rate:,.0f}/s latency p99", g("latency_p99_ms"), fmt_ms),
                (f"{rate:,.0f}/s latency max", g("latency_max_ms"), fmt_ms),
                (f"{rate:,.0f}/s server CPU", g("server_cpu_pct"), fmt_pct),
                (f"{rate:,.0f}/s server RSS", g("server_rss_kb"), fmt_kib),
            ]
            parts.append(table("", rows, servers, marks) if not parts else
                         "\n".join(table("", rows, servers, marks).split("\n")[2:]))
        w("\n".join(parts))
        w("")
        for rate, srv in sorted(tainted.items()):
            w(f"† At {rate:,.0f}/s, " + " and ".join(f"{LABEL[s]} still held {n:,} undelivered messages from the "
                                                   "previous rate" for s, n in srv.items())
              + ". Those are delivered (from offline storage) to this run's users, the same accounts, and count as "
                "delivered here, with a latency of 0 (their send stamps come from another drupe-bench process's "
                "clock): delivered/s and the latencies of these cells are not trustworthy, only that the server "
                "was already overloaded.")
            w("")
        if mnesia:
            w("ejabberd ran on Mnesia, its default storage: it appends each archived or offline message to "
              "Mnesia's transaction log and dumps the log into dets tables now and then, without syncing each "
              "write to disk (drupe commits its archive to SQLite in synced batches, group commit). On SQLite with its default "
              "`sql_pool_size: 1` (`EJABBERD_DB=sqlite`), each archived message is its own transaction on one "
              "connection and ejabberd falls far behind its Mnesia figures. Prosody ran on SQLite: its default "
              "flat files collapse under archive load. Where a server delivers less than offered while its CPU is "
              "well below 100 %, its store, not its CPU, is the limit.")
        else:
            w("ejabberd and Prosody ran on SQLite to match drupe's storage. Both projects recommend PostgreSQL or "
              "MySQL for production load; on SQLite each archived or offline message is its own transaction. "
              "Where a server delivers less than offered while its CPU is well below 100 %, its store, not its "
              "CPU, is the limit. ejabberd's default storage, Mnesia, is much faster here "
              "(`EJABBERD_DB=mnesia`, the default of `bench/compare.sh`).")
        w("")
        w(f"![message latency against offered load]({svg_rel}/chat-latency.svg)")
        w("")

    # setup notes
    if notes:
        w("Setup, not measured above: writing the accounts ("
          + "; ".join(f"{LABEL[s]} {notes[s]['accounts_s']:.1f} s" for s in servers
                      if s in notes and "accounts_s" in notes[s])
          + "; drupe's are cached between runs), and from launch to listening ("
          + "; ".join(f"{LABEL[s]} {notes[s]['start_s']:.1f} s" for s in servers
                      if s in notes and "start_s" in notes[s])
          + ("). Prosody's accounts are written straight into its SQLite store in its own format by "
             "`bench/peers/accounts.py` (`prosodyctl register` costs ~0.1 s per account); ejabberd's are imported "
             "after its start with one `ejabberdctl import_piefxis` of a XEP-0227 file with their SCRAM keys, "
             "written by the same script." if mnesia else
             "). ejabberd's and Prosody's accounts are written straight into their SQLite stores in their own "
             "format by `bench/peers/accounts.py` (`prosodyctl register` costs ~0.1 s per account).")
          + (f" ejabberd's archive held {notes['ejabberd']['archived']:,.0f} messages after its runs (each "
             "delivered 1:1 message is archived twice, for the sender and the recipient)."
             if "archived" in notes.get("ejabberd", {}) else ""))
        w("")

    warnings = [(r["server"], r["scenario"], wn) for r in runs for wn in r.get("warnings", [])]
    if warnings:
        w("Warnings from drupe-bench in this run:")
        w("")
        for s, sc, wn in warnings:
            w(f"- {LABEL[s]}, {sc}: {wn}")
        w("")
    w("The raw results are in `docs/bench/side-by-side.jsonl` (one JSON object per drupe-bench run, tagged with "
      "`server`). To run it again (6–10 minutes, as root; installs the Debian packages if missing):")
    w("")
    w("```sh")
    w("bash bench/compare.sh                       # all three, then rewrites this section and docs/bench/*.svg")
    w("SERVERS='prosody drupe' CHAT_RATES='500 1000' bash bench/compare.sh")
    w("EJABBERD_DB=sqlite SERVERS='ejabberd' bash bench/compare.sh  # ejabberd on SQLite instead of Mnesia")
    w("python3 bench/charts.py docs/bench/side-by-side.jsonl --svg-dir docs/bench --markdown docs/benchmarks.md")
    w("```")
    return "\n".join(L) + "\n"


def replace_section(path, text):
    with open(path) as f:
        lines = f.read().split("\n")
    start = next((i for i, l in enumerate(lines) if l.strip() == HEADING), None)
    if start is None:
        body = "\n".join(lines).rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        rest = "\n".join(lines[end:])
        body = "\n".join(lines[:start]) + "\n" + text + ("\n" + rest if rest.strip() else "")
    with open(path, "w") as f:
        f.write(body.rstrip("\n") + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results")
    ap.add_argument("--svg-dir", default="docs/bench")
    ap.add_argument("--markdown")
    ap.add_argument("--growth", help="also draw growth-rss.svg and growth-per-session.svg from this idle --steps JSON")
    a = ap.parse_args()
    if a.growth:
        with open(a.growth) as f:
            rss_svg, per_svg = growth_charts(json.loads(f.readline()))
        os.makedirs(a.svg_dir, exist_ok=True)
        for name, svg in (("growth-rss.svg", rss_svg), ("growth-per-session.svg", per_svg)):
            if svg:
                with open(os.path.join(a.svg_dir, name), "w") as f:
                    f.write(svg)
    meta, notes, runs, servers = load(a.results)
    if not runs:
        sys.exit(f"{a.results}: no results")
    os.makedirs(a.svg_dir, exist_ok=True)
    for name, svg in (("chat-latency.svg", chat_chart(runs, servers)), ("idle-rss.svg", idle_chart(runs, servers))):
        if svg:
            with open(os.path.join(a.svg_dir, name), "w") as f:
                f.write(svg)
    if a.markdown:
        rel = os.path.relpath(a.svg_dir, os.path.dirname(os.path.abspath(a.markdown)) or ".")
        replace_section(a.markdown, section(meta, notes, runs, servers, rel))
    else:
        print(section(meta, notes, runs, servers, a.svg_dir))


if __name__ == "__main__":
    main()
