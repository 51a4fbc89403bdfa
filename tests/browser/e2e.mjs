// End-to-end test of the web client drupe serves at `/`: Debian's chromium, driven by playwright-core, logs two
// users in through Converse.js and checks what a person would see.
//
// It starts the freshly built target/debug/drupe (or $DRUPE_BIN) on 127.0.0.1 port 0 with a temporary data dir,
// creates alice and bob with `drupe user add`, and then, in two browser contexts: the page loads and Converse boots
// to its login form, both log in over the RFC 7395 WebSocket, a 1:1 message reaches the other side, both join a
// room on conference.<domain> and exchange a groupchat message, alice uploads a PNG (XEP-0363) and bob sees it
// inline. Every request the pages make must go to drupe (no CDN). Screenshots and logs go to target/browser-e2e/.
//
// Usage: npm ci --prefix tests/browser && node tests/browser/e2e.mjs
// Each step has its own timeout and the whole run is bounded; drupe is killed at the end.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.resolve(ROOT, process.env.DRUPE_BIN || 'target/debug/drupe');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WEB_CLIENT_DIR = path.join(ROOT, 'web/node_modules/converse.js/dist');
const OUT = path.join(ROOT, 'target/browser-e2e');
const DOMAIN = 'localhost';
const MUC = `conference.${DOMAIN}`;
const ROOM = 'e2e-room';
const PASSWORD = 'correct horse battery staple';

const STEP_MS = 30_000;
const TOTAL_MS = 170_000;
const READY_MS = 20_000;

const results = [];
let drupe = null;
let browser = null;
const pages = {};
const requests = [];
const consoleLog = [];
const wsLog = [];

function log(line) {
    console.log(line);
}

function withTimeout(promise, ms, what) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms / 1000}s`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function screenshotAll(label) {
    for (const [who, page] of Object.entries(pages)) {
        await page
            .screenshot({ path: path.join(OUT, `${label}-${who}.png`), timeout: 5_000 })
            .catch(() => {});
    }
}

/** Runs one step; on failure records it and throws so later steps (which depend on it) don't run. */
async function step(name, fn, ms = STEP_MS) {
    const started = Date.now();
    try {
        await withTimeout(fn(), ms, name);
        results.push({ name, ok: true });
        log(`ok ${results.length} - ${name} (${Date.now() - started} ms)`);
    } catch (err) {
        results.push({ name, ok: false });
        log(`not ok ${results.length} - ${name}\n  ${String(err && err.stack ? err.stack : err).replace(/\n/g, '\n  ')}`);
        await screenshotAll(`failed-${results.length}`);
        throw err;
    }
}

// ---- drupe ------------------------------------------------------------------------------------------------------

function cleanEnv() {
    // The test owns the configuration: inherited DRUPE_* overrides would change it.
    return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DRUPE_')));
}

function writeConfig(dir) {
    const toml = `domain = "${DOMAIN}"
data_dir = ${JSON.stringify(path.join(dir, 'data'))}

[c2s]
listen = "127.0.0.1:0"
listen_tls = ""

[http]
listen_tls = "127.0.0.1:0"
web_client_dir = ${JSON.stringify(WEB_CLIENT_DIR)}

