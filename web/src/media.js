// Real media with moq-dev's web components, loaded on first use (each is its own bundle chunk):
//   <moq-watch>   (@moq/watch 0.4.6): plays a broadcast in moq-dev's hang format (`NAME.hang`),
//                 decoding with WebCodecs onto a <canvas>;
//   <moq-publish> (@moq/publish 0.2.17): captures the camera and microphone, encodes them and
//                 publishes a hang broadcast.
// Both connect on their own (their own @moq/net), to the relay URL and certificate the page's own
// connection found; <moq-watch> races the same WebSocket (QMux) URL the page's connection uses
// (none with `ws=off`), <moq-publish> uses WebTransport only (see `CameraPublisher`).

import { hexToBytes } from "./moq.js";

/** The transport options both elements take for `relay = { url, fingerprint, websocket? }`. */
function configure(connection, relay) {
	connection.websocket = relay.websocket ? { enabled: true, url: relay.websocket } : { enabled: false };
	connection.webtransport = relay.fingerprint
		? { serverCertificateHashes: [{ algorithm: "sha-256", value: hexToBytes(relay.fingerprint) }] }
		: {};
}

/** A `<moq-watch>` player inside `container`, replaced on every `play`. */
export class VideoPlayer {
	constructor(container) {
		this.container = container;
		this.element = undefined;
		this.name = undefined;
	}

	/** Plays broadcast `name` from `relay`; resolves once the element is in the page. */
	async play(name, relay) {
		await import("@moq/watch/element");
		this.stop();
		const el = document.createElement("moq-watch");
		configure(el.connection, relay);
		el.setAttribute("visible", "always"); // decode even while scrolled out of view
		el.setAttribute("muted", "");
		el.setAttribute("name", name);
		el.append(document.createElement("canvas"));
		this.container.replaceChildren(el);
		el.setAttribute("url", relay.url.toString());
		this.element = el;
		this.name = name;
	}

	stop() {
		this.element?.remove();
		this.element = undefined;
		this.name = undefined;
	}

	/** `{ name, status, frames, bytes, width, height }` from the element's signals. */
	stats() {
		const el = this.element;
		if (!el) return undefined;
		const stats = el.video?.out?.stats?.peek();
		const display = el.video?.out?.display?.peek();
		return {
			name: this.name,
			status: el.connection?.status?.peek(),
			frames: stats?.frameCount ?? 0,
			bytes: stats?.bytesReceived ?? 0,
			width: display?.width,
			height: display?.height,
		};
	}
}

/** A `<moq-publish>` camera publisher inside `container`. */
export class CameraPublisher {
	constructor(container) {
		this.container = container;
		this.element = undefined;
		this.name = undefined;
	}

	/** Publishes the camera (and microphone) as broadcast `name` on `relay`. */
	async start(name, relay) {
		await import("@moq/publish/element");
		this.stop();
		const el = document.createElement("moq-publish");
		// @moq/publish 0.2.17's @moq/net (0.1.9) offers only the bare qmux tokens over WebSocket
		// (lite-01/02 SETUP negotiation), which moqt relay refuses: WebTransport only.
		configure(el.connection, { ...relay, websocket: undefined });
		el.setAttribute("name", name);
		const preview = document.createElement("video");
		preview.muted = true;
		preview.autoplay = true;
		preview.playsInline = true;
		el.append(preview);
		this.container.replaceChildren(el);
		el.setAttribute("url", relay.url.toString());
		el.setAttribute("source", "camera");
		this.element = el;
		this.name = name;
	}

	stop() {
		this.element?.remove();
		this.element = undefined;
		this.name = undefined;
	}

	/** `{ name, status, capturing }`. */
	stats() {
		const el = this.element;
		if (!el) return undefined;
		return { name: this.name, status: el.connection?.status?.peek(), capturing: !!el.video?.peek() };
	}
}
