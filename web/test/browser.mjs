#!/usr/bin/env node
// Real-browser tests of the demo page: headless Debian Chromium (driven by playwright-core)
// publishes and watches through a relay over WebTransport.
//
//   RELAY=moqt (default)  `moqt relay` serves the page and relays; `moqt pub` / `moqt sub`
//                         are the native peers: (a) the page watches `moqt pub` (and charts its
//                         latency and frame rate), (b) `moqt sub` receives what the page
//                         publishes, both with @moq/net (lite-05) and @moq/lite (lite-04); (a) once
//                         more with @moq/net offering only moq-lite-03; (c) a page opened as
//                         http://localhost:PORT/ finds a relay bound to 127.0.0.1 only; (d) failed
//                         connections are explained; (e) <moq-publish> sends Chromium's fake camera
//                         through the relay and <moq-watch> decodes it; (f) <moq-watch> decodes
//                         `moqt pub --media` (an ffmpeg test pattern; legacy and CMAF containers,
//                         hang and MSF catalogs) and the glass-to-glass latency is printed as
//                         `MEDIA LATENCY: …`; (g) `moqt sub --media` records the page's camera into
//                         an MP4 that ffprobe accepts (see media.mjs; needs ffmpeg); (h) with
//                         WebTransport hidden from the page, (a) and (b) with @moq/net over
//                         WebSocket (QMux) on the relay's TCP port, and (e) with <moq-watch> over
//                         WebSocket (with it available, (a) checks that WebTransport still wins
//                         the race).
//   RELAY=moq-relay       moq-dev's relay instead (no native peers): one page publishes,
//                         another watches, for every pair of libraries. The page is then
//                         served by a small static server here.
//
// Environment: MOQT_BIN (default target/release/moqt, else target/debug/moqt), CHROMIUM
// (default /usr/bin/chromium), MOQ_RELAY_BIN (default .ci/cache/peers/bin/moq-relay),
// FRAMES (frames to wait for per scenario, default 90), FPS (default 30), SIZE (default 1000),
// VIDEO_FRAMES (decoded camera frames to wait for, default 60), ONLY=media (only (f) and (g)),
// ONLY=websocket (only (h)).
// Installs nothing. Writes web/test-artifacts/: demo.png (the main screenshot, with the chart),
// video.png (the decoded camera), media-*.png (the CLI's broadcasts playing), media-source.mp4 and
// camera-recording.mp4, per-scenario screenshots, browser-console.log and the processes' logs.
// Exits non-zero on any failure.

import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import path from "node:path";
import {
	ARTIFACTS,
	DIST,
	ROOT,
	fail,
	fetchText,
	freePort,
	launchBrowser,
	moqtBin,
	openPage,
	start,
	stop,
	stopAll,
	waitFor,
} from "./harness.mjs";
import { mediaScenarios } from "./media.mjs";

const RELAY = process.env.RELAY ?? "moqt";
const FRAMES = Number(process.env.FRAMES ?? 90);
const FPS = Number(process.env.FPS ?? 30);
const SIZE = Number(process.env.SIZE ?? 1000);
const VIDEO_FRAMES = Number(process.env.VIDEO_FRAMES ?? 60);
const SCENARIO_TIMEOUT_MS = Number(process.env.SCENARIO_TIMEOUT_MS ?? 30000);
const LIBS = [
	{ lib: "net", name: "@moq/net", version: "moq-lite-05" },
	{ lib: "lite", name: "@moq/lite", version: "moq-lite-04" },
];

const results = [];
let mediaSummary = [];

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
				server,
		pageBase: `http://127.0.0.1:${server.address().port}/`,
		relayUrl: `https://127.0.0.1:${port}/`,
		certUrl: `http://127.0.0.1:${webPort}/certificate.sha256`,
		fingerprint,
	};
}

// ---- the browser ----

function pageUrl(env, query) {
	const url = new URL(env.pageBase);
	// Served by the relay itself, the page's defaults (relay = its own host:port) must do.
	if (!env.servesPage) url.searchParams.set("url", env.relayUrl);
	if (env.certUrl) url.searchParams.set("cert", env.certUrl);
	for (const [k, v] of Object.entries(query)) url.searchParams.set(k, String(v));
	return url.toString();
}

