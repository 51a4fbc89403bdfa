"""XEP-0045 Multi-User Chat with slixmpp's xep_0045 plugin: join, occupants, groupchat,
private messages, nick change, leave, and history for a late joiner."""

from __future__ import annotations

import pytest
from slixmpp.exceptions import PresenceError

from xmpp_client import NS_CLIENT, NS_DELAY, body_of, login_with_plugins, show, tag

SERVICE = "conference.localhost"
ROOM = f"lobby@{SERVICE}"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
JOIN_TIMEOUT = 10


def codes(el) -> set[str]:
    return {s.get("code") for s in el.findall(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}status")}


def muc_item(el):
    return el.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}item")


def presence_from(frm: str, ptype: str | None = None):
    return lambda el: tag(el) == "presence" and el.get("from") == frm and el.get("type") == ptype


@pytest.fixture
def muc_client(new_client):
    """await muc_client("alice") -> a logged-in Client with the xep_0045 plugin."""

    async def make(user: str):
        return await login_with_plugins(new_client, user, ["xep_0045"])

    return make


async def join(client, nick: str, **kwargs):
    """join_muc_wait: (self-presence, subject, occupant presences, history), as slixmpp sees them."""
    muc = client.xmpp.plugin["xep_0045"]
    return await muc.join_muc_wait(ROOM, nick, timeout=JOIN_TIMEOUT, **kwargs)


async def create(client, nick: str):
    """join, then accept the default configuration: a new room stays locked until then (XEP-0045 §10.1)."""
    result = await join(client, nick)
    muc = client.xmpp.plugin["xep_0045"]
    form = await muc.get_room_config(ROOM)
    await muc.set_room_config(ROOM, form)
    return result


async def room_items(client) -> list[str]:
    reply = await client.iq(f"<iq type='get' to='{SERVICE}'><query xmlns='{NS_DISCO_ITEMS}'/></iq>")
    assert reply.get("type") == "result", show(reply)
    return [i.get("jid") for i in reply.iter(f"{{{NS_DISCO_ITEMS}}}item")]


async def test_join_and_see_each_other(muc_client):
    alice = await muc_client("alice")
    bob = await muc_client("bob")

    pres, subject, occupants, history = await create(alice, "Alice")
    assert {110, 201} <= set(pres["muc"]["status_codes"]), pres
    assert (pres["muc"]["affiliation"], pres["muc"]["role"]) == ("owner", "moderator"), pres
    assert subject["type"] == "groupchat", subject
    empty = subject.xml.find(f"{{{NS_CLIENT}}}subject")
    assert empty is not None and not (empty.text or ""), f"an empty subject: {subject}"
    assert history == [], history

    pres, _, occupants, _ = await join(bob, "Bob")
    assert 110 in pres["muc"]["status_codes"] and 201 not in pres["muc"]["status_codes"], pres
    assert (pres["muc"]["affiliation"], pres["muc"]["role"]) == ("none", "participant"), pres
    assert sorted(str(p["from"].resource) for p in occupants) == ["Alice", "Bob"], occupants
    seen = await alice.expect(presence_from(f"{ROOM}/Bob"), "bob's arrival")
    assert muc_item(seen).get("jid") == bob.full, f"the owner sees real JIDs: {show(seen)}"
    assert 110 not in {int(c) for c in codes(seen)}, show(seen)

    assert set(alice.xmpp.plugin["xep_0045"].get_roster(ROOM)) == {"Alice", "Bob"}
    assert set(bob.xmpp.plugin["xep_0045"].get_roster(ROOM)) == {"Alice", "Bob"}
    assert ROOM in await room_items(bob)


async def test_nick_in_use_is_a_conflict(muc_client):
    alice = await muc_client("alice")
    bob = await muc_client("bob")
    await create(alice, "Alice")
    try:
        await join(bob, "Alice")
    except PresenceError as err:
        assert err.condition == "conflict", err.presence
    except TimeoutError:
        # slixmpp matches join errors on presence@type=error/muc_join (XEP-0045 §7.2.9 echoes the <x/>).
        raw = bob.received(presence_from(f"{ROOM}/Alice", "error"))
        pytest.fail("slixmpp did not recognise the join error; presence errors received: "
                    + ", ".join(show(el) for el in raw))
    else:
        pytest.fail("joining with a nick in use succeeded")


