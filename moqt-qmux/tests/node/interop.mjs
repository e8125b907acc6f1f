// Interop run: @moq/qmux's Session (the code browsers use) against moqt-qmux, over a pipe
// that stands in for the WebSocket (each message framed as a big-endian u32 length + bytes).
// The Rust side is the `stdio_peer` example, an echo peer.
//
// Usage (outside the repo for the npm package):
//   mkdir /tmp/qmux-npm && cd /tmp/qmux-npm && npm install @moq/qmux@0.3.3
//   cargo build -p moqt-qmux --example stdio_peer
//   node moqt-qmux/tests/node/interop.mjs /tmp/qmux-npm/node_modules/@moq/qmux target/debug/examples/stdio_peer
// Runs every version, with @moq/qmux as the client and as the server. Exits non-zero on any
// mismatch.
import { spawn } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";

// Node < 22 lacks Promise.withResolvers, which @moq/qmux uses.
Promise.withResolvers ??= function () {
	let resolve;
	let reject;
	const promise = new Promise((res, rej) => {
		resolve = res;
		reject = rej;
	});
	return { promise, resolve, reject };
};

const [dir, peer] = process.argv.slice(2);
let lastStderr = "";
process.on("unhandledRejection", (e) => { console.error("unhandled:", e.message, "\npeer:", lastStderr); process.exit(1); });
if (!dir || !peer) throw new Error("usage: node interop.mjs <path to @moq/qmux> <stdio_peer binary>");
const { default: Session } = await import(pathToFileURL(path.join(dir, "index.js")).href);

/** A WebSocketStream look-alike over a child process's stdio. */
function pipeSocket(child, protocol) {
	let closedResolve;
	const closed = new Promise((r) => {
		closedResolve = r;
	});
	let pending = Buffer.alloc(0);
	const readable = new ReadableStream({
		start(controller) {
			child.stdout.on("data", (chunk) => {
				pending = Buffer.concat([pending, chunk]);
				while (pending.length >= 4) {
					const len = pending.readUInt32BE(0);
					if (pending.length < 4 + len) break;
					controller.enqueue(new Uint8Array(pending.subarray(4, 4 + len)));
					pending = pending.subarray(4 + len);
				}
			});
			child.stdout.on("end", () => {
				try {
					controller.close();
				} catch {}
				closedResolve({ closeCode: 1000, reason: "" });
			});
		},
	});
	const writable = new WritableStream({
		write(chunk) {
			const head = Buffer.alloc(4);
			head.writeUInt32BE(chunk.byteLength, 0);
			child.stdin.write(Buffer.concat([head, Buffer.from(chunk)]));
		},
		close() {
			child.stdin.end();
		},
	});
	return {
		opened: Promise.resolve({ readable, writable, protocol, extensions: "" }),
		closed,
		close() {
			child.stdin.end();
		},
	};
}

function pattern(seed, len) {
	const out = new Uint8Array(len);
	for (let i = 0; i < len; i++) out[i] = (seed * 31 + i * 7) % 251;
	return out;
}

async function readAll(readable) {
	const reader = readable.getReader();
	const parts = [];
	let total = 0;
	for (;;) {
		const { value, done } = await reader.read();
		if (done) break;
		parts.push(value);
		total += value.byteLength;
	}
	const out = new Uint8Array(total);
	let off = 0;
	for (const p of parts) {
		out.set(p, off);
		off += p.byteLength;
	}
	return out;
}

function equal(a, b) {
	return a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);
}

async function writeAll(writable, data) {
	const w = writable.getWriter();
	for (let off = 0; off < data.byteLength; off += 50_000) {
		await w.write(data.subarray(off, off + 50_000));
	}
	await w.close();
}

async function run(protocol, jsRole) {
	const child = spawn(peer, [protocol, jsRole === "client" ? "server" : "client"], {
		stdio: ["pipe", "pipe", "pipe"],
	});
	let stderr = "";
	child.stderr.on("data", (d) => {
		stderr += d;
		lastStderr = stderr;
	});
	const exited = new Promise((r) => child.on("exit", (code) => r(code)));
	const socket = pipeSocket(child, protocol);
	const session = jsRole === "client" ? new Session(socket) : Session.accept(socket);
	await session.ready;

	// 30 uni streams of 60-118 kB: 2.6 MB in all, beyond the 1 MiB connection window.
	const uniCount = 30;
	const sizes = Array.from({ length: uniCount }, (_, i) => 60_000 + i * 2_000);
	// Read every echoed stream at once: connection credit only comes back as data is read,
	// so reading them one after the other could starve the later ones.
	const echoed = (async () => {
		const all = [];
		const reader = session.incomingUnidirectionalStreams.getReader();
		while (all.length < uniCount) {
			const { value } = await reader.read();
			all.push(readAll(value));
		}
		reader.releaseLock();
		return Promise.all(all);
	})();
	await Promise.all(
		sizes.map(async (len, i) => {
			const w = await session.createUnidirectionalStream();
			await writeAll(w, pattern(i, len));
		}),
	);
	const back = await echoed;
	const want = sizes.map((len, i) => pattern(i, len));
	for (const b of back) {
		if (!want.some((w) => equal(w, b))) throw new Error(`${protocol}/${jsRole}: uni echo mismatch (${b.byteLength} bytes)`);
	}

	// 4 bidi streams of 400 kB each (beyond the 256 kB stream window), echoed on themselves.
	await Promise.all(
		[0, 1, 2, 3].map(async (i) => {
			const { readable, writable } = await session.createBidirectionalStream();
			const data = pattern(100 + i, 400_000);
			const [, got] = await Promise.all([writeAll(writable, data), readAll(readable)]);
			if (!equal(got, data)) throw new Error(`${protocol}/${jsRole}: bidi echo mismatch`);
		}),
	);

	// Datagrams (record versions only).
	let datagrams = "n/a";
	if (session.datagrams.maxDatagramSize > 0) {
		const reader = session.datagrams.readable.getReader();
		const writer = session.datagrams.writable.getWriter();
		await writer.write(new Uint8Array([1, 2, 3]));
		const { value } = await reader.read();
		if (!equal(value, new Uint8Array([1, 2, 3]))) throw new Error(`${protocol}/${jsRole}: datagram mismatch`);
		datagrams = "ok";
		reader.releaseLock();
		writer.releaseLock();
	}

	session.close({ closeCode: 7, reason: "done" });
	const code = await exited;
	if (code !== 0 || !stderr.includes("closed by peer with code 7")) {
		throw new Error(`${protocol}/${jsRole}: peer exit ${code}: ${stderr}`);
	}
	console.log(`${protocol} js=${jsRole}: ${uniCount} uni + 4 bidi echoed, datagrams ${datagrams}; ${stderr.trim()}`);
}

for (const protocol of ["qmux-02.moq-lite-05", "qmux-01.moq-lite-05", "qmux-00.moq-lite-05", "webtransport"]) {
	for (const role of ["client", "server"]) {
		await run(protocol, role);
	}
}
console.log("interop ok");
process.exit(0);
