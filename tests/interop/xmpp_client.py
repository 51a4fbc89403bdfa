"""An slixmpp client for tests: connect, log in, and wait for stanzas, every step bounded.

Every stanza the server sends is recorded before slixmpp's own handlers run, so a test
can wait for "the next message from alice" without depending on slixmpp's higher layers.
"""

from __future__ import annotations

import asyncio
import ssl
import xml.etree.ElementTree as ET
from typing import Callable

import slixmpp
from slixmpp.xmlstream import tostring

NS_CLIENT = "jabber:client"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_ROSTER = "jabber:iq:roster"
NS_DELAY = "urn:xmpp:delay"

STEP_TIMEOUT = 10.0


class LoginFailed(AssertionError):
    def __init__(self, jid: str, outcome: str, detail: str | None):
        super().__init__(f"login as {jid} failed: {outcome} {detail or ''}".strip())
        self.outcome = outcome
        self.detail = detail


def tag(el: ET.Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def ns(el: ET.Element) -> str:
    return el.tag[1:].split("}", 1)[0] if el.tag.startswith("{") else ""


def stanza_error(el: ET.Element) -> tuple[str | None, str | None]:
    """(type, defined-condition) of a stanza's <error/>, or (None, None)."""
    err = el.find(f"{{{NS_CLIENT}}}error")
    if err is None:
        return None, None
    for child in err:
        if ns(child) == NS_STANZAS and tag(child) != "text":
            return err.get("type"), tag(child)
    return err.get("type"), None


def show(el: ET.Element) -> str:
    return tostring(el)


class Client:
    """One XMPP client connection under test."""

    def __init__(self, jid: str, password: str, host: str, port: int, *,
                 direct_tls: bool = False, mechanism: str | None = None):
        self.jid = jid
        self.host = host
        self.port = port
        self.xmpp = slixmpp.ClientXMPP(jid, password, sasl_mech=mechanism)
        # The server's certificate is self-signed.
        self.xmpp.ssl_context.check_hostname = False
        self.xmpp.ssl_context.verify_mode = ssl.CERT_NONE
        # connect(host, port) tries the direct-TLS service then the STARTTLS one: keep one.
        self.xmpp.enable_direct_tls = direct_tls
        self.xmpp.enable_starttls = not direct_tls
        self.xmpp.enable_plaintext = False
        self.xmpp.use_ipv6 = False
        self.xmpp.whitespace_keepalive = False
        # Subscription requests are answered by the tests themselves.
        self.xmpp.roster.auto_authorize = None
        self.xmpp.roster.auto_subscribe = False
        for plugin in ("xep_0030", "xep_0199", "xep_0092", "xep_0203"):
            self.xmpp.register_plugin(plugin)
        self.xmpp.add_filter("in", self._record)
        self._pending: list[ET.Element] = []
        self._arrived = asyncio.Event()
        self.stream_errors: list[str] = []
        self.xmpp.add_event_handler("stream_error", lambda e: self.stream_errors.append(e["condition"]))
        self.disconnected = asyncio.Event()
        self.xmpp.add_event_handler("disconnected", lambda _: self.disconnected.set())

    # ---- recording -----------------------------------------------------------------------

    def _record(self, stanza):
        if ns(stanza.xml) == NS_CLIENT:
            self._pending.append(stanza.xml)
            self._arrived.set()
        return stanza

    async def expect(self, predicate: Callable[[ET.Element], bool], what: str,
                     timeout: float = STEP_TIMEOUT) -> ET.Element:
        """Wait for, remove and return the first received stanza matching `predicate`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, el in enumerate(self._pending):
                if predicate(el):
                    del self._pending[i]
                    return el
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = "\n  ".join(show(el) for el in self._pending) or "(nothing)"
                raise AssertionError(
                    f"{self.jid}: no {what} within {timeout}s; received and unmatched:\n  {seen}"
                )
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except (asyncio.TimeoutError, TimeoutError):
                pass

    async def expect_none(self, predicate: Callable[[ET.Element], bool], what: str,
                          within: float = 1.0) -> None:
        """Assert no matching stanza arrives within `within` seconds."""
        try:
            el = await self.expect(predicate, what, timeout=within)
        except AssertionError:
            return
        raise AssertionError(f"{self.jid}: unexpected {what}: {show(el)}")

    def take(self, predicate: Callable[[ET.Element], bool]) -> list[ET.Element]:
        """Remove and return every received stanza matching `predicate`, without waiting."""
        taken = [el for el in self._pending if predicate(el)]
        self._pending = [el for el in self._pending if not predicate(el)]
        return taken

    def received(self, predicate: Callable[[ET.Element], bool]) -> list[ET.Element]:
        return [el for el in self._pending if predicate(el)]

    async def expect_message(self, frm: str | None = None, body: str | None = None,
                             timeout: float = STEP_TIMEOUT) -> ET.Element:
        def match(el):
            return (tag(el) == "message" and el.get("type") != "error"
                    and (frm is None or jid_matches(el.get("from"), frm))
                    and (body is None or el.findtext(f"{{{NS_CLIENT}}}body") == body))
        return await self.expect(match, f"message from={frm} body={body!r}", timeout)

    async def expect_presence(self, frm: str, ptype: str | None = None, status: str | None = None,
                              timeout: float = STEP_TIMEOUT) -> ET.Element:
        """ptype None means available presence (no type attribute)."""
        def match(el):
            return (tag(el) == "presence" and el.get("type") == ptype
                    and jid_matches(el.get("from"), frm)
                    and (status is None or el.findtext(f"{{{NS_CLIENT}}}status") == status))
        what = f"presence type={ptype} from={frm}" + (f" status={status!r}" if status else "")
        return await self.expect(match, what, timeout)

    async def expect_roster_push(self, contact: str, subscription: str | None = None,
                                 timeout: float = STEP_TIMEOUT) -> ET.Element:
        """Wait for a roster push about `contact` (with that subscription state, if given);
        returns its <item/>."""
        def match(el):
            if tag(el) != "iq" or el.get("type") != "set":
                return False
            item = el.find(f"{{{NS_ROSTER}}}query/{{{NS_ROSTER}}}item[@jid='{contact}']")
            return item is not None and (
                subscription is None or item.get("subscription", "none") == subscription)
        what = f"roster push for {contact}" + (f" subscription={subscription}" if subscription else "")
        iq = await self.expect(match, what, timeout)
        frm = iq.get("from")
        assert frm in (None, self.bare), f"roster push from a foreign entity: {show(iq)}"
        return iq.find(f"{{{NS_ROSTER}}}query/{{{NS_ROSTER}}}item")

    # ---- connection ----------------------------------------------------------------------

    @property
    def bare(self) -> str:
        return str(self.xmpp.boundjid.bare)

    @property
    def full(self) -> str:
        return str(self.xmpp.boundjid.full)

    async def try_login(self, timeout: float = STEP_TIMEOUT) -> tuple[str, str | None]:
        """Connect and authenticate; returns ("session_start", None) or the failure seen."""
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future = loop.create_future()

        def settle(kind: str, detail: str | None = None) -> None:
            if not outcome.done():
                outcome.set_result((kind, detail))

        x = self.xmpp
        x.add_event_handler("session_start", lambda _: settle("session_start"))
        x.add_event_handler("failed_auth", lambda st: settle("failed_auth", st["condition"]))
        x.add_event_handler("failed_all_auth", lambda _: settle("failed_all_auth"))
        x.add_event_handler("no_auth", lambda _: settle("no_auth"))
        x.add_event_handler("stream_error", lambda e: settle("stream_error", e["condition"]))
        x.add_event_handler("connection_failed", lambda e: settle("connection_failed", str(e)))
        x.add_event_handler("disconnected", lambda r: settle("disconnected", str(r)))
        x.connect(self.host, self.port)
        try:
            return await asyncio.wait_for(outcome, timeout)
        except (asyncio.TimeoutError, TimeoutError):
            return ("timeout", f"no session within {timeout}s")

    async def login(self, *, roster: bool = True, presence: bool = True,
                    timeout: float = STEP_TIMEOUT) -> Client:
        """Log in; then fetch the roster and send initial presence, as a real client does."""
        outcome, detail = await self.try_login(timeout)
        if outcome != "session_start":
            await self.close()
            raise LoginFailed(self.jid, outcome, detail)
        if roster:
            await asyncio.wait_for(self.xmpp.get_roster(timeout=timeout), timeout + 1)
        if presence:
            self.xmpp.send_presence()
        # The server handles one session's stanzas in order: once this ping is answered the
        # initial presence has taken effect, and other clients may address this one.
        pong = await self.iq("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>", timeout)
        assert pong.get("type") == "result", f"{self.jid}: ping after login failed: {show(pong)}"
        return self

    @property
    def mechanism(self) -> str | None:
        mech = getattr(self.xmpp.plugin["feature_mechanisms"], "mech", None)
        return mech.name if mech else None

    @property
    def tls_version(self) -> str | None:
        transport = self.xmpp.transport
        obj = transport.get_extra_info("ssl_object") if transport else None
        return obj.version() if obj else None

    async def close(self) -> None:
        x = self.xmpp
        x.cancel_connection_attempt()
        if x.transport is not None:
            try:
                await asyncio.wait_for(x.disconnect(wait=1.0), 5)
            except Exception:
                x.abort()
        x.cancel_connection_attempt()

    async def roster(self) -> dict[str, ET.Element]:
        """The server's roster as {jid: <item/>}."""
        reply = await self.iq(f"<iq type='get'><query xmlns='{NS_ROSTER}'/></iq>")
        assert reply.get("type") == "result", show(reply)
        query = reply.find(f"{{{NS_ROSTER}}}query")
        assert query is not None, f"roster result without <query/>: {show(reply)}"
        return {item.get("jid"): item for item in query.findall(f"{{{NS_ROSTER}}}item")}

    # ---- sending -------------------------------------------------------------------------

    def send_raw(self, xml: str) -> None:
        self.xmpp.send_raw(xml)

    def send_message(self, to: str, body: str, mtype: str = "chat") -> None:
        self.xmpp.send_message(mto=to, mbody=body, mtype=mtype)

    async def iq(self, xml: str, timeout: float = STEP_TIMEOUT) -> ET.Element:
        """Send an <iq/> given as text (its id is set here); return the result or error iq."""
        iq_id = self.xmpp.new_id()
        assert xml.startswith("<iq "), xml
        text = f"<iq id='{iq_id}' " + xml[len("<iq "):]
        self.send_raw(text)

        def match(r):
            return tag(r) == "iq" and r.get("id") == iq_id and r.get("type") in ("result", "error")
        return await self.expect(match, f"reply to {text}", timeout)


def jid_matches(actual: str | None, expected: str) -> bool:
    """`expected` without a resource matches any resource of that bare JID."""
    if actual is None:
        return False
    if "/" in expected:
        return actual == expected
    return actual.split("/", 1)[0] == expected


# ---- helpers for the mobile-feature suites (XEP-0198/0280/0313/0191/0352) -----------------


async def wait_until(condition: Callable[[], object], what: str,
                     timeout: float = STEP_TIMEOUT) -> None:
    """Poll `condition` until it is truthy; fail after `timeout` seconds naming `what`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() >= deadline:
            raise AssertionError(f"no {what} within {timeout}s")
        await asyncio.sleep(0.05)


def body_of(el: ET.Element) -> str | None:
    return el.findtext(f"{{{NS_CLIENT}}}body")


async def login_with_plugins(new_client, user: str, plugins: list[str], **kwargs) -> Client:
    """new_client(user, **kwargs) with extra slixmpp plugins registered, then logged in."""
    c = new_client(user, **kwargs)
    for plugin in plugins:
        c.xmpp.register_plugin(plugin)
    return await c.login()
