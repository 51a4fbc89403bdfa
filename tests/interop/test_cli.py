"""The `drupe` command line: user management (also while serving), config check, shutdown."""

import asyncio
import re
import signal

import pytest

from conftest import USERS
from raw import RawStream


def test_config_check_accepts_our_config(make_server):
    srv = make_server(users={}, start=False)
    res = srv.cli("config", "check")
    assert res.returncode == 0, f"the suite's config fails the check: {res.stdout}{res.stderr}"


def test_config_example_is_valid(make_server, tmp_path):
    srv = make_server(users={}, start=False)
    example = tmp_path / "example.toml"
    res = srv.cli("config", "example")
    assert res.returncode == 0, res.stderr
    assert "domain" in res.stdout and "[c2s]" in res.stdout, res.stdout
    example.write_text(res.stdout)
    srv.config_path = example
    res = srv.cli("config", "check")
    assert res.returncode == 0, f"config example fails config check: {res.stdout}{res.stderr}"


@pytest.mark.parametrize("overrides, field", [
    ({"c2s": {"listen": "not-an-address"}}, "listen"),
    ({"c2s": {"lsiten": "127.0.0.1:0"}}, "lsiten"),
    ({"limits": {"max_stanza_bytes": -5}}, "max_stanza_bytes"),
    ({"auth": {"failure_delay_ms": "soon"}}, "failure_delay_ms"),
    ({"storage": {"background_nice": 20}}, "background_nice"),
], ids=["bad-address", "unknown-field", "negative-number", "wrong-type", "out-of-range"])
def test_config_check_names_the_bad_field(make_server, overrides, field):
    srv = make_server(overrides, users={}, start=False)
    res = srv.cli("config", "check")
    assert res.returncode != 0, f"config check accepted {overrides}"
    out = (res.stdout + res.stderr).strip()
    assert len(out.splitlines()) == 1, f"expected one line, got: {out!r}"
    assert field in out, f"error does not name the field {field}: {out!r}"


def test_env_overrides_config_file(make_server):
    srv = make_server({"c2s": {"listen": "not-an-address"}}, users={}, start=False)
    assert srv.cli("config", "check").returncode != 0
    res = srv.cli("config", "check", env={"DRUPE_C2S_LISTEN": "127.0.0.1:0"})
    assert res.returncode == 0, f"DRUPE_C2S_LISTEN did not override: {res.stdout}{res.stderr}"


def test_bad_env_override_is_named(make_server):
    srv = make_server(users={}, start=False)
    res = srv.cli("config", "check", env={"DRUPE_LIMITS_MAX_STANZA_BYTES": "lots"})
    assert res.returncode != 0, "a non-numeric DRUPE_LIMITS_MAX_STANZA_BYTES passed config check"
    out = (res.stdout + res.stderr).strip()
    assert "max_stanza_bytes" in out.lower(), f"error does not name the field: {out!r}"


def test_env_override_applies_to_serve(make_server):
    srv = make_server({"c2s": {"listen": "not-an-address"}},
                      env={"DRUPE_C2S_LISTEN": "127.0.0.1:0"})
    assert srv.c2s_port


def test_user_list_remove_passwd(make_server):
    srv = make_server(start=False)
    res = srv.cli("user", "list")
    assert res.returncode == 0, res.stderr
    listed = set(re.findall(r"[\w.-]+(?=@localhost)|^[\w.-]+$", res.stdout, re.M))
    assert set(USERS) <= listed, f"user list: {res.stdout!r}"

    assert srv.cli("user", "remove", "carol").returncode == 0
    assert "carol" not in srv.cli("user", "list").stdout

    res = srv.cli("user", "passwd", "bob", stdin="new-bob-password\n")
    assert res.returncode == 0, res.stderr

    res = srv.cli("user", "add", "alice", stdin="again\n")
    assert res.returncode != 0, "adding an existing user succeeded"

    srv.start()
    with RawStream(srv.host, srv.c2s_port) as s:
        s.starttls()
        assert "<success" in s.auth_plain("bob", "new-bob-password")
    with RawStream(srv.host, srv.c2s_port) as s:
        s.starttls()
        assert "<not-authorized" in s.auth_plain("bob", USERS["bob"])
    with RawStream(srv.host, srv.c2s_port) as s:
        s.starttls()
        assert "<not-authorized" in s.auth_plain("carol", USERS["carol"])


def test_user_add_while_serving(server):
    """The CLI writes the database directly; it must work beside a running server."""
    server.add_user("erin", "erin-secret")
    with RawStream(server.host, server.c2s_port) as s:
        assert s.login("erin", "erin-secret") == "erin@localhost/raw"


def test_sigterm_sends_system_shutdown(server):
    with RawStream(server.host, server.c2s_port) as s:
        s.login("alice", USERS["alice"])
        s.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
        s.read_until(r"<iq[^>]*id=['\"]p1['\"]")
        server.proc.send_signal(signal.SIGTERM)
        s.expect_stream_error("system-shutdown", timeout=10)
    assert server.proc.wait(10) == 0
    server.proc = None


async def test_sigterm_reaches_slixmpp_client(server, connect):
    alice = await connect("alice")
    await asyncio.to_thread(server.stop_ok)
    await asyncio.wait_for(alice.disconnected.wait(), 10)
    assert "system-shutdown" in alice.stream_errors, alice.stream_errors


def test_sigterm_right_after_ready_line_is_a_clean_shutdown(make_server):
    """A supervisor may signal as soon as it reads the ready line: by then SIGTERM must
    already mean a clean shutdown (exit 0), not the default kill."""
    srv = make_server(users={}, start=False)
    codes = []
    for _ in range(5):
        srv.start()
        codes.append(srv.stop())
    assert codes == [0] * 5, f"exit codes of SIGTERM right after the ready line: {codes}"


def test_first_run_creates_admin_and_prints_its_password(make_server):
    srv = make_server({"server": {"create_admin": True}}, users={})
    lines = [line for line in srv.stdout_lines if "admin@localhost" in line]
    assert len(lines) == 1, f"expected one line about admin@localhost on stdout: {list(srv.stdout_lines)}"
    password = lines[0].split()[-1]
    with RawStream(srv.host, srv.c2s_port) as s:
        assert s.login("admin", password) == "admin@localhost/raw"
    # Only on the first run.
    srv.restart()
    assert not [line for line in srv.stdout_lines if "admin@localhost" in line][1:], list(srv.stdout_lines)


def test_no_admin_when_users_exist(make_server):
    srv = make_server({"server": {"create_admin": True}})
    assert not [line for line in srv.stdout_lines if "admin@" in line], list(srv.stdout_lines)
