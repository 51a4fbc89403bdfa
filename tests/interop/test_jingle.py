"""Call set-up between slixmpp clients: XEP-0353 Jingle Message Initiation (propose to the callee's bare JID
rings every device; proceed goes to the caller's full JID; carbons tell the other devices) and XEP-0166
Jingle IQs between full JIDs (slixmpp, which has no Jingle plugin, answers with an error that comes back)."""

from __future__ import annotations

import pytest

from xmpp_client import NS_CLIENT, login_with_plugins, stanza_error, tag

NS_CARBONS = "urn:xmpp:carbons:2"
NS_FORWARD = "urn:xmpp:forward:0"
NS_JINGLE = "urn:xmpp:jingle:1"


def jmi(ns: str, action: str, sid: str):
    def match(el):
        return tag(el) == "message" and el.find(f"{{{ns}}}{action}[@id='{sid}']") is not None
    return match


def carbon_of(direction: str, inner):
    def match(el):
        fwd = el.find(f"{{{NS_CARBONS}}}{direction}/{{{NS_FORWARD}}}forwarded/{{{NS_CLIENT}}}message")
        return fwd is not None and inner(fwd)
    return match


@pytest.mark.parametrize("ns", ["urn:xmpp:jingle-message:0", "urn:xmpp:jingle-message:1"])
async def test_a_call_rings_every_device_and_is_answered_to_the_caller(new_client, ns):
    phone = await login_with_plugins(new_client, "alice", ["xep_0280"], resource="phone")
    tablet = await login_with_plugins(new_client, "alice", ["xep_0280"], resource="tablet")
    laptop = await login_with_plugins(new_client, "bob", ["xep_0280"], resource="laptop")
    desk = await login_with_plugins(new_client, "bob", ["xep_0280"], resource="desk")
    for c in (tablet, desk):
        await c.xmpp.plugin["xep_0280"].enable()

    phone.send_raw(
        f"<message type='chat' to='{laptop.bare}' id='p1'><propose xmlns='{ns}' id='call1'>"
        "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>"
        "<store xmlns='urn:xmpp:hints'/></message>"
    )
    for device in (laptop, desk):
        ring = await device.expect(jmi(ns, "propose", "call1"), "propose")
        assert ring.get("from") == phone.full
    await tablet.expect(carbon_of("sent", jmi(ns, "propose", "call1")), "sent carbon of the propose")

    laptop.send_raw(f"<message type='chat' to='{phone.full}'><proceed xmlns='{ns}' id='call1'/></message>")
    answer = await phone.expect(jmi(ns, "proceed", "call1"), "proceed")
    assert answer.get("from") == laptop.full
    await desk.expect(carbon_of("sent", jmi(ns, "proceed", "call1")), "sent carbon of the proceed")
    await tablet.expect(carbon_of("received", jmi(ns, "proceed", "call1")), "received carbon of the proceed")
    await tablet.expect_none(jmi(ns, "proceed", "call1"), "the proceed itself (it was for the phone)")


async def test_jingle_iqs_go_between_full_jids_and_back(connect):
    alice = await connect("alice")
    bob = await connect("bob")
    reply = await alice.iq(
        f"<iq type='set' to='{bob.full}'><jingle xmlns='{NS_JINGLE}' action='session-initiate' sid='s1' "
        f"initiator='{alice.full}'><content creator='initiator' name='voice'/></jingle></iq>"
    )
    got = await bob.expect(lambda el: tag(el) == "iq" and el.find(f"{{{NS_JINGLE}}}jingle") is not None,
                           "the jingle IQ")
    assert got.get("from") == alice.full
    # slixmpp has no Jingle plugin and answers with an error: it comes back from bob's full JID.
    assert reply.get("from") == bob.full and reply.get("type") == "error", reply
    # To a bare JID the server answers for the account (RFC 6121 §8.5.1).
    reply = await alice.iq(
        f"<iq type='set' to='{bob.bare}'><jingle xmlns='{NS_JINGLE}' action='session-initiate' sid='s2'/></iq>"
    )
    assert stanza_error(reply)[1] == "service-unavailable"
