"""The `drupe` command line: user management (also while serving), config check, shutdown."""

import asyncio
import re
import signal

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


def test_config_check_names_the_bad_field(make_server):
    srv = make_server({"c2s": {"listen": "not-an-address"}}, users={}, start=False)
    res = srv.cli("config", "check")
    assert res.returncode != 0, "an unparsable listen address passed config check"
    out = (res.stdout + res.stderr).strip()
    assert "listen" in out, f"error does not name the field: {out!r}"
    # An environment override fixes it.
    res = srv.cli("config", "check", env={"DRUPE_C2S_LISTEN": "127.0.0.1:0"})
    assert res.returncode == 0, f"DRUPE_C2S_LISTEN did not override: {res.stdout}{res.stderr}"


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
