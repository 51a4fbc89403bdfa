"""Limits at the edge: auth timeout, connection cap, XML depth and attribute limits, and
stanzas before authentication."""

import re
import time

import pytest

from conftest import USERS
from raw import PeerClosed, ReadTimeout, RawStream


def test_unauthenticated_connection_is_closed_after_auth_timeout(make_server):
    srv = make_server({"c2s": {"auth_timeout_secs": 2}})
    with RawStream(srv.host, srv.c2s_port) as s:
        s.open_stream()
        started = time.monotonic()
        rest = s.read_until_closed(timeout=8)
        elapsed = time.monotonic() - started
        assert elapsed >= 1.5, f"closed after {elapsed:.1f}s, before the 2 s auth timeout: {rest!r}"
        if "error" in rest:
            assert "<connection-timeout" in rest or "<policy-violation" in rest, rest


def test_authenticated_session_outlives_auth_timeout(make_server):
    srv = make_server({"c2s": {"auth_timeout_secs": 2}})
    with RawStream(srv.host, srv.c2s_port) as s:
        s.login("alice", USERS["alice"])
        time.sleep(3)
        s.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        s.read_until(r"<iq[^>]*id=['\"]p1['\"]")


def test_max_connections_holds_further_connections(make_server):
    srv = make_server({"c2s": {"max_connections": 2}})
    first = RawStream(srv.host, srv.c2s_port)
    second = RawStream(srv.host, srv.c2s_port)
    third = None
    try:
        first.open_stream()
        second.open_stream()
        third = RawStream(srv.host, srv.c2s_port)
        third.send("<?xml version='1.0'?><stream:stream to='localhost' version='1.0' "
                   "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
        # Over the cap: not served (held in the backlog, or refused).
        try:
            got = third.read_until(r"<stream:features", timeout=1.5)
            pytest.fail(f"a third connection was served with max_connections = 2: {got}")
        except (ReadTimeout, PeerClosed):
            pass
        if third.closed_by_peer:
            return  # refused outright: also keeps the cap
        first.close()
        # A slot is free: the held connection is served now.
        third.read_until(r"<stream:features", timeout=5)
    finally:
        for s in (first, second, third):
            if s is not None:
                s.close()


@pytest.mark.parametrize("limit", ["max_depth", "max_attributes"])
def test_structure_limits(make_server, limit):
    srv = make_server({"limits": {"max_depth": 10, "max_attributes": 8}})
    with RawStream(srv.host, srv.c2s_port) as s:
        jid = s.login("alice", USERS["alice"])
        # Within the limits: fine.
        s.send(f"<message to='{jid}' id='ok'><body>fine</body><x xmlns='urn:example:x' a='1' b='2'/></message>")
        s.read_until(r"<message[^>]*id=['\"]ok['\"]")
        if limit == "max_depth":
            s.send(f"<message to='{jid}'>" + "<x xmlns='urn:example:x'>" * 30 + "</x>" * 30 + "</message>")
        else:
            attrs = " ".join(f"a{i}='{i}'" for i in range(40))
            s.send(f"<message to='{jid}'><x xmlns='urn:example:x' {attrs}/></message>")
        s.expect_stream_error("policy-violation")


def test_stanza_before_authentication_is_not_authorized(server):
    with RawStream(server.host, server.c2s_port) as s:
        s.starttls()
        s.send("<message to='bob@localhost' type='chat'><body>sneaky</body></message>")
        # RFC 6120 4.9.3.12
        s.expect_stream_error("not-authorized")


def test_stanza_before_tls_is_refused(server):
    with RawStream(server.host, server.c2s_port) as s:
        s.open_stream()
        s.send("<message to='bob@localhost' type='chat'><body>in the clear</body></message>")
        try:
            data = s.read_until_closed(timeout=5)
        except ReadTimeout as e:
            pytest.fail(f"server kept a stream that sent a stanza before STARTTLS open: {e}")
        assert re.search(r"<(not-authorized|policy-violation)\s+xmlns='urn:ietf:params:xml:ns:xmpp-streams'",
                         data.replace('"', "'")), data


def test_direct_tls_does_not_offer_starttls(server):
    with RawStream(server.host, server.tls_port, direct_tls=True) as s:
        features = s.open_stream()
        assert "<starttls" not in features, features
        assert "PLAIN" in features and "SCRAM-SHA-256" in features, features


def test_features_after_starttls(server):
    with RawStream(server.host, server.c2s_port) as s:
        features = s.starttls()
        assert "<starttls" not in features, features
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"):
            assert f"<mechanism>{mech}</mechanism>" in features, features
        # (SASL2's inline Bind2, urn:xmpp:bind:0, is fine: it binds only after authentication.)
        assert not re.search(r"<bind\s+xmlns=['\"]urn:ietf:params:xml:ns:xmpp-bind", features), (
            f"RFC 6120 resource binding offered before auth: {features}")
