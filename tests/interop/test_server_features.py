"""What the server itself answers: XEP-0030 disco, XEP-0199 ping, XEP-0092 version, and
service-unavailable for what it does not know."""

import pytest

from xmpp_client import show, stanza_error

DISCO_INFO = "http://jabber.org/protocol/disco#info"


async def test_disco_info_on_server(connect):
    alice = await connect("alice")
    reply = await alice.iq(f"<iq type='get' to='localhost'><query xmlns='{DISCO_INFO}'/></iq>")
    assert reply.get("type") == "result", show(reply)
    assert reply.get("from") in (None, "localhost"), show(reply)
    query = reply.find(f"{{{DISCO_INFO}}}query")
    assert query is not None, show(reply)
    identities = {(i.get("category"), i.get("type")) for i in query.findall(f"{{{DISCO_INFO}}}identity")}
    assert ("server", "im") in identities, show(reply)
    features = {f.get("var") for f in query.findall(f"{{{DISCO_INFO}}}feature")}
    for feature in (DISCO_INFO, "urn:xmpp:ping", "jabber:iq:version"):
        assert feature in features, f"{feature} not advertised: {show(reply)}"


async def test_disco_via_slixmpp_plugin(connect):
    alice = await connect("alice")
    info = await alice.xmpp["xep_0030"].get_info(jid="localhost", timeout=10)
    assert "urn:xmpp:ping" in info["disco_info"]["features"]


async def test_ping_server(connect):
    alice = await connect("alice")
    reply = await alice.iq("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert reply.get("type") == "result", show(reply)
    rtt = await alice.xmpp["xep_0199"].ping(jid="localhost", timeout=10)
    assert rtt >= 0


async def test_ping_without_to_is_answered_by_server(connect):
    alice = await connect("alice")
    reply = await alice.iq("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert reply.get("type") == "result", show(reply)


async def test_version(connect):
    alice = await connect("alice")
    reply = await alice.iq("<iq type='get' to='localhost'><query xmlns='jabber:iq:version'/></iq>")
    assert reply.get("type") == "result", show(reply)
    query = reply.find("{jabber:iq:version}query")
    assert query is not None, show(reply)
    assert (query.findtext("{jabber:iq:version}name") or "").strip(), show(reply)
    assert (query.findtext("{jabber:iq:version}version") or "").strip(), show(reply)


@pytest.mark.parametrize("payload", [
    "<query xmlns='urn:example:unknown'/>",
    "<whatever xmlns='jabber:iq:nonsense'><x/></whatever>",
])
async def test_unknown_iq_to_server_is_service_unavailable(connect, payload):
    alice = await connect("alice")
    reply = await alice.iq(f"<iq type='get' to='localhost'>{payload}</iq>")
    assert reply.get("type") == "error", show(reply)
    assert stanza_error(reply)[1] == "service-unavailable", show(reply)


async def test_session_survives_unknown_iq(connect):
    alice = await connect("alice")
    await alice.iq("<iq type='set' to='localhost'><query xmlns='urn:example:unknown'/></iq>")
    reply = await alice.iq("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert reply.get("type") == "result", show(reply)