[server]
create_admin = false
`;
    const file = path.join(dir, 'drupe.toml');
    fs.writeFileSync(file, toml);
    return file;
}

function addUser(config, name) {
    const res = spawnSync(BIN, ['--config', config, 'user', 'add', name], {
        input: `${PASSWORD}\n`,
        env: cleanEnv(),
        timeout: 30_000,
        encoding: 'utf8',
    });
    if (res.status !== 0) {
        throw new Error(`drupe user add ${name} exited ${res.status}: ${res.stderr}${res.stdout}`);
    }
}

/** Starts `drupe serve` and resolves with the HTTPS address from its ready line. */
function startDrupe(config, dir) {
    const stderr = fs.openSync(path.join(OUT, 'drupe.stderr.log'), 'w');
    drupe = spawn(BIN, ['--config', config, 'serve'], {
        cwd: dir,
        env: { ...cleanEnv(), DRUPE_LOG: process.env.E2E_DRUPE_LOG || 'info' },
        stdio: ['ignore', 'pipe', stderr],
    });
    return new Promise((resolve, reject) => {
        let buffered = '';
        drupe.stdout.setEncoding('utf8');
        drupe.stdout.on('data', (chunk) => {
            buffered += chunk;
            for (let i; (i = buffered.indexOf('\n')) >= 0; ) {
                const line = buffered.slice(0, i).trim();
                buffered = buffered.slice(i + 1);
                if (!line.startsWith('drupe ready')) continue;
                const https = /\bhttps=(\S+)/.exec(line);
                if (!https) reject(new Error(`no https=ADDR in the ready line: ${line}`));
                else resolve(https[1]);
            }
        });
        drupe.on('exit', (code, signal) => reject(new Error(`drupe exited early (${code ?? signal}); see drupe.stderr.log`)));
        setTimeout(() => reject(new Error(`no ready line within ${READY_MS / 1000}s`)), READY_MS);
    });
}

function running() {
    return drupe && drupe.exitCode === null && drupe.signalCode === null;
}

/** SIGTERM (drupe drains its sessions), SIGKILL if it is still there after 5 s. */
async function stopDrupe() {
    if (!running()) return;
    const exited = new Promise((resolve) => drupe.once('exit', resolve));
    drupe.kill('SIGTERM');
    await withTimeout(exited, 5_000, 'drupe stopping').catch(() => drupe.kill('SIGKILL'));
}

// ---- a PNG made here ---------------------------------------------------------------------------------------------

function crc32(buf) {
    let crc = ~0;
    for (const byte of buf) {
        crc ^= byte;
        for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
    }
    return ~crc >>> 0;
}

function pngChunk(type, data) {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'ascii');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
    return Buffer.concat([head, data, crc]);
}

/** A width x height RGB PNG with a gradient, so a broken decode would not pass as an image. */
function makePng(width, height) {
    const raw = Buffer.alloc((width * 3 + 1) * height);
    for (let y = 0; y < height; y++) {
        const row = y * (width * 3 + 1);
        raw[row] = 0; // filter: none
        for (let x = 0; x < width; x++) {
            raw[row + 1 + x * 3] = (x * 255) / width;
            raw[row + 2 + x * 3] = (y * 255) / height;
            raw[row + 3 + x * 3] = 160;
        }
    }
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr[8] = 8; // bit depth
    ihdr[9] = 2; // colour type: RGB
    return Buffer.concat([
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        pngChunk('IHDR', ihdr),
        pngChunk('IDAT', zlib.deflateSync(raw)),
        pngChunk('IEND', Buffer.alloc(0)),
    ]);
}

// ---- Converse, as a person uses it ------------------------------------------------------------------------------

async function openPage(who, base, locale) {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 }, locale });
    const page = await context.newPage();
    // Below the step timeout, so playwright's own message (what it waited for) is the one reported.
    page.setDefaultTimeout(STEP_MS - 5_000);
    page.on('request', (r) => requests.push({ who, url: r.url() }));
    page.on('console', (m) => consoleLog.push(`[${who}] ${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => consoleLog.push(`[${who}] pageerror: ${e.message}`));
    page.on('websocket', (ws) => {
        wsLog.push(`[${who}] open ${ws.url()}`);
        requests.push({ who, url: ws.url() });
        ws.on('framesent', (f) => wsLog.push(`[${who}] >> ${f.payload}`));
        ws.on('framereceived', (f) => wsLog.push(`[${who}] << ${f.payload}`));
        ws.on('close', () => wsLog.push(`[${who}] close`));
    });
    pages[who] = page;
    await page.goto(`${base}/`);
    await page.locator('#converse-login-jid').waitFor();
    return page;
}

async function logIn(page, user) {
    await page.fill('#converse-login-jid', user);
    await page.fill('#converse-login-password', PASSWORD);
    await page.click('#converse-login button[type=submit]');
    // The control box shows the roster once the session is bound and the roster fetched.
    await page.locator('converse-roster').waitFor();
}

/** Opens a converse-dropdown menu (the ≡ buttons of the control box) and picks an item. */
async function menu(page, dropdown, item) {
    await page.locator(`${dropdown} button.dropdown-toggle`).first().click();
    await page.locator(`${dropdown} ${item}`).first().click();
}

