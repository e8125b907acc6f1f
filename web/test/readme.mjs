#!/usr/bin/env node
// The README's commands, run exactly as written: every line of every ```sh block of README.md is
// matched against the rules below and run verbatim with bash from the repository root (only the
// placeholder HEX becomes the certificate fingerprint that a server started earlier in the same
// block printed). A line no rule knows fails the run, so a new README command needs a rule here,
// and a README change that breaks a command breaks CI.
//
// Per block: servers (relays, publishers) start in order and must print their readiness lines;
// clients run to their end or until they have shown enough (frames, clock lines); everything the
// block started is stopped (SIGINT, like Ctrl-C) when the block ends. `# open URL in Chromium`
// opens exactly that URL in headless Chromium; the page must connect, and must watch at least 30
// frames of the broadcast the block publishes, by pressing its "watch" button as a person would.
//
// The media example: ffmpeg must write its file, `moqt pub --media` must print the catalog it
// publishes, `moqt sub --media … --duration` must record frames, and ffprobe must count H.264 and
// Opus frames in the recording.
//
// Also checked: the Quick start has exactly two commands (a relay and the test suite, which CI's
// test step runs from this README), the relay's output matches the README's sample, the browser
// demo's URL is one the relay printed, and every link and file path in the README exists in the
// repository (tracked by git: what a fresh clone has) and none points outside it.
//
//   node web/test/readme.mjs          (from anywhere; `bash .ci/browser readme` installs Chromium first)
//
// Environment: CHROMIUM (default /usr/bin/chromium), README (default README.md at the root).
// Artifacts: web/test-artifacts/readme/ (each command's output, readme-demo.png, browser console).

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, stat } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { ARTIFACTS, ROOT, fail, launchBrowser, start, stop, useArtifacts, waitFor } from "./harness.mjs";

const README = path.resolve(ROOT, process.env.README ?? "README.md");
const NAME = path.basename(README);
const BUILD_MS = 30 * 60_000; // a first `cargo run` compiles: readiness may take this long
const WATCHED_FRAMES = 30;
const STATS_FRAMES = 60;
const HEX_RE = "[0-9a-f]{64}";

const results = [];

// ---- reading the README ----

/** The fenced blocks of a Markdown text: `{ lang, lines, heading, line }` (heading: the last `## `). */
export function blocks(text) {
	const out = [];
	let heading = "";
	let open;
	text.split("\n").forEach((line, i) => {
		if (open) {
			if (line.startsWith("```")) {
				out.push(open);
				open = undefined;
			} else open.lines.push(line);
		} else if (line.startsWith("```")) open = { lang: line.slice(3).trim(), lines: [], heading, line: i + 2 };
		else if (line.startsWith("## ")) heading = line.slice(3).trim();
	});
	return out;
}

/** A shell line without its trailing comment (a `#` after whitespace, outside quotes). */
export function stripComment(line) {
	let quote;
	for (let i = 0; i < line.length; i++) {
		const c = line[i];
		if (quote) {
			if (c === quote) quote = undefined;
		} else if (c === "'" || c === '"') quote = c;
		else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i).trimEnd();
	}
	return line.trimEnd();
}

