// Finding the relay: which URLs to try, where each one's certificate fingerprint comes from, and
// what to tell the user when none of them connects.
//
// A page opened as http://localhost:PORT/ reaches the relay's HTTP side over TCP whichever address
// family the relay listens on (the browser tries both), but WebTransport over QUIC goes to one
// address only. A relay bound to 127.0.0.1 (or ::1) alone is then unreachable as "localhost", so
// the page retries the same port on 127.0.0.1 and [::1] before it gives up.

import { connect, defaultProtocols } from "./moq.js";

/** The URLs to try for `url`, in order: itself, then each loopback family when it says "localhost". */
export function candidates(url) {
	const list = [url];
	if (url.hostname === "localhost") {
		for (const host of ["127.0.0.1", "[::1]"]) {
			const other = new URL(url);
			other.hostname = host;
			list.push(other);
		}
	}
	return list;
}

/**
 * `url` with the page's `jwt=` token (its own query parameter) added, for a relay that requires
 * one; a `jwt` already in `url` wins. The token travels in the WebTransport URL's query.
 */
export function withToken(url, params) {
	const jwt = params.get("jwt");
	if (!jwt || url.searchParams.has("jwt")) return url;
	const out = new URL(url);
	out.searchParams.set("jwt", jwt);
	return out;
}

/**
 * The WebSocket URL @moq/net races against WebTransport for `url`, from the page's `ws=`
 * parameter (`off`, or a ws:// / wss:// URL); by default the relay's own host, port and path
 * over `ws:` when this page was loaded over plain http (a development relay), `wss:` otherwise.
 * An `alpn=` list pins the WebTransport protocols, so it turns the race off unless `ws=URL`
 * asks for it. The token (`jwt=`) travels in its query as with WebTransport.
 */
export function websocketUrl(url, params, page = window.location) {
	const given = params.get("ws");
	if (given === "off" || (!given && params.get("alpn"))) return undefined;
	const out = given ? new URL(given) : new URL(url);
	if (!given) out.protocol = page.protocol === "http:" ? "ws:" : "wss:";
	return withToken(out, params);
}

/**
 * Where the certificate fingerprint for `url` comes from, as `{ how, certUrl? }`, from the
 * page's query parameters (`fingerprint=HEX|none`, `cert=URL`).
 */
export function fingerprintSource(url, params) {
	const given = params.get("fingerprint");
	if (given === "none") return { how: "none" };
	if (given) return { how: "parameter" };
	return { how: "fetched", certUrl: params.get("cert") ?? `http://${url.host}/certificate.sha256` };
}

/** Describes a fingerprint source for people. */
export function describeSource(source) {
	switch (source.how) {
		case "none":
			return "no pinned fingerprint (fingerprint=none): the browser must trust the certificate";
		case "parameter":
			return "fingerprint from the page's fingerprint= parameter";
		default:
			return `fingerprint fetched from ${source.certUrl}`;
	}
}

async function fingerprint(url, params, source) {
	if (source.how === "none") return undefined;
	if (source.how === "parameter") return params.get("fingerprint");
	let response;
	try {
		response = await fetch(source.certUrl);
	} catch (err) {
		throw Object.assign(new Error(`cannot fetch ${source.certUrl}: ${err?.message ?? err}`), { stage: "fingerprint" });
	}
	if (!response.ok) {
		throw Object.assign(new Error(`${source.certUrl}: HTTP ${response.status}`), { stage: "fingerprint" });
	}
	return (await response.text()).trim();
}

/**
 * Connects to the first of `candidates(url)` that answers. Resolves `{ session, url, fingerprint,
 * source, attempts }` (the failed tries before it),
 * or rejects with an Error whose `attempts` lists every try as `{ url, source, protocols, stage,
 * error }` (stage: "fingerprint" or "webtransport").
 */