/** How many of the chart canvas's pixels are drawn in the latency colour and in the frame-rate colour. */
function chartPixels(page) {
	return page.evaluate(() => {
		const canvas = document.querySelector("#chart");
		const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
		let latency = 0;
		let fps = 0;
		for (let i = 0; i < data.length; i += 4) {
			const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
			if (a < 200) continue;
			if (r > 150 && g < 90 && b < 90) latency++;
			if (b > 120 && r < 80 && g < 150) fps++;
		}
		return { latency, fps };
	});
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
	if (process.env.ONLY === "media") {
		mediaSummary = (await mediaScenarios(env, context, { scenario, pageUrl })) ?? [];
		return;
	}
	if (process.env.ONLY === "websocket") {
		await websocketScenarios(env, context);
		return;
	}
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
			// Enough frames, and the chart has drawn a few seconds of them.
			const s = await waitFor(page, "watch", (s) => s.latencyMs?.samples >= FRAMES && s.chart.latencyPoints >= 6);
			checkVersion(s, lib);
			// @moq/net races a WebSocket too, 500 ms after WebTransport: on loopback WebTransport wins.
			if (s.transport !== "webtransport") fail(`${lib.name} connected over ${s.transport}, expected webtransport`);
			const shown = await chartPixels(page);
			if (shown.latency < 20 || shown.fps < 20) fail(`the chart shows too little: ${JSON.stringify(shown)}`);
			return (
				`version=${s.version} frames=${s.patternFrames} groups=${s.groups} lost=${s.lost} ` +
				`${latencyText(s.latencyMs, s.firstLatencyMs)} chart=${s.chart.points} points (${shown.latency} latency px, ${shown.fps} fps px)`
			);
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

	await websocketScenarios(env, context);
	await fallbackScenario(env, context);
	await failureScenarios(env, context);
	await cameraScenario(env, context);
	mediaSummary = (await mediaScenarios(env, context, { scenario, pageUrl })) ?? [];
}

/**
 * (h) A browser without WebTransport (hidden before the page's scripts load): @moq/net connects
 * over WebSocket (QMux) on the relay's TCP port, watches `moqt pub` and publishes for `moqt sub`.
 */
async function websocketScenarios(env, context) {
	const lib = { lib: "net", name: "@moq/net, WebTransport hidden", version: "moq-lite-05" };
	const track = "pattern";
	const fromNative = "native-ws";
	const fromPage = "page-ws";
	const pub = await startPub(env, fromNative, track);
	const page = await context.newPage();
	await page.addInitScript(() => {
		globalThis.WebTransport = undefined;
	});
	await page.goto(pageUrl(env, { lib: "net", track, watch: fromNative, publish: fromPage, fps: FPS, size: SIZE }));
	await scenario(`(h) moqt pub -> relay -> page over WebSocket [${lib.name}]`, async () => {
		const s = await waitFor(page, "watch", (s) => s.latencyMs?.samples >= FRAMES);
		checkVersion(s, lib);
		if (s.transport !== "websocket") fail(`connected over ${s.transport}, expected websocket`);
		if (await page.evaluate(() => typeof WebTransport !== "undefined")) fail("WebTransport was not hidden");
		return `transport=${s.transport} version=${s.version} frames=${s.patternFrames} groups=${s.groups} lost=${s.lost} ${latencyText(s.latencyMs, s.firstLatencyMs)}`;
	});
	await scenario(`(h) page -> relay -> moqt sub over WebSocket [${lib.name}]`, async () => {
		const s = await waitFor(page, "publish", (s) => s.connected && s.published?.frames > 0);
		if (s.transport !== "websocket") fail(`connected over ${s.transport}, expected websocket`);
		const sub = await startSub(env, fromPage, track);
		try {
			const deadline = Date.now() + SCENARIO_TIMEOUT_MS;
			for (;;) {
				const stats = sub.latest();
				if (stats && stats.frames >= FRAMES) {
					if (!(stats.p50 < 1000)) fail(`implausible latency from moqt sub: ${stats.line}`);
					return `transport=${s.transport} frames=${stats.frames} groups_lost=${stats.groupsLost} latency p50=${stats.p50}ms p99=${stats.p99}ms (moqt sub --stats: "${stats.line}")`;
				}
				if (sub.exitCode !== null) fail(`moqt sub exited (${sub.exitCode}); last stats: ${stats?.line}`);
				if (Date.now() > deadline) fail(`moqt sub: ${stats?.line ?? "no stats"} after ${SCENARIO_TIMEOUT_MS} ms`);
				await new Promise((resolve) => setTimeout(resolve, 200));
			}
		} finally {
			await stop(sub);
		}
	});
	await page.screenshot({ path: path.join(ARTIFACTS, "demo-websocket.png"), fullPage: true });
	await page.close();
	await stop(pub);
	await cameraScenario(env, context, { hideWebTransport: true });
}

