#!/usr/bin/env python3
"""XEP-0363 upload throughput and server memory: one file (default 100 MB) PUT and GET over HTTPS on loopback.

Starts `drupe serve` ($DRUPE_BIN, default target/release/drupe) on a temp dir with the HTTPS listener, gets a slot
over XMPP (slixmpp), PUTs the file with aiohttp (streamed from disk) and GETs it back, while sampling the server's
RSS from /proc every 20 ms. Prints MB/s each way, the server's RSS before, its peak during the transfers, and
VmHWM. The client runs on the same 2 cores, so the numbers are a floor for the server.

Usage: .venv/bin/python bench/upload.py [size_mb]
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "interop"))
os.environ.setdefault("DRUPE_BIN", str(REPO / "target" / "release" / "drupe"))

import aiohttp  # noqa: E402

from drupe_server import DrupeServer  # noqa: E402
from xmpp_client import Client  # noqa: E402

NS_UPLOAD = "urn:xmpp:http:upload:0"


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def sample_rss(pid: int, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], rss_kib(pid))
        await asyncio.sleep(0.02)


async def main(size_mb: int) -> None:
    size = size_mb * 1024 * 1024
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        srv = DrupeServer(tmp / "server", {"http": {"listen_tls": "127.0.0.1:0"},
                                           "upload": {"max_file_bytes": size, "quota_bytes": 0, "daily_bytes": 0}})
        srv.add_user("bench", "bench-secret")
        srv.start()
        try:
            pid = srv.proc.pid
            data = tmp / "payload.bin"
            with open(data, "wb") as f:
                for _ in range(size_mb):
                    f.write(os.urandom(1024 * 1024))
            digest = hashlib.sha256(data.read_bytes()).hexdigest()
            c = Client(srv.jid("bench"), "bench-secret", srv.host, srv.c2s_port)
            await c.login()
            reply = await c.iq(f"<iq type='get' to='upload.localhost'><request xmlns='{NS_UPLOAD}' "
                               f"filename='payload.bin' size='{size}' content-type='application/octet-stream'/></iq>")
            slot = reply.find(f"{{{NS_UPLOAD}}}slot")
            assert slot is not None, reply
            put = slot.find(f"{{{NS_UPLOAD}}}put").get("url")
            get = slot.find(f"{{{NS_UPLOAD}}}get").get("url")
            await c.close()

            base = rss_kib(pid)
            peak = [base]
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample_rss(pid, peak, stop))
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session:
                t0 = time.perf_counter()
                with open(data, "rb") as f:
                    async with session.put(put, data=f, headers={"Content-Length": str(size),
                                                                 "Content-Type": "application/octet-stream"}) as r:
                        assert r.status == 201, r.status
                t_put = time.perf_counter() - t0
                put_peak = peak[0]
                h = hashlib.sha256()
                t0 = time.perf_counter()
                async with session.get(get) as r:
                    assert r.status == 200
                    async for chunk in r.content.iter_chunked(1 << 20):
                        h.update(chunk)
                t_get = time.perf_counter() - t0
            stop.set()
            await sampler
            assert h.hexdigest() == digest, "downloaded bytes differ"
            print(f"file: {size_mb} MiB over HTTPS on loopback ({os.environ['DRUPE_BIN']})")
            print(f"PUT: {size / t_put / 1e6:.1f} MB/s ({t_put:.2f} s)")
            print(f"GET: {size / t_get / 1e6:.1f} MB/s ({t_get:.2f} s)")
            print(f"server RSS: {base / 1024:.1f} MiB before, peak {put_peak / 1024:.1f} MiB during PUT, "
                  f"peak {peak[0] / 1024:.1f} MiB overall; VmHWM {rss_kib(pid, 'VmHWM') / 1024:.1f} MiB")
        finally:
            srv.stop_ok()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100))
