"""XEP-0363 HTTP File Upload with slixmpp's xep_0363 plugin: it finds the service by disco, reads the
max-file-size form, requests a slot and PUTs the file with aiohttp; the file is then fetched back over HTTPS.

aiohttp verifies certificates and the server's is self-signed: the plugin's ClientSession is given a
connector that does not verify (only for these tests, against 127.0.0.1)."""

from __future__ import annotations

import os
import re

import aiohttp
import pytest
import slixmpp.plugins.xep_0363.http_upload as http_upload
from slixmpp.exceptions import IqError

from xmpp_client import login_with_plugins

NS_UPLOAD = "urn:xmpp:http:upload:0"
HTTPS = {"http": {"listen_tls": "127.0.0.1:0"}}


class _UnverifiedSession(aiohttp.ClientSession):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("connector", aiohttp.TCPConnector(ssl=False))
        super().__init__(*args, **kwargs)


@pytest.fixture(autouse=True)
def trust_the_test_certificate(monkeypatch):
    monkeypatch.setattr(http_upload, "ClientSession", _UnverifiedSession)


def https_port(srv) -> int:
    port = getattr(srv, "https_port", None)
    if port:
        return int(port)
    for line in srv.stdout_lines:
        m = re.search(r"https=\S*?:(\d+)", line)
        if m:
            return int(m.group(1))
    raise AssertionError("the server reported no HTTPS port")


async def fetch(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    async with _UnverifiedSession() as session:
        async with session.get(url, headers=headers or {}) as r:
            return r.status, dict(r.headers), await r.read()


async def uploader(make_server, new_client, overrides: dict | None = None):
    srv = make_server({**HTTPS, **(overrides or {})})
    c = await login_with_plugins(new_client, "alice", ["xep_0363"], srv=srv)
    return srv, c


async def test_a_file_uploaded_by_slixmpp_comes_back_intact(make_server, new_client, tmp_path):
    srv, alice = await uploader(make_server, new_client)
    data = os.urandom(256 * 1024)
    path = tmp_path / "holiday photo.png"
    path.write_bytes(data)
    url = await alice.xmpp.plugin["xep_0363"].upload_file(path, content_type="image/png", timeout=10)
    assert url.startswith(f"https://localhost:{https_port(srv)}/upload/"), url
    assert url.endswith("/holiday%20photo.png"), url
    assert str(alice.xmpp.plugin["xep_0363"].upload_service) == "upload.localhost"

    status, headers, body = await fetch(url)
    assert status == 200
    assert body == data
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Length"] == str(len(data))
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Content-Disposition"].startswith("inline")

    status, headers, body = await fetch(url, {"Range": "bytes=0-9"})
    assert (status, body) == (206, data[:10])
    assert headers["Content-Range"] == f"bytes 0-9/{len(data)}"


async def test_the_advertised_maximum_is_enforced(make_server, new_client, tmp_path):
    _, alice = await uploader(make_server, new_client, {"upload": {"max_file_bytes": 1000}})
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(1001))
    # slixmpp read max-file-size from the service's disco#info form and refuses on its own ...
    with pytest.raises(http_upload.FileTooBig):
        await alice.xmpp.plugin["xep_0363"].upload_file(path, timeout=10)
    assert alice.xmpp.plugin["xep_0363"].max_file_size == 1000
    # ... and the server refuses a slot request that ignores it, naming the maximum.
    reply = await alice.iq(
        f"<iq type='get' to='upload.localhost'><request xmlns='{NS_UPLOAD}' filename='big.bin' "
        "size='1001' content-type='application/octet-stream'/></iq>"
    )
    assert reply.get("type") == "error"
    error = reply.find("{jabber:client}error")
    assert error.find("{urn:ietf:params:xml:ns:xmpp-stanzas}not-acceptable") is not None
    assert error.findtext(f"{{{NS_UPLOAD}}}file-too-large/{{{NS_UPLOAD}}}max-file-size") == "1000"


async def test_the_quota_refuses_with_resource_constraint(make_server, new_client, tmp_path):
    _, alice = await uploader(make_server, new_client, {"upload": {"quota_bytes": 1500}})
    path = tmp_path / "a.bin"
    path.write_bytes(os.urandom(1000))
    await alice.xmpp.plugin["xep_0363"].upload_file(path, timeout=10)
    with pytest.raises(IqError) as refused:
        await alice.xmpp.plugin["xep_0363"].upload_file(path, timeout=10)
    assert refused.value.condition == "resource-constraint"
    assert "Quota" in refused.value.text


async def test_a_put_url_that_was_altered_is_forbidden(make_server, new_client):
    srv, alice = await uploader(make_server, new_client)
    slot = await alice.xmpp.plugin["xep_0363"].request_slot(
        alice.xmpp.plugin["xep_0363"].upload_service or "upload.localhost", "x.txt", 5, "text/plain"
    )
    put = slot["http_upload_slot"]["put"]["url"]
    assert "?e=" in put and "&s=" in put
    altered = re.sub(r"e=(\d+)", lambda m: f"e={int(m.group(1)) + 1}", put)
    async with _UnverifiedSession() as session:
        async with session.put(altered, data=b"hello", headers={"Content-Type": "text/plain"}) as r:
            assert r.status == 403
        async with session.put(put, data=b"hello", headers={"Content-Type": "text/plain"}) as r:
            assert r.status == 201
    status, _, body = await fetch(slot["http_upload_slot"]["get"]["url"])
    assert (status, body) == (200, b"hello")
