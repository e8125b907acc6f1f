// A thin adapter over the two browser libraries of the moq-lite family, so the page can
// drive either one the same way:
//   @moq/net  0.3.4: offers moq-lite-05, -04, -03 (and older) over WebTransport, racing a
//                    WebSocket (QMux, `qmux-0N.moq-lite-0M`) on the relay's TCP port after 500 ms
//                    (at once when the browser has no WebTransport).
//   @moq/lite 0.2.2: offers moq-lite-04, -03 (and older) over WebTransport only.
// Each library is loaded on demand (a separate bundle chunk).

// The WebTransport sub-protocols each library offers when the page does not override them
// (read from the libraries' sources, for the page's explanations; the libraries set them).
const DEFAULT_PROTOCOLS = {
	net: ["moq-lite-05", "moq-lite-04", "moq-lite-03", "moql", "moqt-20", "moqt-19", "moqt-18", "moqt-17", "moqt-16", "moqt-15"],
	lite: ["moq-lite-04", "moq-lite-03", "moql", "moqt-17", "moqt-16", "moqt-15"],
};

/** The sub-protocols `lib` offers by default. */
export function defaultProtocols(lib) {
	return DEFAULT_PROTOCOLS[lib === "lite" ? "lite" : "net"];
}

/**
 * Connect to a relay over WebTransport, pinning its self-signed certificate by hash, with
 * @moq/net also over WebSocket at `websocket` (a ws:// or wss:// URL) when given.
 * @param {"net"|"lite"} lib
 * @param {URL} url  https://host:port/path
 * @param {{fingerprint?: string, protocols?: string[], websocket?: URL}} opts
 */
export async function connect(lib, url, { fingerprint, protocols, websocket } = {}) {
	const webtransport = {};
	if (fingerprint) {
		webtransport.serverCertificateHashes = [{ algorithm: "sha-256", value: hexToBytes(fingerprint) }];
	}
	if (protocols?.length) webtransport.protocols = protocols;
	const props = { webtransport, websocket: websocket ? { enabled: true, url: websocket } : { enabled: false } };
	return lib === "lite" ? connectLite(url, props) : connectNet(url, props);
}

async function connectNet(url, props) {
	const Moq = await import("@moq/net");
	const conn = await Moq.Connection.connect(url, props);
	return {
		library: "@moq/net",
		version: conn.version,
		transport: conn.transport ?? "webtransport",
		closed: conn.closed,
		close: () => conn.close(),

		async *announced() {
			const stream = conn.announced(Moq.Path.empty());
			for (;;) {
				const event = await stream.next();
				if (!event) return;
				yield { path: event.path, active: event.active };
			}
		},

		subscribe(broadcast, track, onFrame) {
			const consumer = conn.consume(Moq.Path.from(broadcast));
			const sub = consumer.subscribe(track, { priority: 0 });
			const done = readGroups(
				() => sub.recvGroup(),
				async (group, index) => (await group.readFrame())?.payload,
				onFrame,
			);
			return {
				done,
				close() {
					sub.close();
					consumer.close();
				},
			};
		},

		publish(broadcast, track) {
			const producer = new Moq.Broadcast.Producer();
			const output = producer.createTrack(track, { timescale: Moq.Time.Timescale.MICRO });
			conn.publish(Moq.Path.from(broadcast), producer);
			let group;
			return {
				startGroup() {
					group = output.appendGroup();
				},
				writeFrame(payload, sentUs) {
					group.writeFrame({ payload, timestamp: Moq.Time.Timestamp.fromMicros(sentUs) });
				},
				endGroup() {
					group?.close();
					group = undefined;
				},
				close() {
					group?.close();
					producer.close();
				},
			};
		},
	};
}

async function connectLite(url, props) {
	const Moq = await import("@moq/lite");
	const conn = await Moq.Connection.connect(url, props);
	return {
		library: "@moq/lite",
		version: conn.version,
		transport: "webtransport",
		closed: conn.closed,
		close: () => conn.close(),

		async *announced() {
			const stream = conn.announced(Moq.Path.empty());
			for (;;) {
				const event = await stream.next();
				if (!event) return;
				yield { path: event.path, active: event.active };
			}
		},

		subscribe(broadcast, track, onFrame) {
			const consumer = conn.consume(Moq.Path.from(broadcast));
			const sub = consumer.subscribe(track, 0);
			const done = readGroups(
				() => sub.recvGroup(),
				(group) => group.readFrame(),
				onFrame,
			);
			return {
				done,
				close() {
					sub.close();
					consumer.close();
				},
			};
		},

		publish(broadcast, track) {
			// @moq/lite hands us one Track per subscription the relay opens; write each group to all.
			const producer = new Moq.Broadcast();
			conn.publish(Moq.Path.from(broadcast), producer);
			const outputs = new Set();
			(async () => {
				for (;;) {
					const request = await producer.requested();
					if (!request) return;
					if (request.track.name !== track) {
						request.track.close(new Error(`unknown track ${request.track.name}`));
						continue;
					}
					outputs.add(request.track);
					request.track.closed.then(() => outputs.delete(request.track));
				}
			})();
			let groups = [];
			return {
				startGroup() {
					groups = [...outputs].map((t) => t.appendGroup());
				},
				writeFrame(payload) {
					for (const g of groups) g.writeFrame(payload);
				},
				endGroup() {
					for (const g of groups) g.close();
					groups = [];
				},
				close() {
					for (const g of groups) g.close();
					producer.close();
				},
			};
		},
	};
}

// Read every group as it arrives, each in its own loop, so a stalled group never holds
// up a newer one. Resolves when the track ends; rejects with the track's error.
async function readGroups(nextGroup, readFrame, onFrame) {
	for (;;) {
		const group = await nextGroup();
		if (!group) return;
		(async () => {
			for (let index = 0; ; index++) {
				const payload = await readFrame(group);
				if (!payload) return;
				onFrame({ group: group.sequence, index, payload });
			}
		})().catch(() => {}); // a group reset by the relay or the publisher is not fatal
	}
}

/** Hex text (any separators) to bytes. */
export function hexToBytes(hex) {
	const clean = hex.replace(/[^0-9a-fA-F]/g, "");
	const bytes = new Uint8Array(clean.length / 2);
	for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
	return bytes;
}
