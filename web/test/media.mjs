// Real-media scenarios of the browser tests (run by browser.mjs through `moqt relay`):
//
//   (f) CLI -> browser: ffmpeg makes a test pattern (H.264 + Opus, CMAF); `moqt pub --media FILE
//       --loop` publishes it; the page presses "play video" and <moq-watch> must decode at least
//       VIDEO_FRAMES frames (its `video.out.stats` frameCount, and as many VideoDecoder outputs).
//       Once per container/catalog: legacy + hang (the default), CMAF + hang, legacy + MSF.
//       Then the page unmutes the player and its AudioDecoder must decode AUDIO_FRAMES frames.
//       Glass-to-glass latency: `moqt pub` prints which wall-clock instant its media clock's
//       origin was sent at (it paces frames by their timestamps from there), and the page records
//       when each frame leaves its VideoDecoder (a wrapper installed before the page loads). The
//       latency of a frame is its decode time minus the instant its timestamp was due at the
//       publisher. The first group is left out (a late joiner gets it from the relay's cache at
//       once, which is join time, not latency); it is printed as `MEDIA LATENCY: …`.
//   (g) browser -> CLI: a page publishes Chromium's fake camera with <moq-publish>; `moqt sub
//       --media FILE --duration S` records it; ffprobe must accept the file (a video stream with
//       frames) and ffmpeg must decode it without an error.
//
// ffmpeg and ffprobe are needed (`bash .ci/browser` installs Debian's ffmpeg if missing).

import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { ARTIFACTS, fail, start, stop, waitFor } from "./harness.mjs";

const run = promisify(execFile);
const VIDEO_FRAMES = Number(process.env.VIDEO_FRAMES ?? 60);
/** Steady-state frames whose latency is measured per variant. */
const LATENCY_FRAMES = Number(process.env.LATENCY_FRAMES ?? 90);
const RECORD_SECONDS = Number(process.env.RECORD_SECONDS ?? 5);
/** Decoded audio frames to wait for once unmuted (Opus: 50 a second). */
const AUDIO_FRAMES = 50;

/**
 * Installed in the page before its scripts: note when each video frame is decoded, and count
 * decoded audio frames and decoder errors.
 */
function decodeHook() {
	const Native = globalThis.VideoDecoder;
	if (!Native) return;
	const media = { decoded: [], keys: [], audio: 0, errors: [] };
	window.__media = media;
	const now = () => performance.timeOrigin + performance.now();
	const NativeAudio = globalThis.AudioDecoder;
	if (NativeAudio) {
		globalThis.AudioDecoder = class extends NativeAudio {
			constructor(init) {
				super({
					...init,
					output: (data) => {
						media.audio++;
						return init.output(data);
					},
					error: (err) => {
						media.errors.push(`audio: ${err?.message ?? err}`);
						return init.error(err);
					},
				});
			}
		};
	}
	globalThis.VideoDecoder = class extends Native {
		constructor(init) {
			super({
				...init,
				output: (frame) => {
					if (media.decoded.length < 20000) media.decoded.push([frame.timestamp, now()]);
					return init.output(frame);
				},
				error: (err) => {
					media.errors.push(`video: ${err?.message ?? err}`);
					return init.error(err);
				},
			});
		}
		decode(chunk) {
			if (chunk.type === "key" && media.keys.length < 1000) media.keys.push(chunk.timestamp);
			return super.decode(chunk);
		}
	};
}

async function ffmpegMissing() {
	for (const bin of ["ffmpeg", "ffprobe"]) {
		try {
			await run(bin, ["-version"]);
		} catch {
			return `${bin} is not installed (bash .ci/browser installs Debian's ffmpeg)`;
		}
	}
	return undefined;
}

