"""XEP-0352 Client State Indication with slixmpp's xep_0352 plugin: presence churn is held
back while inactive (only the newest presence arrives on <active/>), chat messages are not."""

from __future__ import annotations

import asyncio

from xmpp_client import login_with_plugins, tag, wait_until

PING = "<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>"


def is_presence_from(jid: str):
    return lambda el: tag(el) == "presence" and (el.get("from") or "").startswith(jid)


async def subscribed(alice, bob) -> None:
    """alice subscribes to bob's presence and bob approves."""
    alice.send_raw(f"<presence type='subscribe' to='{bob.bare}'/>")
    await bob.expect(lambda el: tag(el) == "presence" and el.get("type") == "subscribe",
                     "subscription request")
    bob.send_raw(f"<presence type='subscribed' to='{alice.bare}'/>")
    await alice.expect_presence(bob.bare)
    alice.take(lambda el: True)


async def test_presence_is_held_and_only_the_newest_sent_on_active(new_client, connect):
    alice = await login_with_plugins(new_client, "alice", ["xep_0352"])
    csi = alice.xmpp.plugin["xep_0352"]
    assert csi.enabled, "the server advertises <csi/>"
    bob = await connect("bob")
    await subscribed(alice, bob)

    csi.send_inactive()
    await alice.iq(PING)
    for status in ("one", "two", "three"):
        bob.send_raw(f"<presence><status>{status}</status></presence>")
    await bob.iq(PING)
    await alice.expect_none(is_presence_from(bob.bare), "presence while inactive")

    csi.send_active()
    await alice.expect_presence(bob.bare, status="three")
    await asyncio.sleep(0.5)
    assert not alice.received(is_presence_from(bob.bare)), "one presence only, the newest"


async def test_a_chat_message_reaches_an_inactive_client_at_once(new_client, connect):
    alice = await login_with_plugins(new_client, "alice", ["xep_0352"])
    csi = alice.xmpp.plugin["xep_0352"]
    bob = await connect("bob")
    await subscribed(alice, bob)
    csi.send_inactive()
    await alice.iq(PING)
    bob.send_raw("<presence><status>held</status></presence>")
    await bob.iq(PING)
    loop = asyncio.get_running_loop()
    started = loop.time()
    bob.send_message(alice.full, "urgent")
    await alice.expect_message(body="urgent", timeout=2)
    assert loop.time() - started < 1.0
    await wait_until(lambda: alice.received(is_presence_from(bob.bare)),
                     "the held presence, flushed before the message")
