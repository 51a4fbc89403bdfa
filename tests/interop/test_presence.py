"""RFC 6121 sections 3 and 4: the subscription handshake, then presence both ways."""

from xmpp_client import NS_CLIENT, show


async def subscribe(requester, contact, before: str = "none"):
    """RFC 6121 3.1: `requester` subscribes to `contact`'s presence and `contact` approves.
    `before` is the subscription state of the requester's item for the contact beforehand."""
    r, c = requester.bare, contact.bare
    after = {"none": "to", "from": "both"}[before]
    contact_before = {"none": "none", "from": "to"}[before]
    contact_after = {"none": "from", "to": "both"}[contact_before]

    requester.send_raw(f"<presence to='{c}' type='subscribe'/>")
    item = await requester.expect_roster_push(c, before)
    assert item.get("ask") == "subscribe", f"3.1.2: roster push with ask='subscribe': {show(item)}"

    request = await contact.expect_presence(r, "subscribe")
    assert request.get("from") == r, f"3.1.3: subscription request from the bare JID: {show(request)}"

    contact.send_raw(f"<presence to='{r}' type='subscribed'/>")
    await contact.expect_roster_push(r, contact_after)

    approval = await requester.expect_presence(c, "subscribed")
    assert approval.get("from") == c, show(approval)
    item = await requester.expect_roster_push(c, after)
    assert item.get("ask") is None, f"ask cleared after approval: {show(item)}"
    # 3.1.6: the contact's server sends the contact's current presence to the requester.
    await requester.expect_presence(contact.full, None)


async def test_subscription_handshake_then_presence(connect):
    alice = await connect("alice")
    bob = await connect("bob")

    await subscribe(alice, bob)
    await subscribe(bob, alice, before="from")

    for c, other in ((alice, bob), (bob, alice)):
        items = await c.roster()
        assert items[other.bare].get("subscription") == "both", show(items[other.bare])

    # Broadcast of presence changes: each sees the other's.
    bob.send_raw("<presence><show>away</show><status>lunch</status></presence>")
    p = await alice.expect_presence(bob.full, None, status="lunch")
    assert p.findtext(f"{{{NS_CLIENT}}}show") == "away", show(p)

    alice.send_raw("<presence><status>here</status></presence>")
    await bob.expect_presence(alice.full, None, status="here")

    # A new session of bob gets alice's presence on its initial presence (RFC 6121 4.2.2).
    bob2 = await connect("bob", resource="second")
    await bob2.expect_presence(alice.full, None)
    await alice.expect_presence(bob2.full, None)

    # Going offline is seen as unavailable presence from the full JID.
    await bob.close()
    await alice.expect_presence(bob.full, "unavailable")
    await bob2.close()
    await alice.expect_presence(bob2.full, "unavailable")


async def test_presence_not_sent_without_subscription(connect):
    alice = await connect("alice")
    bob = await connect("bob")
    bob.send_raw("<presence><status>secret</status></presence>")
    await alice.expect_none(lambda el: el.get("from", "").startswith("bob@"), "stanza from bob")


async def test_subscription_survives_restart(server, connect):
    alice = await connect("alice")
    bob = await connect("bob")
    await subscribe(alice, bob)
    await alice.close()
    await bob.close()
    server.restart()
    bob = await connect("bob")
    alice = await connect("alice")
    # alice is subscribed to bob: she gets his presence when she comes online (4.2.2).
    await alice.expect_presence(bob.full, None)
    items = await alice.roster()
    assert items["bob@localhost"].get("subscription") == "to", show(items["bob@localhost"])



async def test_removing_contact_cancels_both_subscriptions(connect):
    alice = await connect("alice")
    bob = await connect("bob")
    await subscribe(alice, bob)
    await subscribe(bob, alice, before="from")

    reply = await alice.iq("<iq type='set'><query xmlns='jabber:iq:roster'>"
                           "<item jid='bob@localhost' subscription='remove'/></query></iq>")
    assert reply.get("type") == "result", show(reply)
    await alice.expect_roster_push("bob@localhost", "remove")
    # RFC 6121 2.5.2: the server sends unsubscribe and unsubscribed to the contact, whose
    # roster item falls to subscription='none' ...
    await bob.expect_roster_push("alice@localhost", "none")
    # ... and the contact stops seeing the user (3.2.3 / 3.3.3: unavailable presence).
    await bob.expect_presence(alice.full, "unavailable")
    items = await bob.roster()
    assert items["alice@localhost"].get("subscription") == "none", show(items["alice@localhost"])
    assert "bob@localhost" not in await alice.roster()
