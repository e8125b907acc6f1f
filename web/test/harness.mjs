// Shared by the real-browser tests (browser.mjs) and the README runner (readme.mjs): child
// processes that report readiness by their output lines, free loopback ports, headless Chromium
// through playwright-core, and polling the demo page's `window.demo` state.
//
// playwright-core is imported lazily (by launchBrowser), so readme.mjs can start before the
// README's own `npm ci` has installed it.

import { spawn } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import dgram from "node:dgram";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = path.resolve(WEB, "..");
export const DIST = path.join(WEB, "dist");
/** Where screenshots and logs go (a live binding: see useArtifacts). */
export let ARTIFACTS = path.join(WEB, "test-artifacts");
/** Sends artifacts to web/test-artifacts/<sub> instead. */
export function useArtifacts(sub) {
	ARTIFACTS = path.join(WEB, "test-artifacts", sub);
}
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const CHROMIUM_FLAGS = [
	"--headless=new",
	"--no-sandbox",
	"--disable-gpu",
	"--no-first-run",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
	// A fake camera and microphone, granted without a prompt (for <moq-publish>).
	"--use-fake-device-for-media-stream",
	"--use-fake-ui-for-media-stream",
	"--autoplay-policy=no-user-gesture-required",
];

/** Every child started here, stopped by stopAll(). */
export const children = [];

export function fail(message) {
	throw new Error(message);
}

export const plain = (line) => line.replace(/\x1b\[[0-9;]*m/g, "");

export function moqtBin() {
	if (process.env.MOQT_BIN) return path.resolve(process.env.MOQT_BIN);
	for (const profile of ["release", "debug"]) {
		const bin = path.join(ROOT, "target", profile, "moqt");
		if (existsSync(bin)) return bin;
	}
	fail("no moqt binary: build it (cargo build -p moqt-cli --bin moqt) or set MOQT_BIN");
}

/** A loopback port that is free for both TCP and UDP (the relay uses the same number for both). */
export async function freePort() {
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
 * Start a child process in its own process group, log its output to ARTIFACTS/<name>.log (and
 * keep its lines in `child.lines`), and resolve once its lines match `ready` (one pattern or a
 * list, each of which must match some line); reject if it exits or times out first. Without
 * `ready`, resolves at once. `shell: true` runs `cmd` as a bash command line.
 */
export function start(name, cmd, args = [], { ready, timeoutMs = 60000, shell = false, cwd = ROOT, env = {} } = {}) {
	const [program, argv] = shell ? ["bash", ["-c", cmd]] : [cmd, args];
	const child = spawn(program, argv, {
		cwd,
		detached: true, // its own process group: stop() reaches `cargo run`'s child and subshells too
		stdio: ["ignore", "pipe", "pipe"],
		env: { RUST_LOG: "info", ...process.env, ...env },
	});
	child.name = name;
	children.push(child);
	const logFile = createWriteStream(path.join(ARTIFACTS, `${name.replace(/[^\w.-]+/g, "_")}.log`));
	logFile.write(`$ ${shell ? cmd : [cmd, ...args].join(" ")}\n`);
	child.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
	let pending = "";
	const lines = [];
	const listeners = new Set();
	const feed = (chunk) => {
		logFile.write(chunk);
		pending += chunk.toString();
		let i;
		while ((i = pending.indexOf("\n")) >= 0) {
			const line = plain(pending.slice(0, i));
			pending = pending.slice(i + 1);
			lines.push(line);
			for (const l of listeners) l(line);
		}
	};
	child.stderr.on("data", feed);
	child.stdout.on("data", feed);
	child.lines = lines;
	/** Resolves with the first line (past or future) matching `re`; rejects on exit or timeout. */
	child.waitLine = (re, ms = timeoutMs) => {
		const seen = lines.find((l) => re.test(l));
		if (seen !== undefined) return Promise.resolve(seen);
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				listeners.delete(listener);
				reject(new Error(`${name}: no line matching ${re} after ${ms} ms (see ${name}.log)`));
			}, ms);
			const listener = (line) => {
				if (!re.test(line)) return;
				clearTimeout(timer);
				listeners.delete(listener);
				resolve(line);
			};
			listeners.add(listener);
			child.exited.then(({ code, signal }) => {
				if (!listeners.has(listener)) return;
				clearTimeout(timer);
				listeners.delete(listener);
				reject(new Error(`${name} exited (${code ?? signal}) before printing ${re} (see ${name}.log)`));
			});
		});
	};
	if (!ready) return Promise.resolve(child);
	return Promise.all([ready].flat().map((re) => child.waitLine(re))).then(() => child);
}

