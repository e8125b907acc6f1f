// The moqt test pattern, shared with `moqt pub` / `moqt sub --stats`:
// each frame is an 8-byte big-endian send time (microseconds since the Unix epoch),
// an 8-byte big-endian frame counter, then zero padding up to the frame size.

export const HEADER = 16;

/** Wall-clock time in microseconds since the Unix epoch, with sub-millisecond precision. */
export function nowMicros() {
	return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/** Build one test-pattern frame. */
export function encode(counter, size, sentUs = nowMicros()) {
	const payload = new Uint8Array(Math.max(HEADER, size));
	const view = new DataView(payload.buffer);
	view.setBigUint64(0, BigInt(sentUs));
	view.setBigUint64(8, BigInt(counter));
	return payload;
}

/**
 * Read a frame as a test pattern. Returns undefined when the payload is too short
 * or its send time is not within an hour of now (then it is not a test pattern).
 */
export function decode(payload, receivedUs = nowMicros()) {
	if (payload.byteLength < HEADER) return undefined;
	const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
	const sentUs = Number(view.getBigUint64(0));
	const counter = Number(view.getBigUint64(8));
	const latencyUs = receivedUs - sentUs;
	if (Math.abs(latencyUs) > 3600e6) return undefined;
	return { sentUs, counter, latencyMs: latencyUs / 1000 };
}
