"""XEP-0215 credentials accepted by a real coturn: `turnserver` runs on 127.0.0.1 (random ports, a random
static-auth-secret, everything it writes in a temp dir, no daemon), drupe is configured with the same secret,
a client fetches TURN credentials over XMPP and `turnutils_uclient` allocates a relay with them; a wrong
password is refused.

Needs Debian's `coturn` package. Without it the tests are skipped, unless DRUPE_REQUIRE_TURN=1 (CI), where
they fail."""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import shutil
import socket
import subprocess
import time

import pytest

NS_EXTDISCO = "urn:xmpp:extdisco:2"
UCLIENT_TIMEOUT = 30


def _require_binaries() -> None:
    missing = [b for b in ("turnserver", "turnutils_uclient") if shutil.which(b) is None]
    if missing:
        message = f"coturn is not installed (missing {', '.join(missing)}): apt-get install coturn"
        if os.environ.get("DRUPE_REQUIRE_TURN") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def _free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


@pytest.fixture
def coturn(tmp_path):
    """A running turnserver: yields (port, secret); killed at the end."""
    _require_binaries()
    port = _free_port()
    secret = secrets.token_hex(16)
    relay = random.randrange(50000, 60000, 100)
    workdir = tmp_path / "coturn"
    workdir.mkdir()
    log = open(workdir / "turnserver.log", "wb")
    proc = subprocess.Popen(
        [
            "turnserver",
            "-n",  # no configuration file: only these flags
            "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
            f"--min-port={relay}", f"--max-port={relay + 99}",
            "--no-tls", "--no-dtls", "--no-cli",
            "--use-auth-secret", f"--static-auth-secret={secret}", "--realm=localhost",
            "--allow-loopback-peers",  # the test's peers are on 127.0.0.1
            "--log-file=stdout", "--simple-log", "--no-software-attribute",
            f"--pidfile={workdir / 'turnserver.pid'}", f"--userdb={workdir / 'turndb'}",
        ],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True,
    )
    log.close()
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, (workdir / "turnserver.log").read_text(errors="replace")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "turnserver did not start listening"
                time.sleep(0.1)
        yield port, secret
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _uclient(port: int, username: str, password: str, tcp: bool) -> subprocess.CompletedProcess:
    args = ["turnutils_uclient", "-y", "-c", "-n", "2", "-p", str(port), "-u", username, "-w", password]
    if tcp:
        args.insert(1, "-t")
    return subprocess.run(args + ["127.0.0.1"], capture_output=True, text=True, timeout=UCLIENT_TIMEOUT)


async def _turn_services(client) -> list:
    reply = await client.iq(f"<iq type='get' to='localhost'><services xmlns='{NS_EXTDISCO}' type='turn'/></iq>")
    assert reply.get("type") == "result", reply
    services = reply.find(f"{{{NS_EXTDISCO}}}services")
    return list(services) if services is not None else []


async def test_coturn_accepts_the_credentials_drupe_hands_out(coturn, make_server, connect):
    port, secret = coturn
    srv = make_server({"turn": {"host": "127.0.0.1", "port": port, "secret": secret, "ttl_secs": 600}})
    alice = await connect("alice", srv=srv)
    info = await alice.iq("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
    assert any(f.get("var") == NS_EXTDISCO for f in info.iter("{http://jabber.org/protocol/disco#info}feature"))

    services = await _turn_services(alice)
    assert sorted(s.get("transport") for s in services) == ["tcp", "udp"]
    for service in services:
        assert service.get("host") == "127.0.0.1" and service.get("port") == str(port)
        username, password = service.get("username"), service.get("password")
        assert username.endswith(":alice@localhost")
        ok = _uclient(port, username, password, tcp=service.get("transport") == "tcp")
        assert ok.returncode == 0, f"allocation refused over {service.get('transport')}:\n{ok.stdout}\n{ok.stderr}"
        assert "Cannot complete Allocation" not in ok.stdout + ok.stderr

    # A wrong password (or one made with another secret) is refused by coturn.
    udp = next(s for s in services if s.get("transport") == "udp")
    bad = _uclient(port, udp.get("username"), "AAAA" + udp.get("password")[4:], tcp=False)
    assert bad.returncode != 0, bad.stdout
    assert "Cannot complete Allocation" in bad.stdout + bad.stderr


async def test_expired_credentials_are_refused(coturn, make_server, connect):
    port, secret = coturn
    srv = make_server({"turn": {"host": "127.0.0.1", "port": port, "secret": secret, "ttl_secs": 1}})
    alice = await connect("alice", srv=srv)
    udp = next(s for s in await _turn_services(alice) if s.get("transport") == "udp")
    await asyncio.sleep(2.5)
    late = _uclient(port, udp.get("username"), udp.get("password"), tcp=False)
    assert late.returncode != 0, late.stdout
