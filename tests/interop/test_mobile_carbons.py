"""XEP-0280 Message Carbons with slixmpp's xep_0280 plugin across two resources of one
account: received and sent copies, and messages marked private that are not copied."""

from __future__ import annotations

from xmpp_client import login_with_plugins, wait_until

NS_CARBONS = "urn:xmpp:carbons:2"


async def two_resources(new_client):
    phone = await login_with_plugins(new_client, "alice", ["xep_0280"], resource="phone")
    laptop = await login_with_plugins(new_client, "alice", ["xep_0280"], resource="laptop")
    for c in (phone, laptop):
        await c.xmpp.plugin["xep_0280"].enable()
    return phone, laptop


def record(c, event: str) -> list:
    got: list = []
    c.xmpp.add_event_handler(event, got.append)
    return got


async def test_received_and_sent_messages_are_copied(new_client, connect):
    phone, laptop = await two_resources(new_client)
    received, sent = record(laptop, "carbon_received"), record(laptop, "carbon_sent")
    bob = await connect("bob")

    bob.send_message(phone.full, "to the phone")
    await phone.expect_message(body="to the phone")
    await wait_until(lambda: received, "received carbon on the laptop")
    inner = received[0]["carbon_received"]
    assert inner["body"] == "to the phone"
    assert inner["from"] == bob.full and inner["to"] == phone.full
    assert received[0]["from"] == phone.bare, "carbons come from the account's bare JID"

    phone.send_message(bob.bare, "from the phone")
    await bob.expect_message(body="from the phone")
    await wait_until(lambda: sent, "sent carbon on the laptop")
    inner = sent[0]["carbon_sent"]
    assert inner["body"] == "from the phone"
    assert inner["from"] == phone.full and inner["to"] == bob.bare


async def test_private_messages_are_not_copied(new_client, connect):
    phone, laptop = await two_resources(new_client)
    bob = await connect("bob")
    private = f"<private xmlns='{NS_CARBONS}'/>"
    phone.send_raw(f"<message type='chat' to='{bob.bare}'><body>secret</body>{private}</message>")
    await bob.expect_message(body="secret")
    bob.send_raw(f"<message type='chat' to='{phone.full}'><body>psst</body>{private}</message>")
    await phone.expect_message(body="psst")
    await laptop.expect_none(
        lambda el: el.find(f"{{{NS_CARBONS}}}sent") is not None
        or el.find(f"{{{NS_CARBONS}}}received") is not None,
        "carbon of a private message",
    )


async def test_disabled_resources_get_no_copies(new_client, connect):
    phone, laptop = await two_resources(new_client)
    await laptop.xmpp.plugin["xep_0280"].disable()
    received = record(laptop, "carbon_received")
    bob = await connect("bob")
    bob.send_message(phone.full, "not for the laptop")
    await phone.expect_message(body="not for the laptop")
    await laptop.expect_none(lambda el: el.find(f"{{{NS_CARBONS}}}received") is not None,
                             "carbon after disable")
    assert not received