/** The steps of an sh block: `{ kind: "command", text }` or `{ kind: "open", url }`. */
export function steps(block) {
	const out = [];
	for (const raw of block.lines) {
		const open = raw.match(/^#\s*open (\S+) in Chromium\s*$/);
		if (open) out.push({ kind: "open", url: open[1], raw });
		else if (stripComment(raw)) out.push({ kind: "command", text: stripComment(raw), raw });
	}
	return out;
}

// ---- the rules: how each kind of README command is run and checked ----

const moqt = (sub) => new RegExp(`^cargo run --release --bin moqt -- ${sub}( |$)`);
const DATE_LINE = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/;

export const RULES = [
	{
		name: "build the demo page",
		match: /^\(cd web && npm ci && npm run build\)$/,
		async run(ctx, cmd) {
			await runToEnd(ctx, cmd, { timeoutMs: BUILD_MS });
			if (!existsSync(path.join(ROOT, "web/dist/index.html"))) fail("web/dist/index.html was not built");
			return "web/dist built";
		},
	},
	{
		name: "the test suite",
		match: /^cargo test( |$)/,
		async run(ctx, cmd) {
			// `.ci/run`'s test step runs this very line (read from the README), so it is not run twice.
			const ci = await readFile(path.join(ROOT, ".ci/run"), "utf8");
			if (!/step_test\(\)[\s\S]*?README\.md[\s\S]*?eval "\$cmd"/.test(ci)) fail(".ci/run's test step no longer runs the README's command");
			if (ctx.block.heading !== "Quick start") fail(`${cmd}: only the Quick start's test command is run by CI's test step`);
			return "run by .ci/run's test step (it reads this line from the README)";
		},
	},
	{
		name: "moqt relay",
		match: moqt("relay"),
		async run(ctx, cmd) {
			const child = await server(ctx, cmd, [/^listening on /, /^certificate sha256 /]);
			ctx.fingerprint = fingerprintOf(child);
			ctx.relay = child;
			await child.waitLine(/^next: publish/);
			const urls = pageUrls(child);
			if (urls.length === 0) fail("the relay printed no page URL");
			ctx.pageUrls = urls;
			const health = await (await fetch(new URL("health", urls[0]))).text();
			if (health.trim() !== "ok") fail(`${urls[0]}health answered ${JSON.stringify(health)}`);
			if (ctx.block.heading === "Quick start") checkSample(ctx, child);
			return `listening; page ${urls.join(", ")}; /health ok`;
		},
	},
	{
		name: "moqt pub (test pattern)",
		match: /^cargo run --release --bin moqt -- pub \S+ (\S+) .*--fps /,
		async run(ctx, cmd, m) {
			await server(ctx, cmd, /^publishing /);
			ctx.broadcast = m[1];
			return `publishing ${m[1]}`;
		},
	},
	{
		name: "moqt announced --count",
		match: /^cargo run --release --bin moqt -- announced \S+ (\S+) .*--count (\d+)/,
		async run(ctx, cmd, m) {
			const child = await runToEnd(ctx, cmd);
			if (!child.lines.includes(`+ ${m[1]}`)) fail(`announced did not list ${m[1]}`);
			return `listed + ${m[1]}`;
		},
	},
	{
		name: "moqt sub --stats",
		match: /^cargo run --release --bin moqt -- sub .*--stats/,
		async run(ctx, cmd) {
			const line = await until(ctx, cmd, (l) => Number(l.match(/^sub: (\d+) frames/)?.[1]) >= STATS_FRAMES);
			return `"${line}"`;
		},
	},
	{
		name: "ffmpeg makes a CMAF file",
		match: /^ffmpeg .*-movflags \S*cmaf\S* (\S+\.mp4)$/,
		async run(ctx, cmd, m) {
			await runToEnd(ctx, cmd);
			const size = (await stat(m[1]).catch(() => undefined))?.size ?? 0;
			if (size === 0) fail(`${m[1]} was not written`);
			return `${m[1]}: ${size} bytes`;
		},
	},
	{
		name: "moqt pub --media",
		match: /^cargo run --release --bin moqt -- pub \S+ (\S+) .*--media /,
		async run(ctx, cmd, m) {
			const child = await server(ctx, cmd, /^pub: catalog: /);
			return `publishing ${m[1]}; ${child.lines.find((l) => l.startsWith("pub: catalog: "))}`;
		},
	},
	{
		name: "moqt sub --media --duration",
		match: /^cargo run --release --bin moqt -- sub .*--media (\S+) .*--duration /,
		async run(ctx, cmd, m) {
			const child = await runToEnd(ctx, cmd);
			const summary = child.lines.find((l) => /^recorded [1-9]\d* frames/.test(l));
			if (!summary) fail(`no recording summary; last lines:\n${child.lines.slice(-5).join("\n")}`);
			return `"${summary}"`;
		},
	},
	{
		name: "ffprobe counts the frames of each stream",
		match: /^ffprobe .*-count_packets .*-of csv (\S+\.mp4)$/,
		async run(ctx, cmd) {
			const child = await runToEnd(ctx, cmd);
			const streams = child.lines.map((l) => l.match(/^stream,(\w+),(\d+)$/)).filter(Boolean);
			const frames = Object.fromEntries(streams.map(([, codec, n]) => [codec, Number(n)]));
			if (!(frames.h264 > 0 && frames.opus > 0)) fail(`expected H.264 and Opus frames, ffprobe says ${child.lines.join(" | ")}`);
			return streams.map(([line]) => line).join(", ");
		},
	},
	{
		name: "smol relay example",
		match: /^cargo run -p moqt-driver-smol --example smol_relay( |$)/,
		async run(ctx, cmd) {
			const child = await server(ctx, cmd, [/^listening on /, /^certificate sha256 /]);
			ctx.fingerprint = fingerprintOf(child);
			return "listening";
		},
	},
	{
		name: "smol clock publisher",
		match: /^cargo run -p moqt-driver-smol --example smol_clock -- publish /,
		async run(ctx, cmd) {
			await server(ctx, cmd, /^publishing /);
			return "publishing";
		},
	},
	{
		name: "smol clock subscriber",
		match: /^cargo run -p moqt-driver-smol --example smol_clock -- subscribe /,
		async run(ctx, cmd) {
			let n = 0;
			const line = await until(ctx, cmd, (l) => DATE_LINE.test(l) && ++n >= 2);
			return `two clock lines, the last "${line}"`;
		},
	},
	{
		name: "tokio broadcast server example",
		match: /^cargo run -p moqt-driver-tokio --example broadcast -- server( |$)/,
		async run(ctx, cmd) {
			const child = await server(ctx, cmd, /^connect with: /);
			ctx.fingerprint = fingerprintOf(child);
			ctx.suggested = child.lines.find((l) => l.startsWith("connect with: ")).slice("connect with: ".length);
			return `suggests: ${ctx.suggested.replace(ctx.fingerprint, "HEX")}`;
		},
	},
	{
		name: "tokio broadcast client example",
		match: /^cargo run -p moqt-driver-tokio --example broadcast -- client( |$)/,
		async run(ctx, cmd) {
			if (ctx.suggested && substitute(ctx, cmd) !== ctx.suggested) {
				fail(`the README's client command differs from the one the server prints: ${ctx.suggested}`);
			}
			let n = 0;
			const line = await until(ctx, cmd, (l) => /group \d+: FRAME \d+/.test(l) && ++n >= 3);
			return `three frames, the last "${line}"`;
		},
	},
];

// ---- running commands ----

function substitute(ctx, cmd) {
	if (!cmd.includes("HEX")) return cmd;
	if (!ctx.fingerprint) fail(`${cmd}: HEX, but no server in this block printed a certificate fingerprint`);
	return cmd.replaceAll("HEX", ctx.fingerprint);
}

function label(ctx) {
	ctx.n = (ctx.n ?? 0) + 1;
	return `${ctx.block.line}-${ctx.n}`;
}

/** Starts a long-running command and waits for its readiness lines. */
async function server(ctx, cmd, ready) {
	const child = await start(`cmd-${label(ctx)}`, substitute(ctx, cmd), [], { shell: true, ready, timeoutMs: BUILD_MS });
	ctx.children.push(child);
	return child;
}

/** Runs a command to its end; it must exit 0. */
async function runToEnd(ctx, cmd, { timeoutMs = BUILD_MS } = {}) {
	const child = await start(`cmd-${label(ctx)}`, substitute(ctx, cmd), [], { shell: true, timeoutMs });
	ctx.children.push(child);
	const timer = setTimeout(() => stop(child), timeoutMs);
	const { code, signal } = await child.exited;
	clearTimeout(timer);
	if (code !== 0) fail(`exited with ${code ?? signal}; last lines:\n${child.lines.slice(-10).join("\n")}`);
	return child;
}

/** Runs a command until one of its lines satisfies `enough`, then stops it; returns that line. */
async function until(ctx, cmd, enough) {
	const child = await start(`cmd-${label(ctx)}`, substitute(ctx, cmd), [], { shell: true, timeoutMs: BUILD_MS });
	ctx.children.push(child);
	const line = await child.waitLine({ test: (l) => enough(l) });
	await stop(child);
	return line;
}

function fingerprintOf(child) {
	const fp = child.lines.map((l) => l.match(new RegExp(`^certificate sha256 (${HEX_RE})$`))?.[1]).find(Boolean);
	if (!fp) fail("no `certificate sha256 HEX` line");
	return fp;
}

/** The page URLs `moqt relay` printed (the indented line after "next: open …"). */
function pageUrls(child) {
	const urls = [];
	child.lines.forEach((l, i) => {
		if (l.startsWith("next: open") && /^\s+http:\/\/\S+\/$/.test(child.lines[i + 1] ?? "")) urls.push(child.lines[i + 1].trim());
	});
	return urls;
}

/** The README's sample of the relay's output (the ```text block after the Quick start's commands). */
function checkSample(ctx, child) {
	const sample = ctx.all.find((b) => b.lang === "text" && b.heading === "Quick start");
	if (!sample) fail("the Quick start shows no sample of the relay's output");
	let at = 0;
	for (const want of sample.lines.filter((l) => l.trim())) {
		const escaped = want.trimEnd().replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
		const re = new RegExp(`^${escaped.replaceAll("HEX", HEX_RE).replaceAll("…", ".*")}$`);
		const found = child.lines.findIndex((l, i) => i >= at && re.test(l.trimEnd()));
		if (found < 0) fail(`the relay's output has no line like the README's sample line ${JSON.stringify(want)} (see its log)`);
		at = found + 1;
	}
}

// ---- the browser ----

async function openInChromium(ctx, url) {
	if (!ctx.pageUrls?.includes(url)) {
		fail(`the README says to open ${url}, but the relay started in this block printed ${JSON.stringify(ctx.pageUrls)}`);
	}
	ctx.browser ??= await launchBrowser({ consoleFile: "browser-console.log" });
	const page = await ctx.browser.context.newPage();
	await page.goto(url); // exactly the README's URL
	ctx.page = page;
	const s = await waitFor(page, "connect", (s) => s.connected, { timeoutMs: 30000 });
	// The README's URL must work as it is, not thanks to the page's retry of another address family.
	if (s.fallback) fail(`${url} connected only after the page's fallback from ${s.fallback.from} to ${s.fallback.to}`);
	return `connected to ${s.url} (${s.version}, ${s.library})`;
}

/** After the block: the page watches what the block publishes, by its "watch" button. */
async function watchInPage(ctx) {
	const page = ctx.page;
	const name = ctx.broadcast;
	if (!name) fail("the browser block publishes nothing to watch");
	await waitFor(page, "announcement", (s) => s.announced.includes(name));
	await page.locator("#broadcasts li", { hasText: name }).getByRole("button", { name: "watch" }).click();
	const s = await waitFor(page, "watch", (s) => s.patternFrames >= WATCHED_FRAMES && s.latencyMs?.samples > 0);
	await page.waitForFunction(() => window.demo.chart.latencyPoints >= 2);
	await page.screenshot({ path: path.join(ARTIFACTS, "readme-demo.png"), fullPage: true });
	const l = s.latencyMs;
	return `watched ${s.patternFrames} frames of ${name} (track ${s.watching.track}) in ${s.groups} groups, lost ${s.lost}, latency p50 ${l.p50} ms p99 ${l.p99} ms`;
}

// ---- links ----

/** Every link target and backticked repository path in the README must exist in a fresh clone. */
export async function checkLinks(text) {
	const tracked = new Set(execFileSync("git", ["ls-files"], { cwd: ROOT, encoding: "utf8" }).split("\n").filter(Boolean));
	const exists = (p) => {
		const clean = p.replace(/^\.\//, "").replace(/\/$/, "");
		return tracked.has(clean) || [...tracked].some((t) => t.startsWith(`${clean}/`));
	};
	// Build and cache directories (`web/dist`, `.ci/cache`) are made by commands, not cloned.
	const ignored = (p) => {
		try {
			execFileSync("git", ["check-ignore", "-q", p], { cwd: ROOT });
			return true;
		} catch {
			return false;
		}
	};
	const problems = [];
	const anchors = new Set(
		text.split("\n").filter((l) => /^#+ /.test(l)).map((l) => l.replace(/^#+ /, "").toLowerCase().replace(/[^\w\- ]/g, "").replace(/ /g, "-")),
	);
	let links = 0;
	for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
		links++;
		if (/^(https?|mailto):/.test(target)) continue;
		if (target.startsWith("#")) {
			if (!anchors.has(target.slice(1))) problems.push(`link to a missing heading: ${target}`);
			continue;
		}
		if (target.startsWith("/") || target.startsWith("..")) problems.push(`link outside the repository: ${target}`);
		else if (!exists(target.split("#")[0])) problems.push(`link to a file a fresh clone lacks: ${target}`);
	}
	// Backticked paths such as `moqt-proto/tests/vectors.rs` or `web/`.
	const top = new Set([...tracked].map((t) => t.split("/")[0]));
	let paths = 0;
	for (const [, span] of text.matchAll(/`([^`\s]+)`/g)) {
		const first = span.replace(/^\.\//, "").split("/")[0];
		if (!span.includes("/") || !top.has(first) || /[*…<>]/.test(span)) continue;
		if (ignored(span)) continue;
		paths++;
		if (!exists(span)) problems.push(`path a fresh clone lacks: ${span}`);
	}
	// The names are assembled so that this file does not itself point outside the repository.
	const notes = ["sha", "red"].join("");
	for (const bad of [`../${notes}`, `${notes}/spec`, `${notes}/design`, "/work/"]) {
		if (text.includes(bad)) problems.push(`points outside the repository: ${bad}`);
	}
	if (problems.length) fail(problems.join("\n"));
	return `${links} links and ${paths} repository paths resolve; nothing points outside the repository`;
}

// ---- main ----

async function check(name, body) {
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

async function runBlock(block, all) {
	const ctx = { block, all, children: [] };
	try {
		for (const step of steps(block)) {
			const where = `${NAME}:${block.line} [${block.heading}]`;
			if (step.kind === "open") {
				await check(`${where} open ${step.url} in Chromium`, () => openInChromium(ctx, step.url));
				continue;
			}
			const rule = RULES.find((r) => r.match.test(step.text));
			if (!rule) {
				await check(`${where} ${step.text}`, () => fail("no rule in web/test/readme.mjs knows how to run and check this command"));
				continue;
			}
			await check(`${where} ${step.text}`, () => rule.run(ctx, step.text, step.text.match(rule.match)));
		}
		if (ctx.page) await check(`${NAME}:${block.line} [${block.heading}] the page watches the README's broadcast`, () => watchInPage(ctx));
	} finally {
		await ctx.browser?.close();
		for (const child of ctx.children.reverse()) await stop(child);
	}
}

async function main() {
	useArtifacts("readme");
	await rm(ARTIFACTS, { recursive: true, force: true });
	await mkdir(ARTIFACTS, { recursive: true });
	const text = await readFile(README, "utf8");
	const all = blocks(text);
	const sh = all.filter((b) => b.lang === "sh");
	console.log(`${README}: ${sh.length} sh blocks, ${sh.flatMap(steps).length} steps`);

	await check("README links and paths", () => checkLinks(text));
	await check("Quick start: exactly two set-up commands (run the relay; run the tests)", async () => {
		const quick = sh.filter((b) => b.heading === "Quick start").flatMap(steps);
		const texts = quick.map((s) => s.text ?? s.raw);
		if (quick.length !== 2 || !moqt("relay").test(texts[0]) || !/^cargo test /.test(texts[1])) {
			fail(`the Quick start has ${JSON.stringify(texts)}`);
		}
		return texts.join(" ; ");
	});
	for (const block of sh) await runBlock(block, all);
}

// Run only as a program (importing this file for its parsers runs nothing).
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
	let exitCode = 0;
	try {
		await main();
	} catch (err) {
		console.log(`FAIL setup: ${err.message}`);
		results.push({ name: "setup", ok: false });
	} finally {
		const passed = results.filter((r) => r.ok).length;
		const failed = results.length - passed;
		console.log(`readme: ${passed} passed, ${failed} failed`);
		if (failed > 0 || passed === 0) exitCode = 1;
	}
	process.exit(exitCode);
}
