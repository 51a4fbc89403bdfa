"""XEP-0045 administration with slixmpp's xep_0045 plugin: roles and affiliations (kick, ban, member lists),
room configuration through the owner form, persistence across a restart, the room archive (XEP-0313),
moderation (XEP-0425), mediated invitations and self-ping (XEP-0410)."""

from __future__ import annotations

import pytest
from slixmpp.exceptions import IqError, PresenceError

from xmpp_client import NS_CLIENT, login_with_plugins, show, tag

SERVICE = "conference.localhost"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_MAM = "urn:xmpp:mam:2"
NS_SID = "urn:xmpp:sid:0"
JOIN_TIMEOUT = 10


def codes(el) -> set[str]:
    return {s.get("code") for s in el.findall(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}status")}


def presence_from(frm: str, ptype: str | None = None):
    return lambda el: tag(el) == "presence" and el.get("from") == frm and el.get("type") == ptype


@pytest.fixture
def muc_client(new_client):
    async def make(user: str, **kwargs):
        return await login_with_plugins(new_client, user, ["xep_0045", "xep_0004"], **kwargs)

    return make


def muc(client):
    return client.xmpp.plugin["xep_0045"]


async def join(client, room: str, nick: str, **kwargs):
    return await muc(client).join_muc_wait(room, nick, timeout=JOIN_TIMEOUT, **kwargs)


async def configure(client, room: str, **values):
    """Fetches the owner form, sets `values` (field var suffixes after muc#roomconfig_), submits it."""
    form = await muc(client).get_room_config(room)
    for var, value in values.items():
        form.field[f"muc#roomconfig_{var}"]["value"] = value
    await muc(client).set_room_config(room, form)


async def room_features(client, room: str) -> set[str]:
    reply = await client.iq(f"<iq type='get' to='{room}'><query xmlns='{NS_DISCO_INFO}'/></iq>")
    assert reply.get("type") == "result", show(reply)
    return {f.get("var") for f in reply.iter(f"{{{NS_DISCO_INFO}}}feature")}


async def test_kick_ban_and_lists(muc_client):
    room = f"admin@{SERVICE}"
    alice, bob, carol = [await muc_client(u) for u in ("alice", "bob", "carol")]
    await join(alice, room, "Alice")
    await configure(alice, room)
    await join(bob, room, "Bob")
    await join(carol, room, "Carol")

    # A participant may not kick.
    with pytest.raises(IqError) as err:
        await muc(bob).set_role(room, "Carol", "none")
    assert err.value.condition == "forbidden"

    await muc(alice).set_role(room, "Carol", "none", reason="cool off")
    kicked = await carol.expect(presence_from(f"{room}/Carol", "unavailable"), "carol kicked")
    assert {"307", "110"} <= codes(kicked), show(kicked)

    await muc(alice).set_affiliation(room, "member", jid=bob.bare)
    assert [str(j) for j in await muc(alice).get_affiliation_list(room, "member")] == [bob.bare]
    await muc(alice).set_affiliation(room, "outcast", jid=carol.bare, reason="spam")
    assert [str(j) for j in await muc(alice).get_affiliation_list(room, "outcast")] == [carol.bare]
    with pytest.raises(PresenceError) as err:
        await join(carol, room, "Carol")
    assert err.value.condition == "forbidden"


async def test_config_persists_across_a_restart(server, muc_client):
    room = f"kept@{SERVICE}"
    alice = await muc_client("alice")
    await join(alice, room, "Alice")
    await configure(alice, room, persistentroom=True, membersonly=True, roomname="Kept room")
    features = await room_features(alice, room)
    assert {"muc_persistent", "muc_membersonly", NS_MAM} <= features, features
    await muc(alice).set_affiliation(room, "member", jid="bob@localhost")
    muc(alice).set_subject(room, "Still here")
    alice.send_message(room, "before the restart", mtype="groupchat")
    await alice.expect_message(frm=f"{room}/Alice", body="before the restart")
    await alice.close()

    server.restart()

    bob = await muc_client("bob")
    _, subject, _, history = await join(bob, room, "Bob")
    assert subject["subject"] == "Still here", subject
    # bob, an absent member, also got the message offline (the same stanza-id) before joining: slixmpp counts
    # that copy as history too.
    assert {m["body"] for m in history} == {"before the restart"}, history
    ids = {m.xml.find(f"{{{NS_SID}}}stanza-id").get("id") for m in history}
    assert len(ids) == 1, [str(m) for m in history]
    carol = await muc_client("carol")
    with pytest.raises(PresenceError) as err:
        await join(carol, room, "Carol")
    assert err.value.condition == "registration-required"


async def test_room_archive_and_moderation(muc_client):
    room = f"log@{SERVICE}"
    alice, bob = [await muc_client(u) for u in ("alice", "bob")]
    await join(alice, room, "Alice")
    await configure(alice, room, persistentroom=True)
    await join(bob, room, "Bob")
    bob.send_message(room, "first", mtype="groupchat")
    bob.send_message(room, "oops", mtype="groupchat")
    m = await alice.expect_message(frm=f"{room}/Bob", body="oops")
    sid = m.find(f"{{{NS_SID}}}stanza-id")
    assert sid is not None and sid.get("by") == room, show(m)

    reply = await bob.iq(f"<iq type='set' to='{room}'><query xmlns='{NS_MAM}' queryid='q1'/></iq>")
    assert reply.get("type") == "result", show(reply)
    results = bob.received(lambda el: tag(el) == "message" and el.find(f"{{{NS_MAM}}}result") is not None)
    bodies = [el.findtext(f".//{{{NS_CLIENT}}}body") for el in results]
    assert bodies == ["first", "oops"], [show(el) for el in results]

    reply = await alice.iq(
        f"<iq type='set' to='{room}'><moderate xmlns='urn:xmpp:message-moderate:1' id='{sid.get('id')}'>"
        "<retract xmlns='urn:xmpp:message-retract:1'/><reason>typo</reason></moderate></iq>")
    assert reply.get("type") == "result", show(reply)
    await bob.expect(lambda el: tag(el) == "message" and el.find("{urn:xmpp:message-retract:1}retract") is not None,
                     "the retraction")


async def test_mediated_invitation_and_self_ping(muc_client):
    room = f"party@{SERVICE}"
    alice, bob = [await muc_client(u) for u in ("alice", "bob")]
    await join(alice, room, "Alice")
    await configure(alice, room, membersonly=True)
    muc(alice).invite(room, bob.bare, reason="join us")
    inv = await bob.expect(lambda el: tag(el) == "message" and el.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}invite")
                           is not None, "the invitation")
    assert inv.get("from") == room, show(inv)
    await join(bob, room, "Bob")  # the invitation made bob a member

    pong = await bob.iq(f"<iq type='get' to='{room}/Bob'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert pong.get("type") == "result", show(pong)
    muc(bob).leave_muc(room, "Bob")
    await bob.expect(presence_from(f"{room}/Bob", "unavailable"), "own leave")
    gone = await bob.iq(f"<iq type='get' to='{room}/Bob'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert gone.get("type") == "error" and gone.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}not-acceptable") is not None, show(gone)