/** Stop a child like Ctrl-C does (SIGINT to its process group), SIGKILL after 5 s. */
export async function stop(child) {
	if (child.exitCode !== null || child.signalCode !== null) return;
	// SIGINT, like Ctrl-C: moqt then closes its session, so the relay unannounces at once
	// (on SIGTERM `moqt pub` exits without closing, and its broadcast lingers until the idle timeout).
	const signal = (sig) => {
		try {
			process.kill(-child.pid, sig);
		} catch {
			child.kill(sig);
		}
	};
	signal("SIGINT");
	const timer = setTimeout(() => signal("SIGKILL"), 5000);
	await child.exited;
	clearTimeout(timer);
}

export async function stopAll() {
	for (const child of children.splice(0)) await stop(child);
}

export async function fetchText(url) {
	const response = await fetch(url);
	if (!response.ok) fail(`${url}: HTTP ${response.status}`);
	return (await response.text()).trim();
}

/** Headless Chromium with a fresh profile; the console of every page goes to browser-console.log. */
export async function launchBrowser({ consoleFile = "browser-console.log" } = {}) {
	const { chromium } = await import("playwright-core");
	if (!existsSync(CHROMIUM)) fail(`no chromium at ${CHROMIUM} (apt-get install chromium)`);
	const profile = await mkdtemp(path.join(os.tmpdir(), "moqt-chromium-"));
	// headless: false + --headless=new in args, so the flags are exactly ours; the
	// persistent context gives the fresh --user-data-dir.
	const context = await chromium.launchPersistentContext(profile, {
		executablePath: CHROMIUM,
		headless: false,
		args: CHROMIUM_FLAGS,
		viewport: { width: 1100, height: 1200 },
	});
	const consoleLog = createWriteStream(path.join(ARTIFACTS, consoleFile));
	context.on("page", (page) => watchConsole(page, consoleLog));
	for (const page of context.pages()) watchConsole(page, consoleLog);
	return {
		context,
		async close() {
			await context.close();
			consoleLog.end();
			await rm(profile, { recursive: true, force: true });
		},
	};
}

function watchConsole(page, out) {
	const tag = () => {
		const url = new URL(page.url() || "about:blank");
		return url.host + url.pathname + url.search;
	};
	page.on("console", (msg) => out.write(`[${tag()}] ${msg.type()}: ${msg.text()}\n`));
	page.on("pageerror", (err) => out.write(`[${tag()}] pageerror: ${err.message}\n`));
}

export async function openPage(context, url) {
	const page = await context.newPage();
	await page.goto(url);
	return page;
}

export const demoState = (page) => page.evaluate(() => JSON.parse(JSON.stringify(window.demo)));

/** Poll window.demo until `done(state)` holds; fail early on a connection error unless `allowError`. */
export async function waitFor(page, what, done, { timeoutMs = 30000, allowError = false } = {}) {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const state = await demoState(page);
		if (done(state)) return state;
		if (!allowError && state.error && !state.connected) fail(`${what}: page error: ${state.error}`);
		if (Date.now() > deadline) {
			fail(`${what}: timed out after ${timeoutMs} ms; page state: ${JSON.stringify({ ...state, log: state.log.slice(-8) })}`);
		}
		await page.waitForTimeout(200);
	}
}
