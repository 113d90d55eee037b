// Build: dist/index.js (ES module, browsers and Node) and dist/codex-ingest.min.js (a plain
// script defining the global `CodexIngest`); prints the bundle's gzipped size and fails over budget.
import { build } from "esbuild";
import { readFileSync, rmSync } from "node:fs";
import { gzipSync } from "node:zlib";

const BUDGET = 15 * 1024;
rmSync("dist", { recursive: true, force: true });
const common = { bundle: true, target: "es2020", external: ["node:*"], logLevel: "warning", legalComments: "none" };
await build({ ...common, entryPoints: ["src/index.ts", "src/signing.ts"], outdir: "dist", format: "esm", platform: "neutral", sourcemap: true });
await build({ ...common, entryPoints: ["src/index.ts"], outfile: "dist/codex-ingest.min.js", format: "iife", globalName: "CodexIngest", platform: "browser", minify: true });
const raw = readFileSync("dist/codex-ingest.min.js");
const gz = gzipSync(raw, { level: 9 }).length;
console.log(`dist/codex-ingest.min.js: ${raw.length} bytes, ${(gz / 1024).toFixed(1)} KB gzipped (budget ${BUDGET / 1024} KB)`);
if (gz > BUDGET) {
  console.error("over the size budget");
  process.exit(1);
}
