// The moqt relay demo page: connect to a relay over WebTransport (or WebSocket), list the live broadcasts,
// watch a track (with end-to-end latency for test-pattern tracks, charted live), publish a test
// pattern, play hang video broadcasts with <moq-watch> and publish the camera with <moq-publish>.
//
// Query parameters (all optional):
//   url=https://127.0.0.1:4443/    relay to connect to (default: this page's host and port over https)
//   lib=net|lite                   @moq/net (offers lite-05 first) or @moq/lite (offers lite-04 first)
//   fingerprint=HEX|none           SHA-256 of the relay's certificate; default: fetched from cert=
//   cert=URL                       where to fetch the fingerprint (default http://<relay host:port>/certificate.sha256)
//   alpn=moq-lite-04,...           WebTransport sub-protocols to offer instead of the library's list
//   jwt=TOKEN                      a token for a relay that requires one (sent as ?jwt= to the relay)
//   ws=off|URL                     @moq/net's WebSocket (QMux) race: off, or this ws:// / wss:// URL
//                                  (default: the relay's host:port, ws: when this page is http:;
//                                  off when alpn= is given)
//   watch=BROADCAST&track=NAME     watch this track as soon as the broadcast is announced
//   publish=BROADCAST&ptrack=NAME&fps=N&size=BYTES&group=N   publish a test pattern at once
//   video=NAME.hang                play this hang (or NAME.msf: MSF) broadcast with <moq-watch> once connected
//   camera=NAME.hang               publish the camera with <moq-publish> once connected

import { Chart } from "./chart.js";
import { connectAny, describeAttempt, describeSource, likelyFixes, websocketUrl, withToken } from "./connect.js";
import { CameraPublisher, VideoPlayer } from "./media.js";
import * as Pattern from "./pattern.js";

const params = new URLSearchParams(location.search);
const $ = (selector) => document.querySelector(selector);

// Everything the page knows, exposed for tests as `window.demo`.
const demo = {
	library: undefined,
	url: undefined, // the relay URL connected to (or being tried)
	transport: undefined, // "webtransport" or "websocket" once connected
	fallback: undefined, // { from, to } when the page's own host failed and another family answered
	attempts: [], // failed tries of the last connect: { url, source, protocols, stage, error }
	fixes: [], // likely fixes after a failed connect, most likely first
	connected: false,
	version: undefined,
	error: undefined,
	announced: [],
	watching: undefined, // { broadcast, track, state }
	frames: 0,
	groups: 0,
	bytes: 0,
	patternFrames: 0,
	lost: 0,
	fps: 0,
	latencyMs: undefined, // { last, min, p50, p90, p99, max, samples }, after the first group
	firstLatencyMs: undefined, // the first frame's latency (the first group may replay cached frames)
	published: undefined, // { broadcast, track, frames, groups }
	chart: { points: 0, latencyPoints: 0 }, // what the live chart shows
	video: undefined, // <moq-watch>: { name, status, frames, bytes, width, height }
	camera: undefined, // <moq-publish>: { name, status, capturing }
	log: [],
};
window.demo = demo;

let session; // the adapter from moq.js
let relay; // { url, fingerprint } of the live connection, for the media elements
let subscription; // the live subscription, if any
let publisher; // the live test-pattern publisher, if any
const latencies = []; // recent latency samples (ms), a ring of at most MAX_SAMPLES
const MAX_SAMPLES = 5000;
const recent = []; // last few frames, for the table
const arrivals = []; // arrival times (ms) of recent frames, for the rate
let lastCounter;
let firstGroup;
let seenGroups = new Set();
let tickLatencies = []; // latency samples since the chart's last point
let chart; // the live chart (created in init)
let player; // the <moq-watch> player
let camera; // the <moq-publish> camera publisher
let wantVideo = params.get("video") ?? undefined; // a hang broadcast to play once connected
let wantCamera = params.get("camera") ?? undefined; // a camera broadcast to publish once connected

function log(message) {
	const line = `${new Date().toISOString().slice(11, 23)} ${message}`;
	demo.log.push(line);
	if (demo.log.length > 200) demo.log.shift();
	const pre = $("#log");
	pre.textContent = demo.log.join("\n");
	pre.scrollTop = pre.scrollHeight;
}

// ---- connection ----

function defaultRelayUrl() {
	return `https://${location.host}/`;
}

