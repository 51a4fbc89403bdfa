"""RFC 6121 section 2: roster get, set, remove, and roster pushes to every interested resource."""

from xmpp_client import NS_ROSTER, show, stanza_error

GROUP = f"{{{NS_ROSTER}}}group"


async def test_roster_add_update_remove_with_pushes(connect):
    alice = await connect("alice", resource="one")
    alice2 = await connect("alice", resource="two")
    assert await alice.roster() == {}

    reply = await alice.iq(
        f"<iq type='set'><query xmlns='{NS_ROSTER}'>"
        "<item jid='bob@localhost' name='Bob'><group>Friends</group></item></query></iq>"
    )
    assert reply.get("type") == "result", show(reply)
    # RFC 6121 2.1.6: the push goes to every resource that requested the roster.
    for c in (alice, alice2):
        item = await c.expect_roster_push("bob@localhost")
        assert item.get("name") == "Bob", show(item)
        assert item.get("subscription", "none") == "none", show(item)
        assert [g.text for g in item.findall(GROUP)] == ["Friends"], show(item)

    items = await alice2.roster()
    assert list(items) == ["bob@localhost"]
    assert items["bob@localhost"].get("name") == "Bob"

    # Updating the item replaces it.
    reply = await alice.iq(
        f"<iq type='set'><query xmlns='{NS_ROSTER}'>"
        "<item jid='bob@localhost' name='Robert'><group>Work</group></item></query></iq>"
    )
    assert reply.get("type") == "result", show(reply)
    for c in (alice, alice2):
        item = await c.expect_roster_push("bob@localhost")
        assert item.get("name") == "Robert", show(item)
        assert [g.text for g in item.findall(GROUP)] == ["Work"], show(item)

    reply = await alice2.iq(
        f"<iq type='set'><query xmlns='{NS_ROSTER}'>"
        "<item jid='bob@localhost' subscription='remove'/></query></iq>"
    )
    assert reply.get("type") == "result", show(reply)
    for c in (alice, alice2):
        item = await c.expect_roster_push("bob@localhost")
        assert item.get("subscription") == "remove", show(item)
    assert await alice.roster() == {}


async def test_removing_unknown_item_is_item_not_found(connect):
    alice = await connect("alice")
    reply = await alice.iq(
        f"<iq type='set'><query xmlns='{NS_ROSTER}'>"
        "<item jid='nobody@localhost' subscription='remove'/></query></iq>"
    )
    # RFC 6121 2.5.3
    assert reply.get("type") == "error", show(reply)
    assert stanza_error(reply)[1] == "item-not-found", show(reply)


async def test_roster_survives_restart(server, connect):
    alice = await connect("alice")
    reply = await alice.iq(
        f"<iq type='set'><query xmlns='{NS_ROSTER}'>"
        "<item jid='carol@localhost' name='Carol'/></query></iq>"
    )
    assert reply.get("type") == "result", show(reply)
    await alice.close()
    server.restart()
    alice = await connect("alice")
    items = await alice.roster()
    assert list(items) == ["carol@localhost"]
    assert items["carol@localhost"].get("name") == "Carol"
