"""Raw XMPP over a socket, for what a well-behaved client library will not send.

Blocking sockets with a timeout on every read: STARTTLS, SASL PLAIN, bind, and reading
until a pattern appears or the server closes the connection.
"""

from __future__ import annotations

import base64
import re
import socket
import ssl
import time

NS_STREAMS = "http://etherx.jabber.org/streams"
NS_CLIENT = "jabber:client"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams"

DEFAULT_TIMEOUT = 5.0


class ReadTimeout(AssertionError):
    """The expected bytes did not arrive in time; the message holds what did."""


class PeerClosed(AssertionError):
    """The server closed the connection before the expected bytes arrived."""


def stream_header(to: str = "localhost", xmlns: str = NS_CLIENT,
                  stream_ns: str = NS_STREAMS, xml_decl: bool = True) -> str:
    decl = "<?xml version='1.0'?>" if xml_decl else ""
    return (
        f"{decl}<stream:stream to='{to}' version='1.0' xml:lang='en' "
        f"xmlns='{xmlns}' xmlns:stream='{stream_ns}'>"
    )


def tls_context() -> ssl.SSLContext:
    # The server's certificate is self-signed: no verification.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class RawStream:
    def __init__(self, host: str, port: int, *, direct_tls: bool = False,
                 server_name: str = "localhost", timeout: float = DEFAULT_TIMEOUT):
        self.server_name = server_name
        self.timeout = timeout
        self.sock: socket.socket = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.closed_by_peer = False
        self.transcript: list[str] = []  # what was sent and received, for failure messages
        if direct_tls:
            self._wrap_tls()

    # ---- bytes ---------------------------------------------------------------------------

    def send(self, data: str | bytes) -> None:
        raw = data.encode() if isinstance(data, str) else data
        self.transcript.append("C: " + raw[:2000].decode(errors="replace"))
        self.sock.sendall(raw)

    def _recv(self, deadline: float) -> bool:
        """Receive once into the buffer; False on EOF."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            chunk = b""
        except ssl.SSLError as e:
            # A peer that resets mid-TLS record: the connection is gone all the same.
            self.transcript.append(f"S: <TLS error {e}>")
            chunk = b""
        if not chunk:
            self.closed_by_peer = True
            return False
        self.transcript.append("S: " + chunk[:2000].decode(errors="replace"))
        self.buf += chunk
        return True

    def read_until(self, pattern: str, timeout: float | None = None) -> str:
        """Consume and return the input up to the end of the first match of regex `pattern`."""
        rx = re.compile(pattern.encode(), re.S)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            m = rx.search(self.buf)
            if m:
                out, self.buf = self.buf[: m.end()], self.buf[m.end():]
                return out.decode(errors="replace")
            if self.closed_by_peer:
                raise PeerClosed(f"connection closed before /{pattern}/ arrived\n{self.dump()}")
            try:
                self._recv(deadline)
            except (socket.timeout, TimeoutError):
                raise ReadTimeout(f"no /{pattern}/ within the timeout\n{self.dump()}") from None

    def read_until_closed(self, timeout: float | None = None) -> str:
        """Consume and return everything until the server closes the connection."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.closed_by_peer:
            try:
                self._recv(deadline)
            except (socket.timeout, TimeoutError):
                raise ReadTimeout(f"server did not close the connection\n{self.dump()}") from None
        out, self.buf = self.buf, b""
        return out.decode(errors="replace")

    def dump(self) -> str:
        return "transcript:\n  " + "\n  ".join(self.transcript[-40:]) + (
            f"\nunconsumed: {self.buf[:2000]!r}"
        )

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> RawStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- stream negotiation --------------------------------------------------------------

    def open_stream(self, header: str | None = None) -> str:
        """Send a stream header; return the server's <stream:features/> element."""
        self.send(header or stream_header(self.server_name))
        self.read_until(r"<(?:stream:)?stream[^>]*>")
        return self.read_until(r"</(?:stream:)?features>|<(?:stream:)?features[^>]*/>")

    def _wrap_tls(self) -> None:
        assert not self.buf, f"unread plaintext before TLS: {self.buf!r}"
        self.sock = tls_context().wrap_socket(self.sock, server_hostname=self.server_name)
        self.transcript.append(f"-- TLS established: {self.sock.version()}")

    def starttls(self) -> str:
        """Open a stream, negotiate STARTTLS, open the stream again; return the new features."""
        features = self.open_stream()
        assert "<starttls" in features, f"no STARTTLS offered: {features}"
        self.send(f"<starttls xmlns='{NS_TLS}'/>")
        reply = self.read_until(r"<proceed[^>]*/>|<failure[^>]*(?:/>|</failure>)")
        assert "<proceed" in reply, f"STARTTLS refused: {reply}"
        self._wrap_tls()
        return self.open_stream()

    def auth_plain(self, authcid: str, password: str, authzid: str = "") -> str:
        """Send SASL PLAIN; return the <success/> or <failure/> element."""
        token = base64.b64encode(f"{authzid}\0{authcid}\0{password}".encode()).decode()
        self.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>")
        return self.read_until(
            r"<success[^>]*/>|<success[^>]*>.*?</success>|<failure[^>]*/>|<failure[^>]*>.*?</failure>",
            timeout=self.timeout + 5,  # the server delays failures
        )

    def bind(self, resource: str = "raw") -> str:
        """Bind a resource; return the full JID the server assigned."""
        self.send(
            f"<iq type='set' id='bind1'><bind xmlns='{NS_BIND}'>"
            f"<resource>{resource}</resource></bind></iq>"
        )
        reply = self.read_until(r"<iq[^>]*>.*?</iq>|<iq[^>]*/>")
        m = re.search(r"<jid>([^<]+)</jid>", reply)
        assert m and "type='result'" in reply.replace('"', "'"), f"bind failed: {reply}"
        return m.group(1)

    def login(self, username: str, password: str, resource: str = "raw") -> str:
        """STARTTLS, PLAIN, stream restart, bind, initial presence; return the full JID."""
        self.starttls()
        result = self.auth_plain(username, password)
        assert "<success" in result, f"login as {username} failed: {result}"
        features = self.open_stream()
        assert "<bind" in features, f"no bind offered after auth: {features}"
        jid = self.bind(resource)
        self.send("<presence/>")
        # Stanzas of one session are handled in order: after this answer the presence counts.
        self.send("<iq type='get' id='login-ping'><ping xmlns='urn:xmpp:ping'/></iq>")
        self.read_until(r"<iq[^>]*id=['\"]login-ping['\"]")
        return jid

    # ---- assertions ----------------------------------------------------------------------

    def expect_stream_error(self, condition: str, timeout: float | None = None) -> str:
        """Expect <stream:error><CONDITION/></stream:error>, then the server closing the
        connection; returns the error element."""
        error = self.read_until(
            r"<stream:error[\s>].*?</stream:error>|<stream:error[^>]*/>"
            r"|<error\s+xmlns=['\"]" + re.escape(NS_STREAMS) + r"['\"].*?</error>",
            timeout,
        )
        m = re.search(r"<([\w:-]+)\s+xmlns=['\"]" + re.escape(NS_STREAM_ERRORS), error)
        got = m.group(1) if m else None
        assert got == condition, (
            f"expected stream error <{condition}/>, got {got and '<' + got + '/>'}: {error}\n{self.dump()}"
        )
        # RFC 6120 4.9.1.1: the stream error is followed by the closing tag, then the close.
        rest = self.read_until_closed(timeout).strip()
        assert rest == "</stream:stream>", (
            f"after the stream error expected </stream:stream> and a close, got {rest!r}"
        )
        return error