/** The chat view (converse-chat or converse-muc) for `jid`, once its message box is ready. */
async function chatView(page, tag, jid) {
    const view = page.locator(`${tag}[jid="${jid}"]`);
    await view.locator('.chat-textarea').waitFor();
    return view;
}

async function say(view, text) {
    const box = view.locator('.chat-textarea');
    await box.fill(text);
    await box.press('Enter');
}

async function expectText(view, text) {
    await view.locator('.chat-msg__text', { hasText: text }).first().waitFor();
}

async function startChat(page, jid) {
    await menu(page, 'converse-dropdown.dropdown--contacts', 'a.new-chat');
    const modal = page.locator('converse-new-chat-modal');
    await modal.locator('input[name=jid]').fill(jid);
    await modal.locator('button[type=submit]').click();
    return chatView(page, 'converse-chat', jid);
}

/** Joins `room` by its name only: Converse finds the group chat service through disco. */
async function joinRoom(page, room) {
    await menu(page, 'converse-rooms-list converse-dropdown', 'a.show-add-muc-modal');
    const modal = page.locator('converse-add-muc-modal');
    await modal.locator('input[name=chatroom]').fill(room);
    await modal.locator('input[type=submit][name=join]').click();
    return chatView(page, 'converse-muc', `${room}@${MUC}`);
}

