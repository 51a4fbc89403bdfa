"""RFC 6120 section 8 / RFC 6121 section 8: routing to full and bare JIDs, IQ round trips
between clients, forged 'from', no error loops, and throughput without loss."""

import asyncio

from conftest import USERS
from raw import RawStream
from xmpp_client import NS_CLIENT, show, stanza_error, tag


async def test_iq_round_trip_between_clients(connect):
    alice = await connect("alice")
    bob = await connect("bob")
    # bob's slixmpp answers jabber:iq:version itself (XEP-0092 plugin).
    reply = await alice.iq(f"<iq type='get' to='{bob.full}'><query xmlns='jabber:iq:version'/></iq>")
    assert reply.get("type") == "result", show(reply)
    assert reply.get("from") == bob.full, show(reply)
    assert reply.find("{jabber:iq:version}query") is not None, show(reply)


async def test_iq_to_unavailable_resource_is_service_unavailable(connect):
    alice = await connect("alice")
    await connect("bob")
    reply = await alice.iq("<iq type='get' to='bob@localhost/nosuchresource'>"
                           "<query xmlns='jabber:iq:version'/></iq>")
    # RFC 6121 8.5.3.2.2
    assert reply.get("type") == "error", show(reply)
    assert stanza_error(reply)[1] == "service-unavailable", show(reply)


async def test_chat_to_unavailable_resource_goes_to_bare_jid(connect):
    alice = await connect("alice")
    bob = await connect("bob")
    alice.send_raw("<message to='bob@localhost/gone' type='chat'><body>wrong resource</body></message>")
    # RFC 6121 8.5.3.2.1: a chat message to a full JID with no such resource is treated as
    # if addressed to the bare JID.
    await bob.expect_message(frm=alice.full, body="wrong resource")


async def test_forged_from_is_not_delivered_as_forged(connect):
    alice = await connect("alice")
    bob = await connect("bob")
    alice.send_raw("<message from='carol@localhost/evil' to='bob@localhost' type='chat'>"
                   "<body>forged</body></message>")
    # RFC 6120 8.1.2.1: the server either stamps the real 'from' or refuses (invalid-from).
    forged = lambda el: tag(el) == "message" and (el.get("from") or "").startswith("carol@")  # noqa: E731
    await bob.expect_none(forged, "message with a forged from", within=1.5)
    got = bob.received(lambda el: tag(el) == "message"
                       and el.findtext(f"{{{NS_CLIENT}}}body") == "forged")
    for m in got:
        assert m.get("from") == alice.full, show(m)


async def test_error_stanzas_are_not_bounced(connect):
    alice = await connect("alice")
    alice.send_raw("<message to='nobody@localhost' type='error' id='e1'><body>x</body>"
                   "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                   "</error></message>")
    alice.send_raw("<iq to='localhost' type='result' id='r1'/>")
    alice.send_raw("<iq to='nobody@localhost' type='error' id='r2'><error type='cancel'>"
                   "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
    # RFC 6120 8.3.1: an entity never answers an error (or a result) with an error.
    await alice.expect_none(lambda el: el.get("id") in ("e1", "r1", "r2"), "reply to an error/result",
                            within=1.5)
    pong = await alice.iq("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert pong.get("type") == "result", show(pong)


async def test_burst_of_messages_is_delivered_in_order_or_bounced(connect):
    alice = await connect("alice")
    bob = await connect("bob")
    n = 600
    for i in range(n):
        alice.send_raw(f"<message to='{bob.full}' type='chat' id='b{i}'><body>burst {i}</body></message>")

    def burst(el):
        return tag(el) == "message" and (el.get("id") or "").startswith("b")

    # Each message is delivered to bob or, if his queue was full, bounced back to alice.
    delivered: list[int] = []
    bounced: list[int] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while len(delivered) + len(bounced) < n and loop.time() < deadline:
        delivered += [int(el.get("id")[1:]) for el in bob.take(burst)]
        bounced += [int(el.get("id")[1:]) for el in alice.take(lambda el: burst(el) and el.get("type") == "error")]
        await asyncio.sleep(0.05)
    missing = sorted(set(range(n)) - set(delivered) - set(bounced))
    assert not missing, (
        f"{len(missing)} of {n} messages neither delivered nor bounced (first: {missing[:10]}); "
        f"delivered {len(delivered)}, bounced {len(bounced)}")
    assert delivered == sorted(delivered), "messages to one full JID arrived out of order"
    assert len(delivered) == len(set(delivered)), "duplicate delivery"
    # The flooded session still works.
    alice.send_message(bob.full, "after the burst")
    await bob.expect_message(frm=alice.full, body="after the burst")


def test_abrupt_disconnect_broadcasts_unavailable(server):
    """A client that vanishes without </stream:stream> is still seen going offline."""
    with RawStream(server.host, server.c2s_port) as alice:
        alice_jid = alice.login("alice", USERS["alice"], resource="a")
        with RawStream(server.host, server.c2s_port) as bob:
            bob_jid = bob.login("bob", USERS["bob"], resource="b")
            # alice subscribes to bob; bob approves; alice then gets bob's presence.
            alice.send("<presence to='bob@localhost' type='subscribe'/>")
            bob.read_until(r"<presence[^>]*type=['\"]subscribe['\"][^>]*>")
            bob.send("<presence to='alice@localhost' type='subscribed'/>")
            alice.read_until(r"<presence(?=[^>]*from=['\"]" + bob_jid + r"['\"])(?![^>]*type=)")
            bob.sock.close()  # no closing tag, no TLS close_notify
        alice.read_until(
            r"<presence(?=[^>]*from=['\"]" + bob_jid + r"['\"])(?=[^>]*type=['\"]unavailable['\"])",
            timeout=10,
        )
        assert alice_jid == "alice@localhost/a"