/** 4 s of 640×360 testsrc2 at 30 fps (H.264, no B-frames, a keyframe a second) + Opus, as CMAF. */
async function makeSource(file) {
	await run("ffmpeg", [
		"-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "4",
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-b:v", "800k",
		"-c:a", "libopus", "-b:a", "64k", "-ac", "2",
		"-f", "mp4", "-movflags", "cmaf+frag_keyframe+empty_moov+default_base_moof", file,
	]);
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/**
 * Latency of each decoded frame after the first group: decode time minus the wall-clock instant
 * the publisher's pacing made it due. `anchor` = { ts (µs), unixUs }.
 */
function latencies(media, anchor) {
	const secondKey = [...new Set(media.keys)].sort((a, b) => a - b)[1];
	if (secondKey === undefined) return { steady: [], first: undefined };
	const due = (ts) => (anchor.unixUs + (ts - anchor.ts)) / 1000;
	const first = media.decoded[0] ? media.decoded[0][1] - due(media.decoded[0][0]) : undefined;
	const steady = media.decoded.filter(([ts]) => ts >= secondKey).map(([ts, at]) => at - due(ts));
	return { steady: steady.sort((a, b) => a - b), first };
}

/** `pub: media clock: timestamp T us = unix time U us` from `moqt pub`'s output. */
async function mediaClock(pub) {
	const line = await pub.waitLine(/media clock: timestamp \d+ us = unix time \d+ us/);
	const [, ts, unixUs] = line.match(/timestamp (\d+) us = unix time (\d+) us/);
	return { ts: Number(ts), unixUs: Number(unixUs) };
}

/** ffprobe's view of a file: streams with codec, size and packet count. */
async function probe(file) {
	const { stdout } = await run("ffprobe", [
		"-v", "error", "-count_packets", "-of", "json",
		"-show_entries", "stream=codec_name,codec_type,width,height,nb_read_packets", file,
	]);
	return JSON.parse(stdout).streams.map((s) => ({
		codec: s.codec_name,
		type: s.codec_type,
		width: s.width,
		height: s.height,
		packets: Number(s.nb_read_packets),
	}));
}

/** ffmpeg's complaints when decoding the whole file (empty when it decodes cleanly). */
async function decodeErrors(file) {
	try {
		// -enc_time_base -1 keeps each stream's own time base: the default (1/frame rate) makes two
		// frames of a variable-rate camera land on the same tick, which the null muxer reports.
		const { stderr } = await run("ffmpeg", ["-hide_banner", "-v", "error", "-i", file, "-enc_time_base", "-1", "-f", "null", "-"]);
		return stderr.trim();
	} catch (err) {
		return (err.stderr || err.message).trim();
	}
}

/** (f) and (g). `scenario` and `pageUrl` are browser.mjs's. */
export async function mediaScenarios(env, context, { scenario, pageUrl }) {
	const missing = await ffmpegMissing();
	if (missing) {
		await scenario("(f)/(g) real media with moqt pub --media / moqt sub --media", () => fail(missing));
		return;
	}
	const source = path.join(ARTIFACTS, "media-source.mp4");
	await makeSource(source);
	const variants = [
		{ name: "cli-legacy.hang", label: "legacy container, hang catalog (the default)", args: [] },
		{ name: "cli-cmaf.hang", label: "CMAF container, hang catalog", args: ["--container", "cmaf"] },
		{ name: "cli-legacy.msf", label: "legacy container, MSF catalog", args: ["--catalog", "msf"] },
	];
	const summary = [];
	for (const v of variants) {
		const pub = await start(`pub-${v.name}`, env.bin, [
			"pub", env.relayUrl, v.name, "--media", source, "--loop", ...v.args, "--tls-fingerprint", env.fingerprint,
		], { ready: /^publishing / });
		const page = await context.newPage();
		await page.addInitScript(decodeHook);
		await page.goto(pageUrl(env, {}));
		await scenario(`(f) moqt pub --media -> relay -> <moq-watch> [${v.label}]`, async () => {
			await waitFor(page, "announcement", (s) => s.announced.includes(v.name));
			await page.locator("#broadcasts li", { hasText: v.name }).getByRole("button", { name: "play video" }).click();
			const s = await waitFor(page, "decode", (s) => s.video?.frames >= VIDEO_FRAMES, { timeoutMs: 60000 });
			if (!(s.video.width > 0 && s.video.height > 0)) fail(`no picture size: ${JSON.stringify(s.video)}`);
			const anchor = await mediaClock(pub);
			const deadline = Date.now() + 60000;
			let l;
			for (;;) {
				const media = await page.evaluate(() => window.__media);
				l = latencies(media, anchor);
				if (media.decoded.length >= VIDEO_FRAMES && l.steady.length >= LATENCY_FRAMES) break;
				if (Date.now() > deadline) {
					fail(`only ${media.decoded.length} frames decoded (${l.steady.length} after the first group) in 60 s`);
				}
				await page.waitForTimeout(250);
			}
			const ms = (x) => `${x.toFixed(1)} ms`;
			const line =
				`MEDIA LATENCY [${v.label}]: p50 ${ms(quantile(l.steady, 0.5))} p90 ${ms(quantile(l.steady, 0.9))} ` +
				`max ${ms(l.steady.at(-1))} over ${l.steady.length} frames; first frame after joining ${ms(l.first)}`;
			console.log(line);
			summary.push(line);
			// Sound too: unmuted, <moq-watch> subscribes to the audio rendition and decodes it.
			await page.evaluate(() => document.querySelector("moq-watch").removeAttribute("muted"));
			const heard = await page
				.waitForFunction((n) => window.__media.audio >= n || window.__media.errors.length > 0, AUDIO_FRAMES, { timeout: 30000 })
				.catch(() => undefined);
			const media = await page.evaluate(() => window.__media);
			if (media.errors.length) fail(`decoder errors: ${media.errors.slice(0, 3).join("; ")}`);
			if (!heard) fail(`only ${media.audio} audio frames decoded in 30 s after unmuting`);
			const after = await waitFor(page, "decode", () => true);
			return (
				`<moq-watch> received ${after.video.frames} frames (video.out.stats frameCount, ` +
				`${(after.video.bytes / 1024).toFixed(0)} KiB), ${media.decoded.length} left its VideoDecoder, ` +
				`${after.video.width}x${after.video.height}; unmuted: ${media.audio} audio frames decoded`
			);
		});
		await page.screenshot({ path: path.join(ARTIFACTS, `media-${v.name}.png`), fullPage: true });
		await page.close();
		await stop(pub);
	}
	await recordCamera(env, context, { scenario, pageUrl });
	return summary;
}

/** (g) <moq-publish> camera -> relay -> `moqt sub --media`, then ffprobe and ffmpeg on the file. */
async function recordCamera(env, context, { scenario, pageUrl }) {
	const name = "camera-rec.hang";
	const publisher = await context.newPage();
	await publisher.goto(pageUrl(env, { camera: name }));
	await scenario(`(g) <moq-publish> camera -> relay -> moqt sub --media (${RECORD_SECONDS} s)`, async () => {
		await waitFor(publisher, "camera", (s) => s.camera?.capturing && s.camera.status === "connected", { timeoutMs: 60000 });
		const file = path.join(ARTIFACTS, "camera-recording.mp4");
		const sub = await start("sub-camera-rec", env.bin, [
			"sub", env.relayUrl, name, "--media", file, "--duration", String(RECORD_SECONDS),
			"--tls-fingerprint", env.fingerprint,
		]);
		const timer = setTimeout(() => stop(sub), (RECORD_SECONDS + 60) * 1000);
		const { code, signal } = await sub.exited;
		clearTimeout(timer);
		if (code !== 0) fail(`moqt sub --media exited with ${code ?? signal}: ${sub.lines.slice(-5).join(" | ")}`);
		const summary = sub.lines.find((l) => l.startsWith("recorded ")) ?? "";
		const streams = await probe(file);
		const video = streams.find((s) => s.type === "video");
		if (!video || !(video.packets > 0)) fail(`no video in the recording: ${JSON.stringify(streams)}`);
		const errors = await decodeErrors(file);
		if (errors) fail(`ffmpeg cannot decode the recording cleanly:\n${errors.split("\n").slice(0, 5).join("\n")}`);
		const described = streams.map((s) => `${s.codec}${s.width ? ` ${s.width}x${s.height}` : ""} ${s.packets} frames`);
		return `ffprobe: ${described.join(", ")}; ffmpeg decodes it cleanly; moqt sub: "${summary}"`;
	});
	await publisher.screenshot({ path: path.join(ARTIFACTS, "camera-recorded.png"), fullPage: true });
	await publisher.close();
}
