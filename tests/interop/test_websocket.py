"""RFC 7395 XMPP over WebSocket from a client that is not ours: aiohttp's WebSocket client
speaking the framing by hand (slixmpp has no WebSocket transport), SCRAM-SHA-256 written
from RFC 5802/7677, and a slixmpp TCP client on the other end of the conversation. Also
XEP-0156 discovery (host-meta.json) and BOSH session creation over plain HTTP requests."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import xml.etree.ElementTree as ET

import aiohttp

from conftest import USERS
from xmpp_client import NS_CLIENT, show

FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_STREAMS = "http://etherx.jabber.org/streams"
STEP = 10.0


def q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


class WsClient:
    """One XMPP stream over a WebSocket: every message is one standalone element."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.frames: list[str] = []

    async def send(self, xml: str) -> None:
        await self.ws.send_str(xml)

    async def recv(self) -> ET.Element:
        msg = await asyncio.wait_for(self.ws.receive(), STEP)
        assert msg.type == aiohttp.WSMsgType.TEXT, f"expected a text message, got {msg.type}: {msg.data!r}"
        self.frames.append(msg.data)
        return ET.fromstring(msg.data)  # a standalone document, or this raises

    async def expect(self, predicate, what: str) -> ET.Element:
        for _ in range(50):
            el = await self.recv()
            if predicate(el):
                return el
        raise AssertionError(f"{what} did not arrive; frames: {self.frames[-10:]}")

    async def open(self) -> ET.Element:
        await self.send(f"<open xmlns='{FRAMING}' to='localhost' version='1.0'/>")
        opened = await self.recv()
        assert opened.tag == q(FRAMING, "open"), self.frames
        assert opened.get("from") == "localhost" and opened.get("version") == "1.0", self.frames
        features = await self.recv()
        assert features.tag == q(NS_STREAMS, "features"), self.frames
        return features

    async def scram_sha256(self, user: str, password: str) -> None:
        nonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = f"n={user},r={nonce}"
        msg = base64.b64encode(f"n,,{first_bare}".encode()).decode()
        await self.send(f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-256'>{msg}</auth>")
        challenge = await self.recv()
        assert challenge.tag == q(NS_SASL, "challenge"), show(challenge)
        server_first = base64.b64decode(challenge.text).decode()
        fields = dict(part.split("=", 1) for part in server_first.split(","))
        assert fields["r"].startswith(nonce), server_first
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        final_bare = f"c=biws,r={fields['r']}"
        auth_message = f"{first_bare},{server_first},{final_bare}".encode()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        final = f"{final_bare},p={base64.b64encode(proof).decode()}"
        await self.send(f"<response xmlns='{NS_SASL}'>{base64.b64encode(final.encode()).decode()}</response>")
        success = await self.recv()
        assert success.tag == q(NS_SASL, "success"), show(success)
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        expected = hmac.new(server_key, auth_message, hashlib.sha256).digest()
        assert base64.b64decode(success.text).decode() == "v=" + base64.b64encode(expected).decode()

    async def bind(self, resource: str) -> str:
        await self.send(f"<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='{NS_BIND}'>"
                        f"<resource>{resource}</resource></bind></iq>")
        result = await self.expect(lambda el: el.get("id") == "b1", "bind result")
        assert result.get("type") == "result", show(result)
        return result.find(f"{q(NS_BIND, 'bind')}/{q(NS_BIND, 'jid')}").text


async def ws_login(session: aiohttp.ClientSession, port: int, user: str) -> tuple[WsClient, str]:
    ws = await session.ws_connect(f"wss://localhost:{port}/xmpp-websocket", protocols=("xmpp",), ssl=False)
    assert ws.protocol == "xmpp"
    client = WsClient(ws)
    features = await client.open()
    assert features.find(q("urn:ietf:params:xml:ns:xmpp-tls", "starttls")) is None, "no STARTTLS over WebSocket"
    await client.scram_sha256(user, USERS[user])
    features = await client.open()
    assert features.find(q(NS_BIND, "bind")) is not None, show(features)
    jid = await client.bind("browser")
    await client.send("<presence xmlns='jabber:client'/>")
    return client, jid


async def test_websocket_login_and_chat_with_a_slixmpp_tcp_client(server, connect):
    bob = await connect("bob")
    async with aiohttp.ClientSession() as session:
        alice, jid = await ws_login(session, server.https_port, "alice")
        assert jid == "alice@localhost/browser"

        await alice.send(f"<message xmlns='jabber:client' to='{bob.full}' type='chat'><body>hi from ws</body></message>")
        m = await bob.expect_message(frm=jid, body="hi from ws")
        assert m.get("from") == jid, show(m)

        bob.send_message(jid, "hi from slixmpp")
        got = await alice.expect(lambda el: el.tag == q(NS_CLIENT, "message"), "bob's message")
        assert got.findtext(q(NS_CLIENT, "body")) == "hi from slixmpp", show(got)
        assert got.get("from") == bob.full, show(got)
        # The stanza frame declared jabber:client itself (RFC 7395 §3.4).
        assert any(f.startswith("<message xmlns='jabber:client'") for f in alice.frames), alice.frames

        await alice.send(f"<close xmlns='{FRAMING}'/>")
        closing = await alice.expect(lambda el: el.tag == q(FRAMING, "close"), "<close/>")
        assert closing is not None
        msg = await asyncio.wait_for(alice.ws.receive(), STEP)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
        await alice.ws.close()


async def test_two_elements_in_one_message_are_a_stream_error(server):
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"wss://localhost:{server.https_port}/xmpp-websocket",
                                      protocols=("xmpp",), ssl=False)
        client = WsClient(ws)
        await client.open()
        await client.send("<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>")
        error = await client.expect(lambda el: el.tag == q(NS_STREAMS, "error"), "stream error")
        assert error.find(q("urn:ietf:params:xml:ns:xmpp-streams", "not-well-formed")) is not None, client.frames
        await client.expect(lambda el: el.tag == q(FRAMING, "close"), "<close/> after the error")
        await ws.close()


async def test_websocket_needs_the_xmpp_subprotocol(server):
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(f"wss://localhost:{server.https_port}/xmpp-websocket", ssl=False)
        except aiohttp.WSServerHandshakeError as e:
            assert e.status == 400, e
        else:
            await ws.close()
            raise AssertionError("handshake without the xmpp subprotocol was accepted")


async def test_host_meta_json_and_bosh_session_creation(server):
    port = server.https_port
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session:
        async with session.get(f"https://localhost:{port}/.well-known/host-meta.json") as r:
            assert r.status == 200
            assert r.headers.get("Access-Control-Allow-Origin") == "*"
            links = {link["rel"]: link["href"] for link in json.loads(await r.text())["links"]}
        assert links["urn:xmpp:alt-connections:websocket"] == f"wss://localhost:{port}/xmpp-websocket"
        bosh = links["urn:xmpp:alt-connections:xbosh"]
        body = ("<body xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' to='localhost' "
                "rid='42' wait='5' hold='1' xmpp:version='1.0'/>")
        async with session.post(bosh, data=body, headers={"Content-Type": "text/xml"}) as r:
            created = ET.fromstring(await r.text())
        assert created.get("sid") and created.get("hold") == "1", ET.tostring(created)
        features = created.find(q(NS_STREAMS, "features"))
        assert features is not None and features.find(q(NS_SASL, "mechanisms")) is not None, ET.tostring(created)
