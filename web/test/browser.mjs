#!/usr/bin/env node
// Real-browser tests of the demo page: headless Debian Chromium (driven by playwright-core)
// publishes and watches test patterns through a relay over WebTransport.
//
//   RELAY=moqt (default)  `moqt relay` serves the page and relays; `moqt pub` / `moqt sub`
//                         are the native peers: (a) the page watches `moqt pub`,
//                         (b) `moqt sub` receives what the page publishes, and
//                         (c) both with @moq/net (lite-05) and @moq/lite (lite-04); and
//                         (a) once more with @moq/net offering only moq-lite-03.
//   RELAY=moq-relay       moq-dev's relay instead (no native peers): one page publishes,
//                         another watches, for every pair of libraries. The page is then
//                         served by a small static server here.
//
// Environment: MOQT_BIN (default target/release/moqt, else target/debug/moqt), CHROMIUM
// (default /usr/bin/chromium), MOQ_RELAY_BIN (default .ci/cache/peers/bin/moq-relay),
// FRAMES (frames to wait for per scenario, default 90), FPS (default 30), SIZE (default 1000).
// Installs nothing. Writes web/test-artifacts/: demo.png (screenshot), per-scenario
// screenshots, browser-console.log and the relay's log. Exits non-zero on any failure.

import { spawn } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import net from "node:net";
import dgram from "node:dgram";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const ROOT = path.resolve(WEB, "..");
const DIST = path.join(WEB, "dist");
const ARTIFACTS = path.join(WEB, "test-artifacts");

const RELAY = process.env.RELAY ?? "moqt";
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const FRAMES = Number(process.env.FRAMES ?? 90);
const FPS = Number(process.env.FPS ?? 30);
const SIZE = Number(process.env.SIZE ?? 1000);
const SCENARIO_TIMEOUT_MS = Number(process.env.SCENARIO_TIMEOUT_MS ?? 30000);
const LIBS = [
	{ lib: "net", name: "@moq/net", version: "moq-lite-05" },
	{ lib: "lite", name: "@moq/lite", version: "moq-lite-04" },
];
const CHROMIUM_FLAGS = [
	"--headless=new",
	"--no-sandbox",
	"--disable-gpu",
	"--no-first-run",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
];

const children = [];
const results = [];

function fail(message) {
	throw new Error(message);
}

function moqtBin() {
	if (process.env.MOQT_BIN) return path.resolve(process.env.MOQT_BIN);
	for (const profile of ["release", "debug"]) {
		const bin = path.join(ROOT, "target", profile, "moqt");
		if (existsSync(bin)) return bin;
	}
	fail("no moqt binary: build it (cargo build --release --bin moqt) or set MOQT_BIN");
}

/** A loopback port that is free for both TCP and UDP (the relay uses the same number for both). */
async function freePort() {
	for (let attempt = 0; attempt < 50; attempt++) {
		const tcp = net.createServer();
		await new Promise((resolve, reject) => tcp.once("error", reject).listen(0, "127.0.0.1", resolve));
		const port = tcp.address().port;
		const udp = dgram.createSocket("udp4");
		const ok = await new Promise((resolve) => {
			udp.once("error", () => resolve(false));
			udp.bind(port, "127.0.0.1", () => resolve(true));
		});
		udp.close();
		await new Promise((resolve) => tcp.close(resolve));
		if (ok) return port;
	}
	fail("no free loopback port");
}

/**
 * Start a child process, log its output to a file (and keep its lines), and resolve once
 * lines of its stderr or stdout match `ready` (or reject if it exits or times out first).
 */