async function start(urlText, lib) {
	session?.close();
	session = undefined;
	relay = undefined;
	subscription?.close();
	subscription = undefined;
	if (demo.watching) demo.watching.state = "waiting for announcement";
	Object.assign(demo, { library: lib, url: urlText, connected: false, version: undefined, error: undefined });
	Object.assign(demo, { announced: [], attempts: [], fixes: [], fallback: undefined });
	setStatus("connecting…");
	renderProblem();
	renderAnnounced();
	let url;
	try {
		url = new URL(urlText);
	} catch {
		demo.error = `not a URL: ${urlText}`;
		setStatus("error", demo.error);
		return;
	}
	try {
		const found = await connectAny(lib, url, params, (attempt) => {
			demo.url = attempt.url;
			setStatus(`connecting to ${attempt.url}…`);
		});
		const current = found.session;
		session = current;
		// The media elements open their own sessions: they carry the token too.
		relay = { url: withToken(found.url, params), fingerprint: found.fingerprint, websocket: websocketUrl(found.url, params) };
		Object.assign(demo, {
			connected: true,
			url: found.url.toString(),
			version: current.version,
			library: current.library,
			transport: current.transport,
		});
		demo.attempts = found.attempts;
		if (found.attempts.length > 0) {
			demo.fallback = { from: url.toString(), to: found.url.toString() };
			const page = new URL(location.href);
			page.host = found.url.host;
			for (const a of found.attempts) log(`tried ${describeAttempt(a)}`);
			log(
				`${url} did not answer over WebTransport, ${found.url} did: the relay listens on that address ` +
					`family only. Next time open ${page.origin}/ (or start the relay without --listen).`,
			);
			$("#connect-form").url.value = found.url.toString();
		}
		setStatus("connected");
		renderProblem();
		log(
			`connected to ${found.url} with ${current.library} over ${current.transport}, negotiated ${current.version}; ` +
				describeSource(found.source),
		);
		current.closed.then(
			() => lost(current, "connection closed"),
			(err) => lost(current, `connection failed: ${err}`),
		);
		followAnnouncements(current);
		if (demo.watching) watchIfAnnounced();
		if (publisher) startPublishing(publisher.options);
		if (wantVideo) playVideo(wantVideo);
		if (wantCamera) startCamera(wantCamera);
	} catch (err) {
		demo.attempts = err.attempts ?? [];
		demo.fixes = demo.attempts.length ? likelyFixes(demo.attempts, location) : [];
		demo.error = `could not connect to ${url}: ${err.message}`;
		setStatus("error", demo.attempts.length ? `could not connect to ${url} (what was tried and what to change: below)` : demo.error);
		for (const a of demo.attempts) log(`tried ${describeAttempt(a)}`);
		renderProblem();
	}
}

/** The "could not connect" panel: every attempt, then the likely fixes. */
function renderProblem() {
	const box = $("#problem");
	if (demo.connected || demo.attempts.length === 0) {
		box.hidden = true;
		box.replaceChildren();
		return;
	}
	const title = document.createElement("h2");
	title.textContent = "Could not connect";
	const tried = document.createElement("ul");
	for (const a of demo.attempts) {
		const li = document.createElement("li");
		li.textContent = describeAttempt(a);
		tried.append(li);
	}
	const fixesTitle = document.createElement("p");
	fixesTitle.textContent = "Likely fixes, most likely first:";
	const fixes = document.createElement("ol");
	for (const f of demo.fixes) {
		const li = document.createElement("li");
		li.textContent = f;
		fixes.append(li);
	}
	const triedTitle = document.createElement("p");
	triedTitle.textContent = "Tried:";
	box.replaceChildren(title, triedTitle, tried, fixesTitle, fixes);
	box.hidden = false;
}

function lost(which, why) {
	if (session !== which) return;
	session = undefined;
	Object.assign(demo, { connected: false, error: why, announced: [] });
	renderAnnounced();
	setStatus("error", why);
	log(why);
}

function setStatus(text, detail) {
	const el = $("#status");
	el.textContent = detail ? `${text}: ${detail}` : text;
	el.className = text === "connected" ? "connected" : text === "error" ? "error" : "";
	$("#version").textContent = demo.connected ? `· ${demo.version} · ${demo.library} · ${demo.transport}` : "";
}

// ---- announcements ----

