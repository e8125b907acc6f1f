// Prints the hex encodings @moq/qmux produces for one frame of each type, and what it decodes
// from a few hand-written frames it never encodes itself. The output is pasted into
// moqt-qmux/tests/frames.rs (the VECTORS table), which checks our encoder and decoder against it.
//
// Usage (outside the repo):
//   mkdir /tmp/qmux-npm && cd /tmp/qmux-npm && npm install @moq/qmux@0.3.3
//   node /path/to/moqt-qmux/tests/node/vectors.mjs /tmp/qmux-npm/node_modules/@moq/qmux
import path from "node:path";
import { pathToFileURL } from "node:url";

const dir = process.argv[2];
if (!dir) throw new Error("usage: node vectors.mjs <path to @moq/qmux>");
const load = (f) => import(pathToFileURL(path.join(dir, f)).href);
const Frame = await load("frame.js");
const Stream = await load("stream.js");
const { VarInt } = await load("varint.js");

const hex = (u8) => Buffer.from(u8).toString("hex");
const id = (v) => new Stream.Id(VarInt.from(v));
const vi = (v) => VarInt.from(v);
const bytes = (s) => new TextEncoder().encode(s);

const qmux = {
	stream: { type: "stream", id: id(4n), offset: 0n, data: bytes("hi"), fin: false },
	stream_fin_offset: { type: "stream", id: id(2n), offset: 70000n, data: bytes("bye"), fin: true },
	stream_fin_empty: { type: "stream", id: id(3n), offset: 5n, data: new Uint8Array(), fin: true },
	reset_stream: { type: "reset_stream", id: id(4n), code: vi(42), finalSize: 1000n },
	stop_sending: { type: "stop_sending", id: id(7n), code: vi(300) },
	connection_close: { type: "connection_close", code: vi(10), reason: "bad" },
	application_close: { type: "application_close", code: vi(0), reason: "bye" },
	max_data: { type: "max_data", max: 1048576n },
	max_stream_data: { type: "max_stream_data", id: id(4n), max: 262144n },
	max_streams_bidi: { type: "max_streams_bidi", max: 100n },
	max_streams_uni: { type: "max_streams_uni", max: 10000n },
	data_blocked: { type: "data_blocked", limit: 1048576n },
	stream_data_blocked: { type: "stream_data_blocked", id: id(8n), limit: 16n },
	streams_blocked_bidi: { type: "streams_blocked_bidi", limit: 100n },
	streams_blocked_uni: { type: "streams_blocked_uni", limit: 7n },
	ping_request: { type: "ping_request", sequence: 0n },
	ping_response: { type: "ping_response", sequence: 300n },
	datagram: { type: "datagram", data: bytes("dgram") },
	params_recommended: { type: "transport_parameters", params: Frame.RECOMMENDED_TRANSPORT_PARAMS },
	params_recommended_qmux02: {
		type: "transport_parameters",
		params: { ...Frame.RECOMMENDED_TRANSPORT_PARAMS, resetStreamAt: true },
	},
	params_qmux00: {
		type: "transport_parameters",
		params: { ...Frame.RECOMMENDED_TRANSPORT_PARAMS, maxDatagramFrameSize: 0n },
	},
	params_default: { type: "transport_parameters", params: Frame.DEFAULT_TRANSPORT_PARAMS },
};
const legacy = {
	legacy_stream: { type: "stream", id: id(4n), data: bytes("hi"), fin: false },
	legacy_stream_fin: { type: "stream", id: id(8n), data: bytes("bye"), fin: true },
	legacy_reset_stream: { type: "reset_stream", id: id(4n), code: vi(42), finalSize: 0n },
	legacy_stop_sending: { type: "stop_sending", id: id(4n), code: vi(7) },
	legacy_connection_close: { type: "connection_close", code: vi(10), reason: "bad" },
	legacy_application_close: { type: "application_close", code: vi(1), reason: "bye" },
};

const out = {};
for (const [name, f] of Object.entries(qmux)) out[name] = hex(Frame.encode(f, "qmux-01"));
for (const [name, f] of Object.entries(legacy)) out[name] = hex(Frame.encode(f, "webtransport"));

// Frames @moq/qmux decodes but never encodes: what it makes of them.
const show = (f) =>
	JSON.stringify(f, (_, v) =>
		typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? hex(v) : v instanceof VarInt ? v.value.toString() : v,
	);
const decodeOnly = {
	reset_stream_at: "24042a406405", // id 4, code 42, final size 100, reliable size 5
	stream_no_offset: "0a0402686900", // LEN only (older senders) + PADDING
	stream_no_len: "0c040568656c6c6f", // OFF only: payload to the end
	datagram_no_len: "306869", // 0x30: payload to the end
	record_two_frames: "1080100000124064",
};
for (const [name, h] of Object.entries(decodeOnly)) {
	out[`decoded_${name}`] = show(Frame.decodeRecord(Buffer.from(h, "hex")));
}
console.log(JSON.stringify(out, null, 1));
