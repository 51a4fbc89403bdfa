"""RFC 6120 4.9: stream errors for bad input, and that one bad stream harms no other."""

import asyncio

import pytest

from conftest import USERS
from raw import RawStream, stream_header
from xmpp_client import show


async def test_malformed_xml_closes_only_that_stream(server, connect):
    alice = await connect("alice")
    bob = await connect("bob")

    def misbehave() -> str:
        with RawStream(server.host, server.c2s_port) as s:
            s.login("carol", USERS["carol"])
            s.send("<message to='alice@localhost' type='chat'><body>oops</message>")
            return s.expect_stream_error("not-well-formed")

    error_task = asyncio.create_task(asyncio.to_thread(misbehave))
    # Chat goes on while, and after, carol's stream breaks.
    for i in range(5):
        alice.send_message(bob.full, f"still here {i}")
        bob.send_message(alice.full, f"me too {i}")
        await bob.expect_message(frm=alice.full, body=f"still here {i}")
        await alice.expect_message(frm=bob.full, body=f"me too {i}")
    await asyncio.wait_for(error_task, 30)
    alice.send_message(bob.full, "after")
    await bob.expect_message(frm=alice.full, body="after")
    # The broken stanza was not routed.
    assert not alice.received(lambda el: "oops" in show(el)), "half-parsed stanza was delivered"


def test_malformed_xml_before_auth(server):
    with RawStream(server.host, server.c2s_port) as s:
        s.open_stream()
        s.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></wrong>")
        s.expect_stream_error("not-well-formed")


@pytest.mark.parametrize("shape", ["complete", "unterminated"])
def test_oversize_stanza_is_policy_violation(make_server, shape):
    srv = make_server({"limits": {"max_stanza_bytes": 10000}})
    with RawStream(srv.host, srv.c2s_port) as s:
        jid = s.login("alice", USERS["alice"])
        # Under the limit: delivered (to herself).
        small = "s" * 5000
        s.send(f"<message to='{jid}' type='chat' id='small'><body>{small}</body></message>")
        s.read_until(r"<message[^>]*id=['\"]small['\"].*?</message>")
        big = "b" * 20000
        if shape == "complete":
            s.send(f"<message to='{jid}' type='chat'><body>{big}</body></message>")
        else:
            s.send(f"<message to='{jid}' type='chat'><body>{big}")
        s.expect_stream_error("policy-violation")


def test_oversize_stanza_before_auth(make_server):
    srv = make_server({"limits": {"max_stanza_bytes": 10000}})
    with RawStream(srv.host, srv.c2s_port) as s:
        s.open_stream()
        s.send("<iq type='get' id='x'><query xmlns='jabber:iq:version'>" + "x" * 20000)
        s.expect_stream_error("policy-violation")


@pytest.mark.parametrize("where", ["dtd", "comment", "processing-instruction"])
def test_restricted_xml(server, where):
    with RawStream(server.host, server.c2s_port) as s:
        if where == "dtd":
            header = stream_header("localhost", xml_decl=False)
            s.send("<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY boom 'boom'>]>" + header)
        else:
            s.open_stream()
            s.send("<!-- a comment -->" if where == "comment" else "<?evil instruction?>")
        s.expect_stream_error("restricted-xml")


@pytest.mark.parametrize("header", [
    stream_header("localhost", stream_ns="urn:example:not-streams"),
    stream_header("localhost", xmlns="jabber:not-client"),
], ids=["stream-namespace", "content-namespace"])
def test_invalid_namespace(server, header):
    with RawStream(server.host, server.c2s_port) as s:
        s.send(header)
        s.expect_stream_error("invalid-namespace")


def test_unknown_host(server):
    with RawStream(server.host, server.c2s_port) as s:
        s.send(stream_header("not-served.example"))
        s.expect_stream_error("host-unknown")


def test_unknown_host_on_direct_tls(server):
    with RawStream(server.host, server.tls_port, direct_tls=True) as s:
        s.send(stream_header("not-served.example"))
        s.expect_stream_error("host-unknown")