async def test_groupchat_both_ways(muc_client):
    alice = await muc_client("alice")
    bob = await muc_client("bob")
    await create(alice, "Alice")
    await join(bob, "Bob")

    alice.send_message(ROOM, "hello room", mtype="groupchat")
    for c in (alice, bob):
        m = await c.expect_message(frm=f"{ROOM}/Alice", body="hello room")
        assert m.get("type") == "groupchat", show(m)
    bob.send_message(ROOM, "hello alice", mtype="groupchat")
    for c in (alice, bob):
        await c.expect_message(frm=f"{ROOM}/Bob", body="hello alice")


async def test_private_message(muc_client):
    alice = await muc_client("alice")
    bob = await muc_client("bob")
    await create(alice, "Alice")
    await join(bob, "Bob")

    alice.send_message(f"{ROOM}/Bob", "just for you")
    m = await bob.expect_message(frm=f"{ROOM}/Alice", body="just for you")
    assert m.get("type") == "chat" and m.get("to") == bob.full, show(m)
    await alice.expect_none(lambda el: body_of(el) == "just for you", "an echo of the private message")

    bob.send_message(f"{ROOM}/Alice", "thanks")
    await alice.expect_message(frm=f"{ROOM}/Bob", body="thanks")


async def test_nick_change(muc_client):
    alice = await muc_client("alice")
    bob = await muc_client("bob")
    await create(alice, "Alice")
    await join(bob, "Bob")
    await alice.expect(presence_from(f"{ROOM}/Bob"), "bob's arrival")

    new = await bob.xmpp.plugin["xep_0045"].set_self_nick(ROOM, "Robert", timeout=JOIN_TIMEOUT)
    assert new == "Robert"
    gone = await alice.expect(presence_from(f"{ROOM}/Bob", "unavailable"), "bob's old nick leaving")
    assert "303" in codes(gone) and muc_item(gone).get("nick") == "Robert", show(gone)
    await alice.expect(presence_from(f"{ROOM}/Robert"), "bob under the new nick")
    await bob.expect(presence_from(f"{ROOM}/Robert"), "own presence under the new nick")
    assert set(alice.xmpp.plugin["xep_0045"].get_roster(ROOM)) == {"Alice", "Robert"}

    bob.send_message(ROOM, "call me Robert", mtype="groupchat")
    await alice.expect_message(frm=f"{ROOM}/Robert", body="call me Robert")


async def test_leave(muc_client):
    alice = await muc_client("alice")
    bob = await muc_client("bob")
    await create(alice, "Alice")
    await join(bob, "Bob")

    bob.xmpp.plugin["xep_0045"].leave_muc(ROOM, "Bob")
    own = await bob.expect(presence_from(f"{ROOM}/Bob", "unavailable"), "own unavailable presence")
    assert "110" in codes(own), show(own)
    await alice.expect(presence_from(f"{ROOM}/Bob", "unavailable"), "bob leaving")
    assert set(alice.xmpp.plugin["xep_0045"].get_roster(ROOM)) == {"Alice"}

    alice.xmpp.plugin["xep_0045"].leave_muc(ROOM, "Alice")
    await alice.expect(presence_from(f"{ROOM}/Alice", "unavailable"), "own unavailable presence")
    assert ROOM not in await room_items(alice), "the empty room is gone"


async def test_history_for_a_late_joiner(muc_client):
    alice = await muc_client("alice")
    await create(alice, "Alice")
    alice.xmpp.plugin["xep_0045"].set_subject(ROOM, "Agenda")
    for i in range(3):
        alice.send_message(ROOM, f"h{i}", mtype="groupchat")
    await alice.expect_message(frm=f"{ROOM}/Alice", body="h2")

    carol = await muc_client("carol")
    _, subject, occupants, history = await join(carol, "Carol")
    assert [m["body"] for m in history] == ["h0", "h1", "h2"], history
    for m in history:
        assert m["delay"]["from"] == ROOM and m["delay"]["stamp"] is not None, m
    assert subject["subject"] == "Agenda", subject
    # slixmpp lists every occupant that came online, itself included.
    assert sorted(str(p["from"].resource) for p in occupants) == ["Alice", "Carol"], occupants

    dave = await muc_client("bob")
    _, _, _, history = await join(dave, "Dave", maxstanzas=1)
    assert [m["body"] for m in history] == ["h2"], history
    late = dave.received(lambda el: tag(el) == "message" and el.find(f"{{{NS_DELAY}}}delay") is not None)
    assert all(el.findtext(f"{{{NS_CLIENT}}}body") == "h2" for el in late), [show(el) for el in late]
