// Bundle the demo page into dist/: app.js (plus one lazily loaded chunk per library),
// index.html and style.css. `node build.mjs` (npm run build).
import { copyFile, mkdir, rm } from "node:fs/promises";
import * as esbuild from "esbuild";

const dist = new URL("./dist/", import.meta.url);
const src = new URL("./src/", import.meta.url);

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await esbuild.build({
	entryPoints: { app: new URL("main.js", src).pathname },
	outdir: dist.pathname,
	bundle: true,
	splitting: true,
	format: "esm",
	target: "es2022",
	minify: true,
	sourcemap: true,
	chunkNames: "chunks/[name]-[hash]",
	logLevel: "info",
});
for (const file of ["index.html", "style.css"]) await copyFile(new URL(file, src), new URL(file, dist));