async function main() {
    fs.mkdirSync(OUT, { recursive: true });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drupe-browser-e2e-'));
    let base = null;

    try {
        await step('drupe starts with an HTTPS listener; alice and bob exist', async () => {
            if (!fs.existsSync(BIN)) throw new Error(`${BIN} not built: cargo build -p drupe-server`);
            if (!fs.existsSync(path.join(WEB_CLIENT_DIR, 'converse.min.js'))) {
                throw new Error(`${WEB_CLIENT_DIR} is empty: bash scripts/web-setup`);
            }
            const config = writeConfig(dir);
            addUser(config, 'alice');
            addUser(config, 'bob');
            const addr = await startDrupe(config, dir);
            // As a user would: the domain's name (which is also what upload URLs carry), on the HTTPS port.
            base = `https://${DOMAIN}:${addr.slice(addr.lastIndexOf(':') + 1)}`;
        });

        await step('chromium starts', async () => {
            browser = await chromium.launch({
                executablePath: CHROMIUM,
                headless: true,
                args: ['--no-sandbox', '--ignore-certificate-errors'],
            });
        });

        let alice, bob;
        await step('the page loads and Converse boots to its login form', async () => {
            alice = await openPage('alice', base, 'en-US');
            // Bob's browser speaks German: Converse loads that translation as a separate chunk, from drupe too.
            bob = await openPage('bob', base, 'de-DE');
            const domainAddon = await alice.locator('#converse-login').textContent();
            if (!domainAddon.includes(`@${DOMAIN}`)) throw new Error(`login form does not show @${DOMAIN}`);
            await screenshotAll('01-login-form');
        });

        await step('the client is served compressed and cacheable', async () => {
            // Measured on a fresh context: what a first visit costs over the wire.
            const context = await browser.newContext({ ignoreHTTPSErrors: true });
            const page = await context.newPage();
            const responses = [];
            page.on('request', (r) => requests.push({ who: 'first-visit', url: r.url() }));
            page.on('response', (r) => responses.push(r));
            await page.goto(`${base}/`);
            await page.locator('#converse-login-jid').waitFor();
            let wire = 0;
            for (const r of responses) wire += (await r.request().sizes()).responseBodySize;
            const script = responses.find((r) => r.url().endsWith('/converse.min.js'));
            if (!script) throw new Error('converse.min.js was not loaded');
            const headers = await script.allHeaders();
            if (!/immutable/.test(headers['cache-control'] || '')) throw new Error(`cache-control: ${headers['cache-control']}`);
            if (fs.existsSync(path.join(WEB_CLIENT_DIR, 'converse.min.js.gz')) && headers['content-encoding'] !== 'gzip') {
                throw new Error(`converse.min.js not sent gzipped: ${JSON.stringify(headers)}`);
            }
            log(`  first visit: ${responses.length} responses, ${Math.round(wire / 1024)} KiB over the wire`);
            await context.close();
        });

        await step('alice and bob log in over the WebSocket', async () => {
            await Promise.all([logIn(alice, 'alice'), logIn(bob, 'bob')]);
            await screenshotAll('02-logged-in');
        });

        await step('alice and bob exchange 1:1 messages', async () => {
            const [toBob, toAlice] = await Promise.all([startChat(alice, `bob@${DOMAIN}`), startChat(bob, `alice@${DOMAIN}`)]);
            await say(toBob, 'Hello Bob, this is Alice in a browser');
            await expectText(toAlice, 'Hello Bob, this is Alice in a browser');
            await say(toAlice, 'Hi Alice, Bob here');
            await expectText(toBob, 'Hi Alice, Bob here');
            await screenshotAll('03-chat');
        });

        let aliceRoom, bobRoom;
        await step(`alice and bob join ${ROOM}@${MUC} and talk there`, async () => {
            aliceRoom = await joinRoom(alice, ROOM);
            bobRoom = await joinRoom(bob, ROOM);
            // Both are occupants before anyone speaks, so the message arrives live, not as history.
            await aliceRoom.locator('converse-muc-occupant, .occupant-list li', { hasText: 'bob' }).first().waitFor();
            await say(aliceRoom, 'Welcome to the room, Bob');
            await expectText(bobRoom, 'Welcome to the room, Bob');
            await say(bobRoom, 'Glad to be here');
            await expectText(aliceRoom, 'Glad to be here');
            await screenshotAll('04-room');
        });

        await step('alice uploads a PNG to the room and bob sees it inline', async () => {
            const png = makePng(96, 64);
            await aliceRoom.locator('input.fileupload').setInputFiles({ name: 'drupe-e2e.png', mimeType: 'image/png', buffer: png });
            const img = bobRoom.locator(`img[src^="${base}/upload/"]`).first();
            await img.waitFor();
            await bob.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle());
            const size = await img.evaluate((el) => [el.naturalWidth, el.naturalHeight]);
            if (size[0] !== 96 || size[1] !== 64) throw new Error(`bob's image is ${size[0]}x${size[1]}, not 96x64`);
            await screenshotAll('05-upload');
        });
    } finally {
        if (browser) await browser.close().catch(() => {});
        await stopDrupe();
        fs.writeFileSync(path.join(OUT, 'console.log'), consoleLog.join('\n') + '\n');
        fs.writeFileSync(path.join(OUT, 'websocket.log'), wsLog.join('\n') + '\n');
        fs.writeFileSync(path.join(OUT, 'network.log'), requests.map((r) => `[${r.who}] ${r.url}`).join('\n') + '\n');
        fs.rmSync(dir, { recursive: true, force: true });
    }

    // Nothing may come from elsewhere: every request is to drupe (or a data:/blob: URL made by the page).
    if (base) {
        await step('every request went to drupe (no external fetches)', async () => {
            const wss = base.replace(/^https:/, 'wss:');
            const ours = (url) => url.startsWith(`${base}/`) || url === `${wss}/xmpp-websocket` || /^(data|blob):/.test(url);
            const foreign = requests.filter((r) => !ours(r.url));
            if (foreign.length) throw new Error(`requests elsewhere:\n${foreign.map((r) => r.url).join('\n')}`);
            if (!requests.some((r) => r.url === `${wss}/xmpp-websocket`)) throw new Error('no WebSocket to drupe seen');
        });
    }
}

const overall = setTimeout(() => {
    log(`not ok - the whole test took more than ${TOTAL_MS / 1000}s`);
    if (running()) drupe.kill('SIGKILL');
    process.exit(1);
}, TOTAL_MS);

main()
    .catch((err) => {
        // Step failures are already reported; anything else (cleanup, a bug here) must not pass silently.
        if (!results.some((r) => !r.ok)) {
            results.push({ name: 'harness', ok: false });
            log(`not ok - ${err && err.stack ? err.stack : err}`);
        }
    })
    .finally(() => {
        clearTimeout(overall);
        const passed = results.filter((r) => r.ok).length;
        const failed = results.length - passed;
        log(`screenshots and logs: ${path.relative(ROOT, OUT)}/`);
        log(`${passed} passed, ${failed} failed`);
        process.exit(failed === 0 && passed > 0 ? 0 : 1);
    });
