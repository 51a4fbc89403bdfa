"""XEP-0163 PEP as stock OMEMO clients (XEP-0384, eu.siacs.conversations.axolotl) use it, driven by
slixmpp's xep_0060/xep_0163/xep_0115 plugins: the device list and bundle are published with
publish-options access_model=open and fetched by a contact and by a stranger; a contact whose
(slixmpp-computed, server-verified) caps say devicelist+notify receives the updates."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from slixmpp.exceptions import IqError

from xmpp_client import show, tag

AXOLOTL = "eu.siacs.conversations.axolotl"
DEVICES = f"{AXOLOTL}.devicelist"
NS_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
PLUGINS = ["xep_0004", "xep_0030", "xep_0060", "xep_0115", "xep_0163"]


def bundle_node(device: int) -> str:
    return f"{AXOLOTL}.bundles:{device}"


def device_list(*ids: int) -> ET.Element:
    return ET.fromstring(f"<list xmlns='{AXOLOTL}'>" + "".join(f"<device id='{i}'/>" for i in ids) + "</list>")


def bundle() -> ET.Element:
    return ET.fromstring(
        f"<bundle xmlns='{AXOLOTL}'><signedPreKeyPublic signedPreKeyId='1'>BASE64</signedPreKeyPublic>"
        "<signedPreKeySignature>SIG</signedPreKeySignature><identityKey>IDKEY</identityKey>"
        "<prekeys><preKeyPublic preKeyId='1'>PK1</preKeyPublic></prekeys></bundle>"
    )


def open_options(client):
    form = client.xmpp["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#publish-options")
    form.add_field(var="pubsub#access_model", value="open")
    return form


async def omemo_client(new_client, user: str, interested: bool = False):
    c = new_client(user)
    for plugin in PLUGINS:
        c.xmpp.register_plugin(plugin)
    await c.login()
    if interested:
        # What xep_0163.add_interest does, awaited: devicelist+notify in disco#info, a new caps ver, and a presence
        # announcing it. The server does not know the ver yet: it asks this client (which slixmpp answers).
        c.xmpp["xep_0030"].add_feature(f"{DEVICES}+notify")
        await c.xmpp["xep_0115"].update_caps(broadcast=False)
        c.xmpp.send_presence()

        def caps_query(el):
            return (tag(el) == "iq" and el.get("type") == "get" and el.get("from") == c.bare
                    and el.find(f"{{{NS_DISCO_INFO}}}query") is not None)
        query = await c.expect(caps_query, "the server's disco#info query for the announced caps")
        assert "#" in (query.find(f"{{{NS_DISCO_INFO}}}query").get("node") or ""), show(query)
    return c


async def subscribe(requester, contact):
    """`requester` subscribes to `contact`'s presence and `contact` approves (RFC 6121 3.1)."""
    requester.send_raw(f"<presence to='{contact.bare}' type='subscribe'/>")
    await contact.expect_presence(requester.bare, "subscribe")
    contact.send_raw(f"<presence to='{requester.bare}' type='subscribed'/>")
    await requester.expect_roster_push(contact.bare, "to")


def payload_ids(items) -> list[str]:
    return [item["id"] for item in items]


async def test_omemo_nodes_are_open_to_contacts_and_strangers(new_client):
    alice = await omemo_client(new_client, "alice")
    carol = await omemo_client(new_client, "carol", interested=True)
    bob = await omemo_client(new_client, "bob")  # no subscription either way
    await subscribe(carol, alice)

    pubsub = alice.xmpp["xep_0060"]
    await pubsub.publish(None, DEVICES, id="current", payload=device_list(1001), options=open_options(alice))
    await pubsub.publish(None, bundle_node(1001), id="current", payload=bundle(), options=open_options(alice))

    # The contact with devicelist+notify in its caps gets the update (server-initiated disco#info, verified hash).
    def devicelist_event(el):
        if tag(el) != "message" or el.get("from") != alice.bare:
            return False
        items = el.find(f"{{{NS_EVENT}}}event/{{{NS_EVENT}}}items")
        return items is not None and items.get("node") == DEVICES
    note = await carol.expect(devicelist_event, "devicelist notification")
    assert "1001" in show(note), show(note)
    await bob.expect_none(devicelist_event, "devicelist notification to a stranger", 0.5)

    for reader in (carol, bob):
        got = await reader.xmpp["xep_0060"].get_items(alice.bare, DEVICES)
        assert payload_ids(got["pubsub"]["items"]) == ["current"], show(got.xml)
        assert "1001" in show(got.xml), show(got.xml)
        one = await reader.xmpp["xep_0060"].get_item(alice.bare, bundle_node(1001), "current")
        assert "identityKey" in show(one.xml), show(one.xml)

    # A second device: the contact is notified again, and the list replaces the old one (one item).
    await pubsub.publish(None, DEVICES, id="current", payload=device_list(1001, 2002), options=open_options(alice))
    await carol.expect(lambda el: devicelist_event(el) and "2002" in show(el), "second devicelist notification")
    got = await bob.xmpp["xep_0060"].get_items(alice.bare, DEVICES)
    assert payload_ids(got["pubsub"]["items"]) == ["current"] and "2002" in show(got.xml), show(got.xml)


async def test_stranger_is_refused_a_presence_node_and_precondition_mismatch_is_reported(new_client):
    alice = await omemo_client(new_client, "alice")
    bob = await omemo_client(new_client, "bob")
    pubsub = alice.xmpp["xep_0060"]
    await pubsub.publish(None, "urn:test:presence-only", id="1", payload=device_list(1))
    with pytest.raises(IqError) as refused:
        await bob.xmpp["xep_0060"].get_items(alice.bare, "urn:test:presence-only")
    assert refused.value.condition == "not-authorized", show(refused.value.iq.xml)

    # Publishing with access_model=open to the existing presence node: precondition-not-met (XEP-0060 7.1.5),
    # which is what makes Conversations reconfigure the node and publish again.
    with pytest.raises(IqError) as conflict:
        await pubsub.publish(None, "urn:test:presence-only", id="1", payload=device_list(1),
                             options=open_options(alice))
    assert conflict.value.condition == "conflict", show(conflict.value.iq.xml)
    assert "precondition-not-met" in show(conflict.value.iq.xml)

    # Reconfigure (owner form), then the open publish succeeds and the stranger can read.
    form = alice.xmpp["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#node_config")
    form.add_field(var="pubsub#access_model", value="open")
    await pubsub.set_node_config(None, "urn:test:presence-only", form)
    await pubsub.publish(None, "urn:test:presence-only", id="1", payload=device_list(7), options=open_options(alice))
    got = await bob.xmpp["xep_0060"].get_items(alice.bare, "urn:test:presence-only")
    assert "7" in show(got.xml), show(got.xml)
