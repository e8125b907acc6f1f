// A small live chart drawn by hand on a <canvas>: end-to-end latency (ms, left axis) and frame
// rate (fps, right axis) over the last minute, one point per sample.

const WINDOW_MS = 60_000;
const COLORS = { latency: "#c0392b", fps: "#2471a3", grid: "#e4e4e4", text: "#555" };

export class Chart {
	/** @param {HTMLCanvasElement} canvas */
	constructor(canvas) {
		this.canvas = canvas;
		/** @type {{t: number, latency?: number, fps: number}[]} */
		this.points = [];
	}

	/** Forgets every point (a new track is being watched). */
	clear() {
		this.points.length = 0;
		this.draw();
	}

	/** Adds a sample taken at `t` (ms): `latency` (ms, or undefined when no frame measured it) and `fps`. */
	add(t, latency, fps) {
		this.points.push({ t, latency, fps });
		while (this.points.length && this.points[0].t < t - WINDOW_MS) this.points.shift();
		this.draw();
	}

	draw() {
		const canvas = this.canvas;
		const ratio = window.devicePixelRatio || 1;
		const width = canvas.clientWidth || 420;
		const height = canvas.clientHeight || 170;
		if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
		if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
		const ctx = canvas.getContext("2d");
		ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
		ctx.clearRect(0, 0, width, height);
		ctx.font = "11px system-ui, sans-serif";

		const pad = { left: 44, right: 40, top: 18, bottom: 20 };
		const plotW = width - pad.left - pad.right;
		const plotH = height - pad.top - pad.bottom;
		const now = this.points.at(-1)?.t ?? 0;
		const x = (t) => pad.left + plotW * (1 - (now - t) / WINDOW_MS);

		const latencies = this.points.map((p) => p.latency).filter((v) => v !== undefined);
		const maxLatency = niceCeil(Math.max(1, ...latencies) * 1.1);
		const maxFps = niceCeil(Math.max(1, ...this.points.map((p) => p.fps)) * 1.1);
		const yLatency = (v) => pad.top + plotH * (1 - v / maxLatency);
		const yFps = (v) => pad.top + plotH * (1 - v / maxFps);

		// Grid and axis labels: four bands, both scales.
		ctx.strokeStyle = COLORS.grid;
		ctx.lineWidth = 1;
		for (let i = 0; i <= 4; i++) {
			const y = pad.top + (plotH * i) / 4;
			ctx.beginPath();
			ctx.moveTo(pad.left, y);
			ctx.lineTo(pad.left + plotW, y);
			ctx.stroke();
			ctx.fillStyle = COLORS.latency;
			ctx.textAlign = "right";
			ctx.fillText(label(maxLatency * (1 - i / 4)), pad.left - 4, y + 4);
			ctx.fillStyle = COLORS.fps;
			ctx.textAlign = "left";
			ctx.fillText(label(maxFps * (1 - i / 4)), pad.left + plotW + 4, y + 4);
		}
		ctx.fillStyle = COLORS.text;
		ctx.textAlign = "center";
		for (const s of [60, 45, 30, 15, 0]) {
			ctx.fillText(s === 0 ? "now" : `-${s}s`, pad.left + plotW * (1 - s / 60), height - 5);
		}
		ctx.textAlign = "left";
		ctx.fillStyle = COLORS.latency;
		ctx.fillText("latency ms", pad.left, 12);
		ctx.fillStyle = COLORS.fps;
		ctx.textAlign = "right";
		ctx.fillText("frames/s", pad.left + plotW, 12);

		if (this.points.length === 0) {
			ctx.fillStyle = COLORS.text;
			ctx.textAlign = "center";
			ctx.fillText("watch a track to see its latency and frame rate", pad.left + plotW / 2, pad.top + plotH / 2);
			return;
		}
		line(ctx, this.points, (p) => p.fps, x, yFps, COLORS.fps);
		line(ctx, this.points, (p) => p.latency, x, yLatency, COLORS.latency);
	}
}

/** A polyline through the defined values, broken where a value is missing. */
function line(ctx, points, value, x, y, color) {
	ctx.strokeStyle = color;
	ctx.lineWidth = 2;
	ctx.beginPath();
	let open = false;
	for (const p of points) {
		const v = value(p);
		if (v === undefined) {
			open = false;
			continue;
		}
		if (open) ctx.lineTo(x(p.t), y(v));
		else ctx.moveTo(x(p.t), y(v));
		open = true;
	}
	ctx.stroke();
}

/** The next 1, 2, 4 or 8 times a power of ten at or above v (so quarter ticks stay round). */
function niceCeil(v) {
	const base = 10 ** Math.floor(Math.log10(v));
	for (const m of [1, 2, 4, 8, 10]) if (m * base >= v) return m * base;
	return 10 * base;
}

function label(v) {
	return String(Number(v.toFixed(2)));
}
