// Builds dist/widget.js (the served bundle, socket.io-client included) and
// dist/widget.core.js (same code without socket.io-client, only to measure the widget's own size).
import { build } from "esbuild";
import { gzipSync } from "node:zlib";
import { readFileSync, mkdirSync } from "node:fs";

const common = {
  entryPoints: ["src/index.js"],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2018", "chrome80", "firefox78", "safari13"],
  loader: { ".css": "text" },
  legalComments: "none",
  logLevel: "warning",
};

mkdirSync("dist", { recursive: true });
await build({ ...common, outfile: "dist/widget.js" });
await build({ ...common, outfile: "dist/widget.core.js", external: ["socket.io-client"] });

for (const file of ["dist/widget.js", "dist/widget.core.js"]) {
  const body = readFileSync(file);
  console.log(`${file}: ${(body.length / 1024).toFixed(1)} KB, ${(gzipSync(body, { level: 9 }).length / 1024).toFixed(1)} KB gzipped`);
}