export async function connectAny(lib, url, params, onAttempt = () => {}) {
	const protocols = params.get("alpn")?.split(",").filter(Boolean);
	const attempts = [];
	for (const candidate of candidates(url)) {
		const source = fingerprintSource(candidate, params);
		const attempt = { url: candidate.toString(), source, protocols: protocols ?? defaultProtocols(lib), custom: !!protocols };
		onAttempt(attempt);
		try {
			const fp = await fingerprint(candidate, params, source);
			try {
				const websocket = lib === "net" ? websocketUrl(candidate, params) : undefined;
				const session = await connect(lib, withToken(candidate, params), { fingerprint: fp, protocols, websocket });
				return { session, url: candidate, fingerprint: fp, source, attempts };
			} catch (err) {
				// connect() races its transports with Promise.any: report the first real cause.
				const cause = err instanceof AggregateError ? err.errors[0] : err;
				throw Object.assign(new Error(String(cause?.message ?? cause)), { stage: "webtransport" });
			}
		} catch (err) {
			attempts.push({ ...attempt, stage: err.stage ?? "webtransport", error: err.message });
		}
	}
	throw Object.assign(new Error(attempts.at(-1)?.error ?? "no attempt"), { attempts });
}

/**
 * The likely fixes for a set of failed attempts, most likely first, as plain sentences.
 * `page` is the page's own location.
 */
export function likelyFixes(attempts, page) {
	const fixes = [];
	const port = new URL(attempts[0].url).port || "443";
	const httpFailed = attempts.every((a) => a.stage === "fingerprint");
	const wtFailed = attempts.filter((a) => a.stage === "webtransport");
	if (httpFailed) {
		fixes.push(
			`Nothing answered HTTP at ${attempts.map((a) => a.source.certUrl).join(" or ")}: is \`moqt relay\` running on port ${port}? ` +
				"Start it with `cargo run --release --bin moqt -- relay` (it listens on [::]:4443, both address families) " +
				"and open the page URL it prints.",
		);
	}
	if (wtFailed.length > 0) {
		const triedLocalhost = attempts.some((a) => new URL(a.url).hostname === "localhost");
		if (triedLocalhost) {
			fixes.push(
				"If the relay was started with --listen 127.0.0.1:PORT or [::1]:PORT, it listens on one address family " +
					`only: open http://127.0.0.1:${port}/ (or http://[::1]:${port}/) instead of localhost, or start the ` +
					"relay without --listen ([::]:4443 takes both families).",
			);
		}
		if (wtFailed.some((a) => a.source.how === "fetched")) {
			fixes.push(
				`The relay's HTTP side (TCP ${port}) answered but WebTransport (UDP ${port}) did not: check that UDP ` +
					`port ${port} is not blocked by a firewall and that the relay listening there is \`moqt relay\` ` +
					"(its output says `listening on … (udp: raw QUIC + WebTransport; tcp: http)`).",
			);
		}
		if (wtFailed.some((a) => a.source.how === "parameter")) {
			fixes.push(
				"The fingerprint= parameter must be the relay's current certificate fingerprint: a generated " +
					"certificate changes at every relay start (`certificate sha256 …` in its output); drop the " +
					"parameter to fetch it from the relay.",
			);
		}
		if (wtFailed.some((a) => a.source.how === "none")) {
			fixes.push(
				"With fingerprint=none the browser must trust the relay's certificate (a CA-signed one); a " +
					"self-signed relay needs its fingerprint pinned (drop fingerprint=none).",
			);
		}
		fixes.push(
			"A pinned certificate must be ECDSA and valid for at most 14 days (`moqt relay` generates such " +
				"certificates; with --tls-cert use one like them).",
		);
		const protocols =
			`The relay must accept one of the offered protocols (${attempts[0].protocols.join(", ")}): ` +
			"`moqt relay --version …` restricts what it accepts" +
			(attempts[0].custom ? "; the page's alpn= parameter restricts what it offers." : ".");
		// A hand-picked protocol list is the most likely culprit when the page was told to use one.
		if (attempts[0].custom) fixes.unshift(protocols);
		else fixes.push(protocols);
	}
	if (!window.isSecureContext) {
		fixes.unshift(
			`This page (${page.origin}) is not a secure context, so the browser offers no WebTransport: open it as ` +
				"http://localhost:PORT/, http://127.0.0.1:PORT/ or over https.",
		);
	}
	return fixes;
}

/** One line per attempt: URL, fingerprint source, protocols offered, the browser's message. */
export function describeAttempt(a) {
	const what = a.stage === "fingerprint" ? "fingerprint fetch failed" : "WebTransport failed";
	return `${a.url}: ${describeSource(a.source)}; offered ${a.protocols.join(", ")} → ${what}: ${a.error}`;
}