function start(name, cmd, args, { ready, timeoutMs = 60000 } = {}) {
	const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { RUST_LOG: "info", ...process.env } });
	children.push(child);
	const logFile = createWriteStream(path.join(ARTIFACTS, `${name}.log`));
	logFile.write(`$ ${cmd} ${args.join(" ")}\n`);
	child.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
	let pending = "";
	const lines = [];
	let onLine = () => {};
	const feed = (chunk) => {
		logFile.write(chunk);
		pending += chunk.toString();
		let i;
		while ((i = pending.indexOf("\n")) >= 0) {
			const line = pending.slice(0, i);
			pending = pending.slice(i + 1);
			lines.push(line);
			onLine(line);
		}
	};
	child.stderr.on("data", feed);
	child.stdout.on("data", feed);
	child.lines = lines;
	if (!ready) return Promise.resolve(child);
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(`${name}: not ready after ${timeoutMs} ms (see ${name}.log)`)), timeoutMs);
		// `ready` is one pattern or a list of patterns, each of which must match some line.
		const waiting = [ready].flat();
		onLine = (line) => {
			const plain = line.replace(/\x1b\[[0-9;]*m/g, "");
			for (let i = waiting.length - 1; i >= 0; i--) if (waiting[i].test(plain)) waiting.splice(i, 1);
			if (waiting.length === 0) {
				clearTimeout(timer);
				onLine = () => {};
				resolve(child);
			}
		};
		child.exited.then(({ code, signal }) => {
			clearTimeout(timer);
			reject(new Error(`${name} exited (${code ?? signal}) before it was ready (see ${name}.log)`));
		});
	});
}

async function stop(child) {
	if (child.exitCode !== null || child.signalCode !== null) return;
	// SIGINT, like Ctrl-C: moqt then closes its session, so the relay unannounces at once
	// (on SIGTERM `moqt pub` exits without closing, and its broadcast lingers until the idle timeout).
	child.kill("SIGINT");
	const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
	await child.exited;
	clearTimeout(timer);
}

async function fetchText(url) {
	const response = await fetch(url);
	if (!response.ok) fail(`${url}: HTTP ${response.status}`);
	return (await response.text()).trim();
}

/** Serve web/dist on a loopback port (for RELAY=moq-relay, whose web listener does not serve it). */
async function serveDist() {
	const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".map": "application/json" };
	const server = createServer(async (req, res) => {
		const name = new URL(req.url, "http://x").pathname.replace(/\/$/, "/index.html");
		const file = path.join(DIST, path.normalize(name));
		if (!file.startsWith(DIST)) return res.writeHead(403).end();
		try {
			const body = await readFile(file);
			res.writeHead(200, { "content-type": types[path.extname(file)] ?? "application/octet-stream" }).end(body);
		} catch {
			res.writeHead(404).end();
		}
	});
	await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
	return server;
}

// ---- the relay under test ----

async function startMoqt() {
	const bin = moqtBin();
	const port = await freePort();
	const relay = await start("relay", bin, ["relay", "--listen", `127.0.0.1:${port}`, "--web-root", DIST], {
		ready: /listening on/,
	});
	const http = `http://127.0.0.1:${port}`;
	const fingerprint = await fetchText(`${http}/certificate.sha256`);
	return {
		name: "moqt relay",
		servesPage: true,
		children: [relay],
		bin,
		pageBase: `${http}/`,
		relayUrl: `https://127.0.0.1:${port}/`,
		certUrl: undefined, // the page's default: http://<relay host:port>/certificate.sha256
		fingerprint,
	};
}

async function startMoqRelay() {
	const bin = path.resolve(process.env.MOQ_RELAY_BIN ?? path.join(ROOT, ".ci/cache/peers/bin/moq-relay"));
	if (!existsSync(bin)) fail(`no moq-relay binary at ${bin}`);
	const port = await freePort();
	const webPort = await freePort();
	const relay = await start(
		"moq-relay",
		bin,
		[
			"--listen", `127.0.0.1:${port}`,
			"--listen-tls-generate", "localhost",
			"--web-http-listen", `127.0.0.1:${webPort}`,
			"--auth-public", "**",
			"--drain-timeout", "0s",
		],
		{ ready: [/listening addr=\S+ kind="quic"/, /listening addr=\S+ kind="http"/] },
	);
	const fingerprint = await fetchText(`http://127.0.0.1:${webPort}/certificate.sha256`);
	const server = await serveDist();
	return {
		name: "moq-relay",
		children: [relay],
		server,
		pageBase: `http://127.0.0.1:${server.address().port}/`,
		relayUrl: `https://127.0.0.1:${port}/`,
		certUrl: `http://127.0.0.1:${webPort}/certificate.sha256`,
		fingerprint,
	};
}

