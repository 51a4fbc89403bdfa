"""XEP-0198 Stream Management with slixmpp's xep_0198 plugin: acknowledgements both ways,
and a resumption after a dropped connection that delivers every message sent during the gap
exactly once."""

from __future__ import annotations

import asyncio

from slixmpp import JID

from xmpp_client import body_of, login_with_plugins, tag, wait_until



async def sm_login(new_client, user: str, resource: str):
    c = await login_with_plugins(new_client, user, ["xep_0198"], resource=resource)
    sm = c.xmpp.plugin["xep_0198"]
    await wait_until(lambda: sm.sm_id, f"{user}: <enabled/> with a resumption id")
    return c, sm


def message_bodies(c) -> list[str]:
    return [body_of(el) for el in c.received(lambda el: tag(el) == "message")]


async def test_the_server_acknowledges_everything_sent(new_client, connect):
    alice, sm = await sm_login(new_client, "alice", "phone")
    bob = await connect("bob")
    for i in range(12):
        alice.send_message(bob.bare, f"ack me {i}")
    for i in range(12):
        await bob.expect_message(body=f"ack me {i}")
    sm.request_ack()
    # The harness's login ping goes out with send_raw, which slixmpp does not count: the
    # server's h may be one above slixmpp's own sequence number, never below it.
    await wait_until(lambda: not sm.unacked_queue and sm.last_ack >= sm.seq >= 12,
                     "an <a h/> covering every message")


async def test_resumption_delivers_gap_messages_exactly_once(new_client, connect):
    alice, sm = await sm_login(new_client, "alice", "phone")
    full = alice.full
    bob = await connect("bob")
    for body in ("m1", "m2", "m3"):
        bob.send_message(full, body)
    for body in ("m1", "m2", "m3"):
        await alice.expect_message(body=body)
    previd = sm.sm_id

    resumed = asyncio.Event()
    alice.xmpp.add_event_handler("session_resumed", lambda _: resumed.set())
    alice.disconnected.clear()
    alice.xmpp.abort()  # the socket is gone: no </stream:stream>, no unavailable presence
    await asyncio.wait_for(alice.disconnected.wait(), 10)

    for body in ("g1", "g2", "g3", "g4"):
        bob.send_message(full, body)
    # Through slixmpp's send queue, so the ping does not overtake the queued messages.
    await bob.xmpp.plugin["xep_0199"].send_ping(JID("localhost"), timeout=10)
    await bob.expect_none(lambda el: el.get("type") == "error", "error for a message in the gap")

    alice.xmpp.connect(alice.host, alice.port)
    await asyncio.wait_for(resumed.wait(), 10)
    assert sm.sm_id == previd, "the same session was resumed"
    assert str(alice.xmpp.boundjid) == full
    await wait_until(lambda: "g4" in message_bodies(alice), "g4 after the resumption")
    await asyncio.sleep(0.5)  # time for any duplicate to show up
    assert message_bodies(alice) == ["g1", "g2", "g3", "g4"], (
        "gap messages once each, in order, and no m1..m3 again"
    )

    # The resumed session goes on both ways.
    alice.send_message(bob.bare, "back")
    await bob.expect_message(frm=full, body="back")
    bob.send_message(full, "welcome back")
    await alice.expect_message(body="welcome back")