/**
 * (c) The README's first-contact trap: the relay listens on 127.0.0.1 only and the page is opened
 * as http://localhost:PORT/. WebTransport to localhost misses; the page must retry 127.0.0.1.
 */
async function fallbackScenario(env, context) {
	const port = new URL(env.relayUrl).port;
	// WebTransport only (ws=off): over TCP the browser tries both address families, so the
	// WebSocket race would connect to localhost at once and hide the retry.
	const page = await openPage(context, `http://localhost:${port}/?ws=off`);
	await scenario("(c) page at http://localhost:PORT/, relay on 127.0.0.1 only: the page retries 127.0.0.1", async () => {
		const s = await waitFor(page, "connect", (s) => s.connected);
		if (s.url !== `https://127.0.0.1:${port}/`) {
			fail(`connected to ${s.url}, expected the 127.0.0.1 retry; attempts: ${JSON.stringify(s.attempts)}`);
		}
		if (s.fallback?.from !== `https://localhost:${port}/` || s.attempts[0]?.url !== `https://localhost:${port}/`) {
			fail(`no recorded fallback: ${JSON.stringify({ fallback: s.fallback, attempts: s.attempts })}`);
		}
		if (!s.log.some((l) => l.includes(`open http://127.0.0.1:${port}/`))) fail(`no advice in the log: ${s.log.join("\n")}`);
		return `first try ${s.attempts[0].url} failed ("${s.attempts[0].error}"), connected to ${s.url} (${s.version})`;
	});
	await page.close();
}

/** (d) A failed connection says what was tried and what to change, not just the browser's message. */
async function failureScenarios(env, context) {
	const closed = await freePort(); // nothing listens here
	const cases = [
		{
			name: "nothing listening",
			query: { url: `https://127.0.0.1:${closed}/` },
			expect: [
				`https://127.0.0.1:${closed}/`,
				`fingerprint fetched from http://127.0.0.1:${closed}/certificate.sha256`,
				"moq-lite-05, moq-lite-04, moq-lite-03",
				`is \`moqt relay\` running on port ${closed}?`,
			],
		},
		{
			name: "wrong fingerprint",
			query: { fingerprint: "00".repeat(32) },
			expect: [
				env.relayUrl,
				"fingerprint from the page's fingerprint= parameter",
				"WebTransport failed",
				"changes at every relay start",
			],
		},
		{
			name: "no common protocol",
			query: { alpn: "moq-lite-99" },
			expect: [env.relayUrl, "offered moq-lite-99", "the page's alpn= parameter restricts what it offers"],
		},
	];
	for (const c of cases) {
		// WebTransport failures (ws=off: a plain ws:// WebSocket pins no certificate and would connect).
		const page = await openPage(context, pageUrl(env, { ...c.query, ws: "off" }));
		await scenario(`(d) failure explained: ${c.name}`, async () => {
			const s = await waitFor(page, "failure", (s) => s.error && s.fixes.length > 0, { allowError: true });
			const shown = await page.locator("#problem").innerText();
			for (const text of c.expect) if (!shown.includes(text)) fail(`the page does not say ${JSON.stringify(text)}:\n${shown}`);
			return `${s.attempts.length} attempt(s), ${s.fixes.length} fixes; first fix: "${s.fixes[0].slice(0, 90)}…"`;
		});
		if (c.name === "nothing listening") await page.screenshot({ path: path.join(ARTIFACTS, "failure.png"), fullPage: true });
		await page.close();
	}
}