async function followAnnouncements(current) {
	try {
		for await (const { path, active } of current.announced()) {
			if (session !== current) return;
			const list = demo.announced.filter((p) => p !== path);
			if (active) list.push(path);
			demo.announced = list.sort();
			log(`${active ? "announced" : "unannounced"}: ${path || "(root)"}`);
			renderAnnounced();
			if (active && demo.watching?.broadcast === path) watchIfAnnounced();
		}
	} catch (err) {
		if (session === current) log(`announcements failed: ${err?.message ?? err}`);
	}
}

function renderAnnounced() {
	const ul = $("#broadcasts");
	ul.replaceChildren();
	if (demo.announced.length === 0) {
		const li = document.createElement("li");
		li.className = "empty";
		li.textContent = "none announced";
		ul.append(li);
	}
	for (const path of demo.announced) {
		const li = document.createElement("li");
		li.textContent = path;
		const button = document.createElement("button");
		button.textContent = "watch";
		button.onclick = () => {
			$("#watch-form").broadcast.value = path;
			watch(path, $("#watch-form").track.value);
		};
		li.append(button);
		// Media broadcasts announce their catalog format by the name's suffix: .hang (moq-dev's
		// hang format) or .msf (the MoQ Streaming Format); <moq-watch> reads both.
		if (path.endsWith(".hang") || path.endsWith(".msf")) {
			const play = document.createElement("button");
			play.textContent = "play video";
			play.onclick = () => {
				$("#video-form").broadcast.value = path;
				playVideo(path);
			};
			li.append(play);
		}
		ul.append(li);
	}
}

// ---- watching ----

function watch(broadcast, track) {
	subscription?.close();
	subscription = undefined;
	demo.watching = { broadcast, track, state: "waiting for announcement" };
	Object.assign(demo, { frames: 0, groups: 0, bytes: 0, patternFrames: 0, lost: 0, fps: 0 });
	Object.assign(demo, { latencyMs: undefined, firstLatencyMs: undefined });
	latencies.length = 0;
	recent.length = 0;
	arrivals.length = 0;
	lastCounter = undefined;
	firstGroup = undefined;
	seenGroups = new Set();
	tickLatencies = [];
	chart.clear();
	watchIfAnnounced();
}

// Subscribe once the wanted broadcast is announced: subscribing to a path nobody
// publishes is refused, so the page waits for the announcement instead of racing it.
function watchIfAnnounced() {
	const want = demo.watching;
	if (!want || subscription || !session || !demo.announced.includes(want.broadcast)) {
		renderWatch();
		return;
	}
	const current = session;
	want.state = "subscribed";
	log(`subscribing to ${want.broadcast} / ${want.track}`);
	const sub = current.subscribe(want.broadcast, want.track, onFrame);
	subscription = sub;
	sub.done.then(
		() => ended(sub, "track ended"),
		(err) => ended(sub, `track failed: ${err?.message ?? err}`),
	);
	renderWatch();
}

function ended(sub, why) {
	if (subscription !== sub) return;
	subscription = undefined;
	demo.watching.state = why;
	log(`${demo.watching.broadcast} / ${demo.watching.track}: ${why}`);
	renderWatch();
	// Resubscribe when the broadcast comes back (or now, if it is still announced).
	setTimeout(watchIfAnnounced, 1000);
}

function onFrame({ group, index, payload }) {
	const received = Pattern.nowMicros();
	demo.frames++;
	demo.bytes += payload.byteLength;
	if (!seenGroups.has(group)) {
		seenGroups.add(group);
		demo.groups++;
	}
	arrivals.push(received / 1000);
	const pattern = Pattern.decode(payload, received);
	if (pattern) {
		demo.patternFrames++;
		if (lastCounter !== undefined && pattern.counter > lastCounter + 1) demo.lost += pattern.counter - lastCounter - 1;
		if (lastCounter === undefined || pattern.counter > lastCounter) lastCounter = pattern.counter;
		// A new subscriber gets the current group from its start, frames the relay had cached:
		// their latency measures the join, not the path, so the statistics start at the next group.
		firstGroup ??= group;
		demo.firstLatencyMs ??= Math.round(pattern.latencyMs * 100) / 100;
		if (group !== firstGroup) {
			tickLatencies.push(pattern.latencyMs);
			latencies.push(pattern.latencyMs);
			if (latencies.length > MAX_SAMPLES) latencies.shift();
		}
	}
	recent.unshift({ group, index, bytes: payload.byteLength, counter: pattern?.counter, latencyMs: pattern?.latencyMs });
	if (recent.length > 8) recent.pop();
}

