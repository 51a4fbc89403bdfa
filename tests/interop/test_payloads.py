"""Stanza content survives routing byte-exactly in meaning: extensions, escaping, UTF-8 split
across TCP segments; malformed addresses get stanza errors, not silence."""

import time

import pytest

from conftest import USERS
from raw import RawStream
from xmpp_client import NS_CLIENT, show, stanza_error, tag


async def test_unknown_extensions_and_escaping_are_preserved(connect):
    alice = await connect("alice")
    bob = await connect("bob")
    alice.send_raw(
        f"<message to='{bob.full}' type='chat' id='ext1' xml:lang='fr'>"
        "<body>&lt;b&gt; &amp; &apos;quoted&apos; &quot;x&quot; é 𝄞</body>"
        "<x xmlns='urn:example:ext' a='1' b='&lt;&amp;'><y>z</y><y/></x>"
        "</message>"
    )
    m = await bob.expect(lambda el: tag(el) == "message" and el.get("id") == "ext1", "message ext1")
    assert m.findtext(f"{{{NS_CLIENT}}}body") == "<b> & 'quoted' \"x\" é 𝄞", show(m)
    x = m.find("{urn:example:ext}x")
    assert x is not None, f"extension element dropped: {show(m)}"
    assert (x.get("a"), x.get("b")) == ("1", "<&"), show(m)
    assert [tag(c) for c in x] == ["y", "y"] and x[0].text == "z", show(m)
    assert m.get("{http://www.w3.org/XML/1998/namespace}lang") in (None, "fr"), show(m)


def test_utf8_split_across_segments(server):
    with RawStream(server.host, server.c2s_port) as s:
        jid = s.login("alice", USERS["alice"])
        data = f"<message to='{jid}' type='chat' id='u1'><body>ünïcødé 😀</body></message>".encode()
        cut = data.index("😀".encode()) + 2  # in the middle of the 4-byte sequence
        s.send(data[:cut])
        time.sleep(0.2)
        s.send(data[cut:])
        echo = s.read_until(r"<message[^>]*id=['\"]u1['\"].*?</message>")
        assert "ünïcødé 😀" in echo, echo


@pytest.mark.parametrize("to", ["a@b@localhost", "@localhost", "alice@localhost/", "a b@localhost"])
async def test_malformed_to_is_jid_malformed(connect, to):
    alice = await connect("alice")
    alice.send_raw(f"<message to='{to}' type='chat' id='jm'><body>x</body></message>")
    err = await alice.expect(lambda el: tag(el) == "message" and el.get("id") == "jm", "reply to bad JID")
    assert err.get("type") == "error", show(err)
    # RFC 6120 8.3.3.8
    assert stanza_error(err)[1] == "jid-malformed", show(err)


async def test_remote_domain_without_s2s(connect):
    alice = await connect("alice")
    alice.send_raw("<message to='someone@elsewhere.example' type='chat' id='r1'><body>x</body></message>")
    err = await alice.expect(lambda el: tag(el) == "message" and el.get("id") == "r1", "bounce")
    assert err.get("type") == "error", show(err)
    assert stanza_error(err)[1] in ("remote-server-not-found", "service-unavailable"), show(err)


async def test_iq_without_payload_is_an_error(connect):
    alice = await connect("alice")
    reply = await alice.iq("<iq type='get' to='localhost'/>")
    # RFC 6120 8.2.3: a get or set has exactly one child; without it there is nothing to answer.
    assert reply.get("type") == "error", show(reply)
