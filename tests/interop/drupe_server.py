"""A `drupe` server process under test: its data dir, config file, CLI and lifecycle.

The server is driven only through its public interface: the config file, the `drupe`
CLI, the `drupe ready ...` line on stdout and SIGTERM.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from collections import deque
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
DOMAIN = "localhost"

READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 30.0

# `drupe ready c2s=H:P c2s_tls=[H:P] https=[H:P] http=[H:P]`: empty values are disabled listeners.
READY_RE = re.compile(
    r"^drupe ready c2s=(\S+):(\d+) c2s_tls=(\S*?):?(\d*)(?: https=(\S*?):?(\d*))?(?: http=(\S*?):?(\d*))?\s*$"
)


def drupe_bin() -> Path:
    """The binary under test: $DRUPE_BIN, else target/debug/drupe of this repository."""
    path = Path(os.environ.get("DRUPE_BIN", "target/debug/drupe"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def default_config() -> dict:
    """The config every test starts from: both listeners on OS-chosen ports."""
    return {
        "domain": DOMAIN,
        "data_dir": "data",
        "c2s": {
            "listen": f"{HOST}:0",
            "listen_tls": f"{HOST}:0",
            "require_tls": True,
            "max_connections": 10000,
            "auth_timeout_secs": 30,
            "idle_timeout_secs": 600,
        },
        "tls": {"cert": "", "key": ""},
        # HTTPS (WebSocket, BOSH, host-meta, upload) on an OS-chosen port too.
        "http": {"listen_tls": f"{HOST}:0"},
        "limits": {
            "max_stanza_bytes": 262144,
            "max_depth": 32,
            "max_attributes": 64,
            "max_offline_messages": 1000,
        },
        "auth": {"failure_delay_ms": 200},
        "server": {"hide_version": False, "create_admin": False},
    }


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"no TOML form for {value!r}")


def to_toml(config: dict) -> str:
    top = [f"{k} = {_toml_value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    sections = []
    for name, table in config.items():
        if isinstance(table, dict):
            sections.append(f"\n[{name}]")
            sections.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
    return "\n".join(top + sections) + "\n"


def merge(base: dict, overrides: dict) -> dict:
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


class DrupeServer:
    """One data dir + config file, and at most one running `drupe serve` on them."""

    def __init__(self, workdir: Path, overrides: dict | None = None, env: dict | None = None):
        self.binary = drupe_bin()
        if not self.binary.is_file():
            raise RuntimeError(
                f"drupe binary not found at {self.binary}: build it (cargo build -p drupe-server) "
                "or set DRUPE_BIN"
            )
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = merge(default_config(), overrides or {})
        self.config["data_dir"] = str(workdir / "data")
        self.config_path = workdir / "drupe.toml"
        self.config_path.write_text(to_toml(self.config))
        self.extra_env = env or {}
        self.domain = self.config["domain"]
        self.host = HOST
        self.proc: subprocess.Popen | None = None
        self.c2s_port: int | None = None
        self.tls_port: int | None = None
        self.https_port: int | None = None
        self.http_port: int | None = None
        self.stdout_lines: deque[str] = deque(maxlen=2000)
        self.runs = 0
        self.exit_codes: list[int] = []

    # ---- environment and CLI -------------------------------------------------------------

    def env(self) -> dict:
        # The suite controls the config fully: inherited DRUPE_* overrides would change it.
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRUPE_")}
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, stdin: str | None = None, env: dict | None = None,
            timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
        """Run `drupe --config FILE ARGS...`; stdin is a pipe (not a tty) holding `stdin`."""
        return subprocess.run(
            [str(self.binary), "--config", str(self.config_path), *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env={**self.env(), **(env or {})},
            timeout=timeout,
            cwd=self.workdir,
        )

    def add_user(self, username: str, password: str) -> None:
        res = self.cli("user", "add", username, stdin=password + "\n")
        assert res.returncode == 0, (
            f"`drupe user add {username}` exited {res.returncode}\n"
            f"stdout: {res.stdout}\nstderr: {res.stderr}"
        )

    def jid(self, username: str) -> str:
        return f"{username}@{self.domain}"

    # ---- lifecycle -----------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self.workdir / f"serve-{self.runs}.stderr.log"

    def start(self) -> None:
        assert self.proc is None, "server already running"
        self.runs += 1
        stderr = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(self.binary), "--config", str(self.config_path), "serve"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=self.env(),
            cwd=self.workdir,
            text=True,
            bufsize=1,
        )
        stderr.close()
        ready = threading.Event()
        ready_line: list[str] = []
        proc = self.proc

        def pump() -> None:
            # Reads stdout for the whole life of the process so the pipe never fills up.
            assert proc.stdout is not None
            for line in proc.stdout:
                self.stdout_lines.append(line.rstrip("\n"))
                if not ready.is_set() and line.startswith("drupe ready"):
                    ready_line.append(line.strip())
                    ready.set()
            ready.set()  # EOF: wake the waiter; it finds no ready line

        threading.Thread(target=pump, name=f"drupe-stdout-{self.runs}", daemon=True).start()
        if not ready.wait(READY_TIMEOUT) or not ready_line:
            code = proc.poll()
            self._kill()
            raise RuntimeError(
                f"drupe serve did not print its ready line within {READY_TIMEOUT}s "
                f"(exit code {code})\n{self.describe()}"
            )
        m = READY_RE.match(ready_line[0])
        if not m:
            self._kill()
            raise RuntimeError(f"cannot parse ready line {ready_line[0]!r}")
        self.c2s_port = int(m.group(2))
        self.tls_port = int(m.group(4)) if m.group(4) else None
        self.https_port = int(m.group(6)) if m.group(6) else None
        self.http_port = int(m.group(8)) if m.group(8) else None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the server and wait for it to exit; returns its exit code."""
        assert self.proc is not None, "server not running"
        proc = self.proc
        proc.send_signal(sig)
        try:
            code = proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill()
            raise AssertionError(
                f"drupe did not exit within {STOP_TIMEOUT}s of signal {sig}\n{self.describe()}"
            )
        self.proc = None
        self.exit_codes.append(code)
        return code

    def stop_ok(self) -> None:
        code = self.stop()
        assert code == 0, f"drupe exited {code} on SIGTERM, expected 0\n{self.describe()}"

    def restart(self) -> None:
        self.stop_ok()
        self.start()

    def _kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None

    def describe(self, lines: int = 80) -> str:
        """The tail of the server's stdout and stderr, for failure reports."""
        out = "\n".join(list(self.stdout_lines)[-lines:])
        try:
            err_lines = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            err_lines = []
        return (
            f"--- drupe stdout (last {lines} lines) ---\n{out}\n"
            f"--- drupe stderr {self.log_path.name} (last {lines} lines) ---\n" + "\n".join(err_lines)
        )
