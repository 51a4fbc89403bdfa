"""Fixtures of the independent-client suite: a fresh `drupe serve` per test, its users,
and slixmpp clients that are always disconnected at the end.

`server` is a running server on a temp data dir with USERS created before it started.
`make_server(overrides)` gives a not-yet-started server for tests that need their own
config. `connect("alice")` returns a logged-in client. Server teardown sends SIGTERM and
requires exit code 0 within 10 s.
"""

from __future__ import annotations

import pytest

from drupe_server import DrupeServer
from xmpp_client import Client

USERS = {
    "alice": "alice-secret",
    "bob": "bob-secret",
    "carol": "carol-secret",
}


@pytest.fixture
def make_server(tmp_path, request):
    servers: list[DrupeServer] = []

    def make(overrides: dict | None = None, users: dict | None = None, env: dict | None = None,
             start: bool = True) -> DrupeServer:
        srv = DrupeServer(tmp_path / f"server{len(servers)}", overrides, env)
        servers.append(srv)
        request.node.drupe_servers = servers  # for the failure report hook below
        # Users are created before serve starts: the CLI then has the database to itself.
        for name, password in (USERS if users is None else users).items():
            srv.add_user(name, password)
        if start:
            srv.start()
        return srv

    yield make

    failures = []
    for srv in servers:
        if srv.proc is not None:
            try:
                srv.stop_ok()
            except AssertionError as e:
                failures.append(str(e))
    if failures:
        pytest.fail("server shutdown failed:\n" + "\n".join(failures), pytrace=False)


@pytest.fixture
def server(make_server) -> DrupeServer:
    return make_server()


@pytest.fixture
async def clients(make_server):
    """Every Client made in a test; all are closed at teardown (before the server stops)."""
    made: list[Client] = []
    yield made
    for c in made:
        await c.close()


@pytest.fixture
def new_client(request, clients):
    """new_client("alice", direct_tls=False, mechanism=None, password=None, resource=None,
    srv=None) -> a Client, not yet connected."""

    def make(user: str, *, direct_tls: bool = False, mechanism: str | None = None,
             password: str | None = None, resource: str | None = None,
             srv: DrupeServer | None = None) -> Client:
        # The default server is started only by tests that use it.
        srv = srv or request.getfixturevalue("server")
        jid = srv.jid(user) + (f"/{resource}" if resource else "")
        port = srv.tls_port if direct_tls else srv.c2s_port
        assert port, "server has no port for this client"
        c = Client(jid, USERS.get(user, "") if password is None else password, srv.host, port,
                   direct_tls=direct_tls, mechanism=mechanism)
        clients.append(c)
        return c

    return make


@pytest.fixture
def connect(new_client):
    """await connect("alice", **new_client_kwargs) -> a logged-in Client that fetched its
    roster and sent initial presence (roster=False / presence=False to skip)."""

    async def login(user: str, *, roster: bool = True, presence: bool = True, **kwargs) -> Client:
        c = new_client(user, **kwargs)
        return await c.login(roster=roster, presence=presence)

    return login


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for i, srv in enumerate(getattr(item, "drupe_servers", [])):
            report.sections.append((f"drupe server {i} ({report.when})", srv.describe()))
