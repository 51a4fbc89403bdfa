"""Server memory per open XMPP stream: direct TLS (XEP-0368) against RFC 7395 WebSocket (wss), one server.

Starts the given drupe binary (`serve`) on free ports, opens N streams of each kind up to their features (unauthenticated, so this
is the transport's cost: socket buffers, TLS, HTTP/WebSocket state, the parser), and prints the growth of the
server's VmRSS per stream. Usage: .venv/bin/python bench/websocket-memory.py target/release/drupe 1000
(raise `ulimit -n` above 2 N first).
"""
import asyncio, os, re, shutil, ssl, subprocess, sys, tempfile

import aiohttp

BIN = sys.argv[1]; N = int(sys.argv[2])
d = tempfile.mkdtemp()
env = dict(os.environ, DRUPE_DATA_DIR=d, DRUPE_C2S_LISTEN="127.0.0.1:0", DRUPE_C2S_LISTEN_TLS="127.0.0.1:0",
           DRUPE_HTTP_LISTEN_TLS="127.0.0.1:0", DRUPE_SERVER_CREATE_ADMIN="false", DRUPE_LOG="warn",
           DRUPE_C2S_AUTH_TIMEOUT_SECS="120")
p = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.PIPE, text=True)
line = ""
while "drupe ready" not in line:
    line = p.stdout.readline()
m = re.search(r"c2s_tls=\S+:(\d+) https=\S+:(\d+)", line); tls_port, https_port = int(m[1]), int(m[2])
def rss():
    return int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{p.pid}/status").read())[1])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
HDR = b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
async def tcp_one(keep):
    r, w = await asyncio.open_connection("127.0.0.1", tls_port, ssl=ctx, server_hostname="localhost")
    w.write(HDR); await w.drain()
    data = b""
    while b"</stream:features>" not in data:
        data += await r.read(4096)
    keep.append((r, w))
async def ws_one(session, keep):
    ws = await session.ws_connect(f"wss://localhost:{https_port}/xmpp-websocket", protocols=("xmpp",), ssl=False)
    await ws.send_str("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>")
    await ws.receive(); await ws.receive()
    keep.append(ws)
async def main():
    await asyncio.sleep(0.5)
    base = rss(); keep = []
    for i in range(0, N, 50):
        await asyncio.gather(*(tcp_one(keep) for _ in range(50)))
    await asyncio.sleep(1); t = rss()
    print(f"tcp(direct TLS): {N} open streams: +{t-base} KiB = {(t-base)/N:.1f} KiB each")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ssl=False)) as s:
        keep2 = []
        for i in range(0, N, 50):
            await asyncio.gather(*(ws_one(s, keep2) for _ in range(50)))
        await asyncio.sleep(1); w = rss()
        print(f"websocket (wss): {N} open streams: +{w-t} KiB = {(w-t)/N:.1f} KiB each")
        for ws in keep2: await ws.close()
    for r, wr in keep: wr.close()
asyncio.run(main())
p.terminate(); p.wait()
shutil.rmtree(d, ignore_errors=True)
