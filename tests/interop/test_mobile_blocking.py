"""XEP-0191 Blocking Command with slixmpp's xep_0191 plugin: the list, pushes to the other
resource, and messages refused both ways while a contact is blocked."""

from __future__ import annotations

from slixmpp import JID

from xmpp_client import NS_CLIENT, login_with_plugins, stanza_error, tag, wait_until

NS_BLOCKED = "urn:xmpp:blocking:errors"


def is_error(el) -> bool:
    return el.get("type") == "error"


async def test_block_list_and_pushes(new_client):
    phone = await login_with_plugins(new_client, "alice", ["xep_0191"], resource="phone")
    laptop = await login_with_plugins(new_client, "alice", ["xep_0191"], resource="laptop")
    pushes: list = []
    laptop.xmpp.add_event_handler("blocked", lambda iq: pushes.append(("block", iq)))
    laptop.xmpp.add_event_handler("unblocked", lambda iq: pushes.append(("unblock", iq)))
    blocking = phone.xmpp.plugin["xep_0191"]
    assert await blocking.get_blocked_jids() == set()

    await blocking.block([JID("bob@localhost"), JID("carol@localhost")])
    await wait_until(lambda: pushes, "block push on the other resource")
    assert pushes[0][0] == "block"
    assert await laptop.xmpp.plugin["xep_0191"].get_blocked_jids() == {
        JID("bob@localhost"), JID("carol@localhost")}

    await blocking.unblock([JID("bob@localhost")])
    await wait_until(lambda: len(pushes) >= 2, "unblock push on the other resource")
    assert pushes[1][0] == "unblock"
    assert await blocking.get_blocked_jids() == {JID("carol@localhost")}

    # Unblock everything: an <unblock/> with no items (slixmpp's unblock() cannot send one).
    reply = await phone.iq("<iq type='set'><unblock xmlns='urn:xmpp:blocking'/></iq>")
    assert reply.get("type") == "result", reply
    await wait_until(lambda: len(pushes) >= 3, "unblock-all push")
    assert await blocking.get_blocked_jids() == set()


async def test_messages_are_refused_both_ways(new_client, connect):
    alice = await login_with_plugins(new_client, "alice", ["xep_0191"])
    bob = await connect("bob")
    await alice.xmpp.plugin["xep_0191"].block([JID(bob.bare)])

    bob.send_message(alice.full, "let me in")
    bounce = await bob.expect(is_error, "bounce of a message to a user who blocked bob")
    assert stanza_error(bounce)[1] == "service-unavailable", bounce
    await alice.expect_none(lambda el: tag(el) == "message", "message from a blocked contact")

    alice.send_message(bob.bare, "blocked by me")
    refusal = await alice.expect(is_error, "refusal of a message to a blocked contact")
    assert stanza_error(refusal)[1] == "not-acceptable"
    assert refusal.find(f"{{{NS_CLIENT}}}error/{{{NS_BLOCKED}}}blocked") is not None
    await bob.expect_none(lambda el: tag(el) == "message" and not is_error(el),
                          "message from the blocking user")

    await alice.xmpp.plugin["xep_0191"].unblock([JID(bob.bare)])
    bob.send_message(alice.full, "friends again")
    await alice.expect_message(body="friends again")