/**
 * (e) Real media: one page publishes Chromium's fake camera with <moq-publish>, through moqt relay;
 * another finds the hang broadcast in its list, presses "play video" and <moq-watch> decodes it.
 */
async function cameraScenario(env, context, { hideWebTransport = false } = {}) {
	const name = hideWebTransport ? "camera-ws.hang" : "camera-test.hang";
	const open = async (query) => {
		const page = await context.newPage();
		if (hideWebTransport) {
			await page.addInitScript(() => {
				globalThis.WebTransport = undefined;
			});
		}
		await page.goto(pageUrl(env, query));
		return page;
	};
	// <moq-publish> 0.2.17 bundles @moq/net 0.1.9, whose WebSocket offers only the bare qmux
	// tokens (lite-01/02 SETUP negotiation), which moqt relay refuses: it publishes over
	// WebTransport; the watcher's <moq-watch> (@moq/net 0.2.8) has no WebTransport.
	const publisher = await openPage(context, pageUrl(env, { camera: name }));
	const watcher = await open({});
	const title = hideWebTransport
		? `(h) <moq-publish> camera -> relay -> <moq-watch> over WebSocket, WebTransport hidden in the watcher (${VIDEO_FRAMES} decoded frames)`
		: `(e) <moq-publish> camera -> relay -> <moq-watch> (${VIDEO_FRAMES} decoded frames)`;
	await scenario(title, async () => {
		await waitFor(publisher, "camera", (s) => s.camera?.capturing && s.camera.status === "connected", { timeoutMs: 60000 });
		await waitFor(watcher, "announcement", (s) => s.announced.includes(name));
		await watcher.locator("#broadcasts li", { hasText: name }).getByRole("button", { name: "play video" }).click();
		const s = await waitFor(watcher, "decode", (s) => s.video?.frames >= VIDEO_FRAMES, { timeoutMs: 60000 });
		if (!(s.video.width > 0 && s.video.height > 0)) fail(`no picture size: ${JSON.stringify(s.video)}`);
		if (hideWebTransport && s.transport !== "websocket") fail(`the watcher connected over ${s.transport}`);
		return `decoded=${s.video.frames} frames ${s.video.width}x${s.video.height} received=${(s.video.bytes / 1024).toFixed(0)}KiB (element.video.out.stats frameCount)`;
	});
	const suffix = hideWebTransport ? "-websocket" : "";
	await watcher.screenshot({ path: path.join(ARTIFACTS, `video${suffix}.png`), fullPage: true });
	await publisher.screenshot({ path: path.join(ARTIFACTS, `camera${suffix}.png`), fullPage: true });
	await watcher.close();
	await publisher.close();
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
	// A fresh artifacts directory (the README runner's readme/ in it stays).
	await mkdir(ARTIFACTS, { recursive: true });
	for (const entry of await readdir(ARTIFACTS)) {
		if (entry !== "readme") await rm(path.join(ARTIFACTS, entry), { recursive: true, force: true });
	}

	const env = RELAY === "moq-relay" ? await startMoqRelay() : await startMoqt();
	console.log(`relay: ${env.name} at ${env.relayUrl}, page at ${env.pageBase}, certificate sha-256 ${env.fingerprint}`);
	const browser = await launchBrowser();
	try {
		if (RELAY === "moq-relay") await pageToPageScenarios(env, browser.context);
		else await moqtScenarios(env, browser.context);
	} finally {
		await browser.close();
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
	await stopAll();
	const passed = results.filter((r) => r.ok).length;
	const failed = results.length - passed;
	for (const line of mediaSummary) console.log(line);
	console.log(`browser: ${passed} passed, ${failed} failed`);
	if (failed > 0 || passed === 0) exitCode = 1;
}
process.exit(exitCode);
