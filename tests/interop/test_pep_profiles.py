"""Profiles with slixmpp's own plugins: XEP-0048 bookmarks through XEP-0049 private storage kept in sync with
XEP-0402 PEP bookmarks; XEP-0084 avatars mirrored into the XEP-0054 vCard (XEP-0398) and a vCard photo turned into
a PEP avatar with its XEP-0153 hash on presence."""

from __future__ import annotations

import base64
import hashlib

from slixmpp.plugins.xep_0048.stanza import Bookmarks

from xmpp_client import NS_CLIENT, login_with_plugins, show, tag

BOOKMARKS2 = "urn:xmpp:bookmarks:1"
PUBSUB = "http://jabber.org/protocol/pubsub"
VCARD = "vcard-temp"
UPDATE = "vcard-temp:x:update"
AVATAR_META = "urn:xmpp:avatar:metadata"
IMAGE = b"\x89PNG\r\n\x1a\n slixmpp avatar bytes"


def pep_item_ids(reply) -> list[str]:
    return [i.get("id") for i in reply.iter(f"{{{PUBSUB}}}item")]


async def test_legacy_bookmarks_through_private_storage_are_pep_bookmarks(new_client):
    alice = await login_with_plugins(new_client, "alice", ["xep_0048", "xep_0049"])
    legacy = Bookmarks()
    legacy.add_conference("lobby@conference.localhost", "al", name="Lobby", autojoin=True)
    legacy.add_conference("dev@conference.localhost", "al", autojoin=False)
    await alice.xmpp["xep_0048"].set_bookmarks(legacy)

    reply = await alice.iq(f"<iq type='get'><pubsub xmlns='{PUBSUB}'><items node='{BOOKMARKS2}'/></pubsub></iq>")
    assert reply.get("type") == "result", show(reply)
    assert sorted(pep_item_ids(reply)) == ["dev@conference.localhost", "lobby@conference.localhost"], show(reply)
    assert "<nick>al</nick>" in show(reply) or ">al</" in show(reply), show(reply)

    # A XEP-0402 client adds a room with a raw publish; the XEP-0048 client sees it.
    publish = (
        f"<iq type='set'><pubsub xmlns='{PUBSUB}'><publish node='{BOOKMARKS2}'>"
        f"<item id='new@conference.localhost'><conference xmlns='{BOOKMARKS2}' name='New' autojoin='true'>"
        "<nick>A</nick></conference></item></publish></pubsub></iq>"
    )
    assert (await alice.iq(publish)).get("type") == "result"
    got = await alice.xmpp["xep_0048"].get_bookmarks()
    jids = sorted(c["jid"] for c in got["private"]["bookmarks"]["conferences"])
    assert jids == ["dev@conference.localhost", "lobby@conference.localhost", "new@conference.localhost"], \
        show(got.xml)


async def test_pep_avatar_reaches_the_vcard_and_a_vcard_photo_the_presence(new_client):
    plugins = ["xep_0030", "xep_0054", "xep_0060", "xep_0084", "xep_0163"]
    alice = await login_with_plugins(new_client, "alice", plugins)
    bob = await login_with_plugins(new_client, "bob", plugins)

    avatar = alice.xmpp["xep_0084"]
    digest = hashlib.sha1(IMAGE).hexdigest()
    await avatar.publish_avatar(IMAGE)
    await avatar.publish_avatar_metadata([{"id": digest, "type": "image/png", "bytes": len(IMAGE)}])
    # XEP-0398: bob (anyone) reads alice's vCard and finds the avatar as PHOTO.
    vcard = await bob.xmpp["xep_0054"].get_vcard(alice.bare)
    photo = vcard["vcard_temp"]["PHOTO"]
    assert photo["BINVAL"] == IMAGE, show(vcard.xml)
    assert photo["TYPE"] == "image/png", show(vcard.xml)

    # The other way round: a vCard with a new photo becomes the PEP avatar, and presence carries its hash.
    second = b"GIF89a second avatar"
    card = bob.xmpp["xep_0054"].make_vcard()
    card["FN"] = "Bob"
    card["PHOTO"]["TYPE"] = "image/gif"
    card["PHOTO"]["BINVAL"] = second
    await bob.xmpp["xep_0054"].publish_vcard(card)
    second_hash = hashlib.sha1(second).hexdigest()
    meta = await bob.iq(f"<iq type='get'><pubsub xmlns='{PUBSUB}'><items node='{AVATAR_META}'/></pubsub></iq>")
    assert pep_item_ids(meta) == [second_hash], show(meta)
    data = await bob.xmpp["xep_0084"].retrieve_avatar(bob.bare, second_hash)
    assert base64.b64encode(second).decode() in show(data.xml), show(data.xml)

    bob.send_raw("<presence><status>new photo</status></presence>")

    def own_presence(el):
        return tag(el) == "presence" and el.get("from") == bob.full and el.find(f"{{{UPDATE}}}x") is not None
    echo = await bob.expect(own_presence, "own presence with vcard-temp:x:update")
    assert echo.find(f"{{{UPDATE}}}x/{{{UPDATE}}}photo").text == second_hash, show(echo)
    assert echo.tag == f"{{{NS_CLIENT}}}presence"