function percentile(sorted, p) {
	return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function updateStats() {
	const now = performance.timeOrigin + performance.now();
	while (arrivals.length && arrivals[0] < now - 2000) arrivals.shift();
	demo.fps = arrivals.length / 2;
	if (latencies.length) {
		const sorted = [...latencies].sort((a, b) => a - b);
		const round = (v) => Math.round(v * 100) / 100;
		demo.latencyMs = {
			last: round(latencies[latencies.length - 1]),
			min: round(sorted[0]),
			p50: round(percentile(sorted, 50)),
			p90: round(percentile(sorted, 90)),
			p99: round(percentile(sorted, 99)),
			max: round(sorted[sorted.length - 1]),
			samples: sorted.length,
		};
	}
}

/** One chart point: the median latency of the frames since the last point, and the frame rate. */
function sampleChart() {
	if (!demo.watching) return;
	const sorted = tickLatencies.sort((a, b) => a - b);
	chart.add(performance.now(), sorted.length ? percentile(sorted, 50) : undefined, demo.fps);
	tickLatencies = [];
	demo.chart = { points: chart.points.length, latencyPoints: chart.points.filter((p) => p.latency !== undefined).length };
}

function renderWatch() {
	const want = demo.watching;
	$("#watch-status").textContent = want ? `${want.broadcast} / ${want.track}: ${want.state}` : "not watching";
	const lat = demo.latencyMs;
	const ms = (v) => (v === undefined ? "–" : `${v.toFixed(1)} ms`);
	const stats = [
		["frames", demo.frames],
		["groups", demo.groups],
		["rate", `${demo.fps.toFixed(1)} fps`],
		["received", `${(demo.bytes / 1024).toFixed(1)} KiB`],
		["latency p50", ms(lat?.p50)],
		["p90", ms(lat?.p90)],
		["p99", ms(lat?.p99)],
		["max", ms(lat?.max)],
		["first frame", ms(demo.firstLatencyMs)],
		["last counter", lastCounter ?? "–"],
		["lost", demo.lost],
	];
	$("#watch-stats").replaceChildren(
		...stats.flatMap(([k, v]) => {
			const dt = document.createElement("dt");
			dt.textContent = k;
			const dd = document.createElement("dd");
			dd.textContent = v;
			dd.dataset.stat = k;
			return [dt, dd];
		}),
	);
	$("#frames tbody").replaceChildren(
		...recent.map((f) => {
			const tr = document.createElement("tr");
			for (const v of [f.group, f.index, f.bytes, f.counter ?? "–", ms(f.latencyMs)]) {
				const td = document.createElement("td");
				td.textContent = v;
				tr.append(td);
			}
			return tr;
		}),
	);
}

// ---- publishing ----

function startPublishing(options) {
	stopPublishing();
	if (!session) {
		publisher = { options }; // start once connected
		return;
	}
	const { broadcast, track, fps, size, group } = options;
	const sink = session.publish(broadcast, track);
	const state = { broadcast, track, fps, size, frames: 0, groups: 0 };
	demo.published = state;
	let counter = 0;
	const timer = setInterval(() => {
		if (counter % group === 0) {
			if (counter > 0) sink.endGroup();
			sink.startGroup();
			state.groups++;
		}
		const sentUs = Pattern.nowMicros();
		sink.writeFrame(Pattern.encode(counter, size, sentUs), sentUs);
		counter++;
		state.frames++;
	}, 1000 / fps);
	publisher = { options, sink, timer };
	log(`publishing ${broadcast} / ${track}: ${fps} fps, ${size} bytes, ${group} frames per group`);
	$("#publish-form").stop.disabled = false;
}

function stopPublishing() {
	if (!publisher) return;
	clearInterval(publisher.timer);
	publisher.sink?.close();
	if (publisher.sink) log(`stopped publishing ${publisher.options.broadcast}`);
	publisher = undefined;
	demo.published = undefined;
	$("#publish-form").stop.disabled = true;
}

function renderPublish() {
	const p = demo.published;
	$("#publish-status").textContent = p
		? `publishing ${p.broadcast} / ${p.track} at ${p.fps} fps, ${p.size} bytes: ${p.frames} frames in ${p.groups} groups sent`
		: "not publishing";
}

// ---- video (<moq-watch>) and camera (<moq-publish>) ----

function playVideo(name) {
	wantVideo = name;
	if (!relay) {
		$("#video-status").textContent = `${name}: waiting for the connection`;
		return;
	}
	log(`playing ${name} with <moq-watch>`);
	player.play(name, relay).catch((err) => log(`<moq-watch> failed: ${err?.message ?? err}`));
}

function startCamera(name) {
	wantCamera = name;
	if (!relay) {
		$("#camera-status").textContent = `${name}: waiting for the connection`;
		return;
	}
	log(`publishing the camera as ${name} with <moq-publish>`);
	camera.start(name, relay).catch((err) => log(`<moq-publish> failed: ${err?.message ?? err}`));
	$("#camera-form").stop.disabled = false;
}

function stopCamera() {
	wantCamera = undefined;
	camera.stop();
	$("#camera-form").stop.disabled = true;
}

function renderMedia() {
	demo.video = player.stats();
	demo.camera = camera.stats();
	const v = demo.video;
	if (v) {
		const size = v.width ? `${v.width}×${v.height}` : "no picture yet";
		$("#video-status").textContent = `${v.name}: ${v.status}, ${v.frames} frames decoded, ${size}, ${(v.bytes / 1024).toFixed(0)} KiB`;
	}
	const c = demo.camera;
	if (c) $("#camera-status").textContent = `${c.name}: ${c.status}${c.capturing ? ", camera on" : ", waiting for the camera"}`;
	else if (!wantCamera) $("#camera-status").textContent = "not publishing";
}

// ---- wiring ----

function init() {
	const connectForm = $("#connect-form");
	connectForm.url.value = params.get("url") ?? defaultRelayUrl();
	connectForm.lib.value = params.get("lib") === "lite" ? "lite" : "net";
	connectForm.onsubmit = (e) => {
		e.preventDefault();
		start(connectForm.url.value, connectForm.lib.value);
	};

	const watchForm = $("#watch-form");
	watchForm.broadcast.value = params.get("watch") ?? "";
	watchForm.track.value = params.get("track") ?? "pattern";
	watchForm.onsubmit = (e) => {
		e.preventDefault();
		watch(watchForm.broadcast.value, watchForm.track.value);
	};

	const publishForm = $("#publish-form");
	publishForm.broadcast.value = params.get("publish") ?? `browser-${Math.random().toString(36).slice(2, 8)}`;
	publishForm.track.value = params.get("ptrack") ?? params.get("track") ?? "pattern";
	publishForm.fps.value = params.get("fps") ?? "30";
	publishForm.size.value = params.get("size") ?? "1000";
	const publishOptions = () => {
		const fps = Math.max(1, Number(publishForm.fps.value) || 30);
		return {
			broadcast: publishForm.broadcast.value,
			track: publishForm.track.value,
			fps,
			size: Math.max(Pattern.HEADER, Number(publishForm.size.value) || 1000),
			group: Math.max(1, Number(params.get("group")) || Math.round(fps)),
		};
	};
	publishForm.onsubmit = (e) => {
		e.preventDefault();
		startPublishing(publishOptions());
	};
	publishForm.stop.onclick = stopPublishing;

	const videoForm = $("#video-form");
	videoForm.broadcast.value = params.get("video") ?? "";
	videoForm.onsubmit = (e) => {
		e.preventDefault();
		if (videoForm.broadcast.value) playVideo(videoForm.broadcast.value);
	};
	const cameraForm = $("#camera-form");
	cameraForm.broadcast.value = params.get("camera") ?? `camera-${Math.random().toString(36).slice(2, 8)}.hang`;
	cameraForm.onsubmit = (e) => {
		e.preventDefault();
		startCamera(cameraForm.broadcast.value);
	};
	cameraForm.stop.onclick = stopCamera;

	chart = new Chart($("#chart"));
	chart.draw();
	player = new VideoPlayer($("#video-player"));
	camera = new CameraPublisher($("#camera-preview"));

	setInterval(() => {
		updateStats();
		renderWatch();
		renderPublish();
		renderMedia();
	}, 250);
	setInterval(sampleChart, 500);

	if (params.get("watch")) watch(watchForm.broadcast.value, watchForm.track.value);
	if (params.get("publish")) startPublishing(publishOptions());
	start(connectForm.url.value, connectForm.lib.value);
}

init();