// ---- the browser ----

async function launchBrowser() {
	const profile = await mkdtemp(path.join(os.tmpdir(), "moqt-chromium-"));
	// headless: false + --headless=new in args, so the flags are exactly ours; the
	// persistent context gives the fresh --user-data-dir.
	const context = await chromium.launchPersistentContext(profile, {
		executablePath: CHROMIUM,
		headless: false,
		args: CHROMIUM_FLAGS,
		viewport: { width: 1000, height: 1100 },
	});
	const consoleLog = createWriteStream(path.join(ARTIFACTS, "browser-console.log"));
	context.on("page", (page) => watchConsole(page, consoleLog));
	for (const page of context.pages()) watchConsole(page, consoleLog);
	return { context, profile, consoleLog };
}

function watchConsole(page, out) {
	const tag = () => new URL(page.url() || "about:blank").search || page.url();
	page.on("console", (msg) => out.write(`[${tag()}] ${msg.type()}: ${msg.text()}\n`));
	page.on("pageerror", (err) => out.write(`[${tag()}] pageerror: ${err.message}\n`));
}

function pageUrl(env, query) {
	const url = new URL(env.pageBase);
	// Served by the relay itself, the page's defaults (relay = its own host:port) must do.
	if (!env.servesPage) url.searchParams.set("url", env.relayUrl);
	if (env.certUrl) url.searchParams.set("cert", env.certUrl);
	for (const [k, v] of Object.entries(query)) url.searchParams.set(k, String(v));
	return url.toString();
}

async function openPage(context, url) {
	const page = await context.newPage();
	await page.goto(url);
	return page;
}

const demoState = (page) => page.evaluate(() => JSON.parse(JSON.stringify(window.demo)));

/** Poll window.demo until `done(state)` holds; fail early on a connection error. */
async function waitFor(page, what, done, timeoutMs = SCENARIO_TIMEOUT_MS) {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const state = await demoState(page);
		if (done(state)) return state;
		if (state.error && !state.connected) fail(`${what}: page error: ${state.error}`);
		if (Date.now() > deadline) {
			fail(`${what}: timed out after ${timeoutMs} ms; page state: ${JSON.stringify({ ...state, log: state.log.slice(-8) })}`);
		}
		await page.waitForTimeout(200);
	}
}

function checkVersion(state, lib) {
	if (state.version !== lib.version) fail(`${lib.name} negotiated ${state.version}, expected ${lib.version}`);
}

// ---- native peers (moqt pub / moqt sub) ----

function startPub(env, broadcast, track) {
	return start(`pub-${broadcast}`, env.bin, [
		"pub", env.relayUrl, broadcast,
		"--track", track, "--fps", String(FPS), "--size", String(SIZE),
		"--tls-fingerprint", env.fingerprint,
	]);
}

/**
 * `moqt sub --stats`: it measures the test pattern itself and prints a line per second,
 * e.g. "sub: 93 frames, 30.4 frames/s, 243 kbit/s, 0 groups lost, latency ms p50 0.40 p99 0.57".
 */
