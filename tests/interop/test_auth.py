"""Authentication: SASL mechanisms over STARTTLS and direct TLS, failures, authzid."""

import pytest

from conftest import USERS
from raw import NS_SASL, PeerClosed, RawStream


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
async def test_login_over_starttls(new_client, mechanism):
    alice = new_client("alice", mechanism=mechanism)
    await alice.login()
    assert alice.mechanism == mechanism
    assert alice.tls_version is not None, "session is not encrypted"
    assert alice.bare == "alice@localhost"
    assert alice.full.startswith("alice@localhost/"), alice.full


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
async def test_login_over_direct_tls(new_client, mechanism):
    alice = new_client("alice", direct_tls=True, mechanism=mechanism)
    await alice.login()
    assert alice.mechanism == mechanism
    assert alice.tls_version is not None
    assert alice.full.startswith("alice@localhost/"), alice.full


async def test_requested_resource_is_bound(new_client):
    alice = new_client("alice", resource="laptop")
    await alice.login()
    assert alice.full == "alice@localhost/laptop"


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
async def test_wrong_password_is_not_authorized(new_client, mechanism):
    alice = new_client("alice", mechanism=mechanism, password="not-the-password")
    outcome, condition = await alice.try_login()
    assert (outcome, condition) == ("failed_auth", "not-authorized")


async def test_unknown_user_is_not_authorized(new_client):
    mallory = new_client("mallory", mechanism="SCRAM-SHA-256", password="whatever")
    outcome, condition = await mallory.try_login()
    assert (outcome, condition) == ("failed_auth", "not-authorized")


async def test_non_ascii_password(make_server, new_client):
    srv = make_server(users={"dave": "pässwörd-日本"})
    for mechanism in ("SCRAM-SHA-256", "PLAIN"):
        dave = new_client("dave", srv=srv, mechanism=mechanism, password="pässwörd-日本")
        await dave.login()
        await dave.close()


def test_plain_not_offered_before_tls(server):
    with RawStream(server.host, server.c2s_port) as s:
        features = s.open_stream()
        assert "<starttls" in features and "<required" in features, features
        assert "PLAIN" not in features, f"PLAIN offered on a plaintext stream: {features}"


def test_plain_refused_before_tls(server):
    """Even if a client tries PLAIN in the clear, the server must not accept it."""
    with RawStream(server.host, server.c2s_port) as s:
        s.open_stream()
        s.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>AGFsaWNlAGFsaWNlLXNlY3JldA==</auth>")
        try:
            reply = s.read_until(r"<failure.*?(?:/>|</failure>)|</stream:stream>|</stream:error>")
        except PeerClosed:
            return  # closing the connection is a refusal too
        assert "<success" not in reply, reply


def test_authzid_of_another_user_is_refused(server):
    with RawStream(server.host, server.c2s_port) as s:
        features = s.starttls()
        assert "PLAIN" in features, features
        reply = s.auth_plain("alice", USERS["alice"], authzid="bob@localhost")
        assert reply.startswith("<failure"), reply
        assert "<invalid-authzid" in reply, reply


def test_authzid_of_own_jid_is_accepted(server):
    with RawStream(server.host, server.c2s_port) as s:
        s.starttls()
        reply = s.auth_plain("alice", USERS["alice"], authzid="alice@localhost")
        assert reply.startswith("<success"), reply


def test_raw_login_binds_resource(server):
    with RawStream(server.host, server.c2s_port) as s:
        assert s.login("alice", USERS["alice"], resource="raw1") == "alice@localhost/raw1"


def test_same_resource_twice_replaces_the_old_session(server):
    with RawStream(server.host, server.c2s_port) as first:
        assert first.login("alice", USERS["alice"], resource="desk") == "alice@localhost/desk"
        with RawStream(server.host, server.c2s_port) as second:
            jid = second.login("alice", USERS["alice"], resource="desk")
            if jid == "alice@localhost/desk":
                # RFC 6120 7.7.2.2: the server terminated the older session.
                first.expect_stream_error("conflict")
            else:
                # ... or gave the new session another resource; both then work.
                assert jid.startswith("alice@localhost/"), jid
            second.send("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
            second.read_until(r"<iq[^>]*id=['\"]p['\"]")
