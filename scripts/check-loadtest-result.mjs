#!/usr/bin/env node
// Load-test gate: `node scripts/check-loadtest-result.mjs result.json TOTAL RATIO [--p95-ms 1000]`.
//
// Exits 0 only if exactly TOTAL requests were answered, accepted == TOTAL x RATIO, duplicates are
// the rest, there were zero 5xx and zero transport errors, and p95 latency is under 1 s.
// Otherwise it prints every reason and exits 1 (2 for unusable input).
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

/** Every way the result misses the gate (empty when it passes). */
export function problems(result, total, ratio, p95LimitMs) {
  const found = [];
  const byStatus = Object.fromEntries(Object.entries(result.by_status ?? {}).map(([k, v]) => [String(k), Number(v)]));
  const answered = Object.values(byStatus).reduce((a, b) => a + b, 0);
  const expected = Math.round(total * ratio);
  const accepted = Number(result.accepted ?? byStatus["202"] ?? 0);
  const duplicates = Number(result.duplicates ?? byStatus["200"] ?? 0);
  if (answered !== total) found.push(`answered ${answered} requests, expected exactly ${total}`);
  if (accepted !== expected) found.push(`accepted ${accepted}, expected ${expected} (= ${total} x ${ratio})`);
  if (duplicates !== total - expected) found.push(`duplicates ${duplicates}, expected ${total - expected}`);
  const serverErrors = Object.entries(byStatus).filter(([s]) => s.startsWith("5")).reduce((a, [, n]) => a + n, 0);
  if (serverErrors) found.push(`${serverErrors} server errors (5xx)`);
  const other = Object.fromEntries(Object.entries(byStatus).filter(([s]) => s !== "200" && s !== "202" && !s.startsWith("5")));
  if (Object.keys(other).length) found.push(`unexpected statuses ${JSON.stringify(other)}`);
  const transport = Number(result.transport_errors ?? 0);
  if (transport) found.push(`${transport} transport errors ${JSON.stringify(result.transport_error_types ?? {})}`);
  const p95 = result.latency_ms?.p95;
  if (p95 == null) found.push("no p95 latency in the result");
  else if (Number(p95) >= p95LimitMs) found.push(`p95 latency ${p95} ms, must be under ${p95LimitMs} ms`);
  return found;
}

function main(argv) {
  const usage = "usage: node scripts/check-loadtest-result.mjs result.json TOTAL RATIO [--p95-ms 1000]";
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { "p95-ms": { type: "string", default: "1000" } } });
  } catch (e) {
    console.error(`${usage}\n${e.message}`);
    return 2;
  }
  const [file, totalText, ratioText] = parsed.positionals;
  const total = Number(totalText), ratio = Number(ratioText), p95 = Number(parsed.values["p95-ms"]);
  if (parsed.positionals.length !== 3 || !Number.isInteger(total) || !Number.isFinite(ratio) || !Number.isFinite(p95)) {
    console.error(usage);
    return 2;
  }
  let result;
  try {
    result = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    console.log(`FAIL: cannot read ${file}: ${e.message}`);
    return 2;
  }
  if (!result || typeof result !== "object" || Array.isArray(result)) {
    console.log(`FAIL: ${file} is not a result object`);
    return 2;
  }
  const found = problems(result, total, ratio, p95);
  const answered = Object.values(result.by_status ?? {}).reduce((a, b) => a + Number(b), 0);
  const summary = `answered=${answered} accepted=${result.accepted} duplicates=${result.duplicates} p95=${result.latency_ms?.p95}ms throughput=${result.throughput_rps} req/s`;
  if (found.length) {
    console.log("FAIL: " + summary);
    for (const reason of found) console.log(`  - ${reason}`);
    return 1;
  }
  console.log("PASS: " + summary);
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) process.exit(main(process.argv.slice(2)));