async function startSub(env, broadcast, track) {
	const child = await start(`sub-${broadcast}`, env.bin, [
		"sub", env.relayUrl, broadcast, "--track", track, "--stats", "--tls-fingerprint", env.fingerprint,
	]);
	child.latest = () => {
		for (let i = child.lines.length - 1; i >= 0; i--) {
			const line = child.lines[i].replace(/\x1b\[[0-9;]*m/g, "");
			const frames = line.match(/(\d+) frames,/);
			if (!frames) continue;
			const num = (re) => Number(line.match(re)?.[1] ?? NaN);
			return {
				line: line.trim(),
				frames: Number(frames[1]),
				groupsLost: num(/(\d+) groups lost/),
				p50: num(/p50 ([\d.]+)/),
				p99: num(/p99 ([\d.]+)/),
			};
		}
		return undefined;
	};
	return child;
}

// ---- scenarios ----

async function scenario(name, body) {
	const started = Date.now();
	try {
		const detail = await body();
		results.push({ name, ok: true });
		console.log(`PASS ${name}: ${detail} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
	} catch (err) {
		results.push({ name, ok: false });
		console.log(`FAIL ${name}: ${err.message}`);
	}
}

const fmt = (v) => (v === undefined ? "–" : `${v.toFixed(1)}ms`);
const latencyText = (l, first) =>
	`latency p50=${fmt(l?.p50)} p99=${fmt(l?.p99)} max=${fmt(l?.max)}` + (first === undefined ? "" : ` first=${fmt(first)}`);

/** moqt relay: for each library, one page watches `moqt pub` and publishes for `moqt sub`. */
async function moqtScenarios(env, context) {
	for (const lib of LIBS) {
		const track = "pattern";
		const fromNative = `native-${lib.lib}`;
		const fromPage = `page-${lib.lib}`;
		const pub = await startPub(env, fromNative, track);
		const page = await openPage(context, pageUrl(env, { lib: lib.lib, track, publish: fromPage, fps: FPS, size: SIZE }));
		await scenario(`(a) moqt pub -> relay -> page [${lib.name}]`, async () => {
			// As a person would: wait for the broadcast in the list, press its "watch" button.
			await waitFor(page, "announcement", (s) => s.announced.includes(fromNative));
			await page.locator("#broadcasts li", { hasText: fromNative }).getByRole("button", { name: "watch" }).click();
			const s = await waitFor(page, "watch", (s) => s.latencyMs?.samples >= FRAMES);
			checkVersion(s, lib);
			return `version=${s.version} frames=${s.patternFrames} groups=${s.groups} lost=${s.lost} ${latencyText(s.latencyMs, s.firstLatencyMs)}`;
		});
		await scenario(`(b) page -> relay -> moqt sub [${lib.name}]`, async () => {
			const s = await waitFor(page, "publish", (s) => s.connected && s.published?.frames > 0);
			checkVersion(s, lib);
			const sub = await startSub(env, fromPage, track);
			try {
				const deadline = Date.now() + SCENARIO_TIMEOUT_MS;
				for (;;) {
					const stats = sub.latest();
					if (stats && stats.frames >= FRAMES) {
						if (!(stats.p50 < 1000)) fail(`implausible latency from moqt sub: ${stats.line}`);
						return `version=${s.version} frames=${stats.frames} groups_lost=${stats.groupsLost} latency p50=${stats.p50}ms p99=${stats.p99}ms (moqt sub --stats: "${stats.line}")`;
					}
					if (sub.exitCode !== null) fail(`moqt sub exited (${sub.exitCode}); last stats: ${stats?.line}`);
					if (Date.now() > deadline) fail(`moqt sub: ${stats?.line ?? "no stats"} after ${SCENARIO_TIMEOUT_MS} ms`);
					await new Promise((resolve) => setTimeout(resolve, 200));
				}
			} finally {
				await stop(sub);
			}
		});
		await page.screenshot({ path: path.join(ARTIFACTS, `demo-${lib.lib}.png`), fullPage: true });
		if (lib.lib === "net") await page.screenshot({ path: path.join(ARTIFACTS, "demo.png"), fullPage: true });
		await page.close();
		await stop(pub);
	}

	// The oldest WebTransport version too: @moq/net told to offer only moq-lite-03.
	const lite03 = { lib: "net", name: "@moq/net offering only moq-lite-03", version: "moq-lite-03" };
	const pub = await startPub(env, "native-03", "pattern");
	const page = await openPage(context, pageUrl(env, { lib: "net", alpn: "moq-lite-03", watch: "native-03", track: "pattern" }));
	await scenario(`(a) moqt pub -> relay -> page [${lite03.name}]`, async () => {
		const s = await waitFor(page, "watch", (s) => s.latencyMs?.samples >= FRAMES);
		checkVersion(s, lite03);
		return `version=${s.version} frames=${s.patternFrames} groups=${s.groups} lost=${s.lost} ${latencyText(s.latencyMs, s.firstLatencyMs)}`;
	});
	await page.close();
	await stop(pub);
}

/** moq-relay (no native peers): a page publishes and another page watches, every pair of libraries. */
async function pageToPageScenarios(env, context) {
	for (const publisher of LIBS) {
		for (const watcher of LIBS) {
			const track = "pattern";
			const broadcast = `page-${publisher.lib}-to-${watcher.lib}`;
			const pub = await openPage(context, pageUrl(env, { lib: publisher.lib, publish: broadcast, fps: FPS, size: SIZE }));
			const sub = await openPage(context, pageUrl(env, { lib: watcher.lib, watch: broadcast, track }));
			await scenario(`page [${publisher.name}] -> ${env.name} -> page [${watcher.name}]`, async () => {
				const p = await waitFor(pub, "publish", (s) => s.connected && s.published?.frames > 0);
				checkVersion(p, publisher);
				const s = await waitFor(sub, "watch", (s) => s.latencyMs?.samples >= FRAMES);
				checkVersion(s, watcher);
				return (
					`versions=${p.version}->${s.version} frames=${s.patternFrames} groups=${s.groups} lost=${s.lost} ` +
					latencyText(s.latencyMs, s.firstLatencyMs)
				);
			});
			const shot = `demo-${publisher.lib}-to-${watcher.lib}.png`;
			await sub.screenshot({ path: path.join(ARTIFACTS, shot), fullPage: true });
			if (publisher.lib === "net" && watcher.lib === "net") {
				await sub.screenshot({ path: path.join(ARTIFACTS, "demo.png"), fullPage: true });
			}
			await sub.close();
			await pub.close();
		}
	}
}

async function main() {
	if (!existsSync(path.join(DIST, "index.html"))) fail(`${DIST}/index.html missing: run npm run build in web/`);
	if (!existsSync(CHROMIUM)) fail(`no chromium at ${CHROMIUM} (apt-get install chromium)`);
	await rm(ARTIFACTS, { recursive: true, force: true });
	await mkdir(ARTIFACTS, { recursive: true });

	const env = RELAY === "moq-relay" ? await startMoqRelay() : await startMoqt();
	children.push(...env.children);
	console.log(`relay: ${env.name} at ${env.relayUrl}, page at ${env.pageBase}, certificate sha-256 ${env.fingerprint}`);
	const browser = await launchBrowser();
	try {
		if (RELAY === "moq-relay") await pageToPageScenarios(env, browser.context);
		else await moqtScenarios(env, browser.context);
	} finally {
		await browser.context.close();
		browser.consoleLog.end();
		await rm(browser.profile, { recursive: true, force: true });
		env.server?.close();
	}
}

let exitCode = 0;
try {
	await main();
} catch (err) {
	console.log(`FAIL setup: ${err.message}`);
	results.push({ name: "setup", ok: false });
} finally {
	for (const child of children) await stop(child);
	const passed = results.filter((r) => r.ok).length;
	const failed = results.length - passed;
	console.log(`browser: ${passed} passed, ${failed} failed`);
	if (failed > 0 || passed === 0) exitCode = 1;
}
process.exit(exitCode);
