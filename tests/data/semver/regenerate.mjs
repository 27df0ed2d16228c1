// Regenerate the node-semver answers that tests/test_versions.py checks nucleus.versions against.
//
//   cd tests/data/semver && npm install --no-save semver@7 && node regenerate.mjs [--check] [--fuzz N] [--seed S]
//
// Without options: recompute every expected answer in node-semver-cases.json and
// node-semver-fuzz-cases.json for the inputs already there, with the installed `semver`, and write the
// files back (inputs untouched, so a diff shows exactly the answers that changed between releases).
// --check      write nothing; list the answers that would change; exit 1 if any would.
// --fuzz N     also replace the fuzz corpus with N freshly generated ranges x 8 versions (seeded: --seed S,
//              default 20261126), covering whitespace variants, x/X/*, partial versions, prereleases,
//              build metadata, ~>, ||, hyphen ranges and random character mutations.

import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const semver = require("semver");
const semverVersion = require("semver/package.json").version;

const here = new URL(".", import.meta.url);
const CASES = new URL("node-semver-cases.json", here);
const FUZZ = new URL("node-semver-fuzz-cases.json", here);

const args = process.argv.slice(2);
const check = args.includes("--check");
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const fuzzCount = option("--fuzz", 0);
const seed = option("--seed", 20261126);

const changes = [];
const note = (where, before, after) => {
  if (JSON.stringify(before) !== JSON.stringify(after)) changes.push(`${where}: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
  return after;
};
const validRange = (range, options) => semver.validRange(range, options);
const safe = (fn) => {
  try {
    return fn();
  } catch {
    return null;
  }
};

// -- the fixture file ------------------------------------------------------------------------------

const cases = JSON.parse(readFileSync(CASES, "utf8"));
for (const e of cases.satisfies) {
  e.expected = note(`satisfies ${e.id}`, e.expected, semver.satisfies(e.version, e.range, e.options));
}
for (const e of cases.valid_range) {
  const canonical = validRange(e.range, e.options);
  e.expected_valid = note(`validRange ${JSON.stringify(e.range)} valid`, e.expected_valid, canonical !== null);
  e.expected_canonical = note(`validRange ${JSON.stringify(e.range)}`, e.expected_canonical, canonical);
}
for (const e of cases.compare) {
  e.expected = note(`compare ${e.a} ${e.b}`, e.expected, safe(() => semver.compare(e.a, e.b, e.options)));
}
for (const e of cases.valid_version) {
  e.expected = note(`valid ${JSON.stringify(e.version.slice(0, 40))}`, e.expected, semver.valid(e.version, e.options));
}
const cross = cases.cross;
for (const r of cross.ranges) {
  const canonical = validRange(r.range);
  r.valid = note(`cross range ${JSON.stringify(r.range)} valid`, r.valid, canonical !== null);
  r.canonical = note(`cross range ${JSON.stringify(r.range)}`, r.canonical, canonical);
}
for (const v of cross.versions) {
  const parsed = semver.parse(v.version);
  v.valid = note(`cross version ${JSON.stringify(v.version)} valid`, v.valid, parsed !== null);
  v.prerelease = note(`cross version ${JSON.stringify(v.version)} prerelease`, v.prerelease, parsed !== null && parsed.prerelease.length > 0);
}
cross.matrix = cross.ranges.map((r, i) => {
  const row = cross.versions.map((v) => (semver.satisfies(v.version, r.range) ? "1" : "0")).join("");
  return note(`cross row ${i} ${JSON.stringify(r.range)}`, cross.matrix[i], row);
});
cases.meta.node_version = process.version;
cases.meta.node_semver_version = semverVersion;

// -- the fuzz corpus -------------------------------------------------------------------------------

const fuzz = JSON.parse(readFileSync(FUZZ, "utf8"));
if (fuzzCount > 0) {
  fuzz.seed = seed;
  fuzz.cases = generateFuzz(fuzzCount, seed);
}
const fresh = fuzzCount > 0; // a new corpus has no stored answers to compare with
for (const e of fuzz.cases) {
  const canonical = validRange(e.range);
  const answers = e.versions.map((v) => semver.satisfies(v, e.range));
  e.valid_range = fresh ? canonical : note(`fuzz validRange ${JSON.stringify(e.range)}`, e.valid_range, canonical);
  e.expected = fresh ? answers : note(`fuzz ${JSON.stringify(e.range)}`, e.expected, answers);
}
fuzz.node_semver_version = semverVersion;

// mulberry32: a small seeded PRNG, so a corpus can be made again exactly.
function prng(state) {
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generateFuzz(count, seedValue) {
  const random = prng(seedValue);
  const pick = (items) => items[Math.floor(random() * items.length)];
  const chance = (p) => random() < p;
  const number = () => pick(["0", "1", "2", "3", "10"]);
  const part = () => (chance(0.15) ? pick(["x", "X", "*"]) : number());
  const prerelease = () => pick(["0", "1", "2", "alpha", "alpha.1", "beta", "beta.2", "rc", "rc.1", "pre.0", "x", "a-b", "10"]);
  const build = () => `+b${pick(["0", "1", "2", "3", "10"])}`;
  const space = () => pick(["", "", "", " ", "  ", "\t"]);
  const partial = () => {
    const parts = [part()];
    if (chance(0.85)) parts.push(part());
    if (parts.length === 2 && chance(0.8)) parts.push(part());
    let text = parts.join(".");
    if (parts.length === 3 && chance(0.25)) text += `-${prerelease()}`;
    if (chance(0.08)) text += build();
    if (chance(0.05)) text = pick(["v", "=", "v="]) + text;
    return text;
  };
  const comparator = () => {
    const operator = pick(["", "", "", "<", "<=", ">", ">=", "=", "~", "~>", "^"]);
    return operator + space() + partial();
  };
  const comparatorSet = () => {
    if (chance(0.12)) return `${partial()} - ${partial()}`;
    const count = 1 + Math.floor(random() * 3);
    return Array.from({ length: count }, comparator).join(pick([" ", " ", "  "]));
  };
  const mutate = (text) => {
    const at = Math.floor(random() * (text.length + 1));
    const junk = pick(["", ".", "-", "+", "x", "0", "01", " ", "|", ">", "=", "~", "^", "*", "a"]);
    return text.slice(0, at) + junk + text.slice(at + (chance(0.5) ? 1 : 0));
  };
  const version = () => {
    let text = `${number()}.${number()}.${number()}`;
    if (chance(0.35)) text += `-${prerelease()}`;
    if (chance(0.1)) text += build();
    return text;
  };
  const out = [];
  for (let i = 0; i < count; i++) {
    const sets = 1 + (chance(0.3) ? 1 + Math.floor(random() * 2) : 0);
    let range = Array.from({ length: sets }, comparatorSet).join(pick(["||", " || ", "  ||", "|| "]));
    if (chance(0.2)) range = mutate(range);
    if (chance(0.1)) range = space() + range + space();
    out.push({ range, versions: Array.from({ length: 8 }, version), valid_range: null, expected: [] });
  }
  return out;
}

// -- report and write ------------------------------------------------------------------------------

console.log(`node ${process.version}, semver ${semverVersion}: ${changes.length} answer(s) differ from the stored ones`);
for (const line of changes.slice(0, 40)) console.log(`  ${line}`);
if (check) process.exit(changes.length ? 1 : 0);
writeFileSync(CASES, JSON.stringify(cases, null, 1));
writeFileSync(FUZZ, JSON.stringify(fuzz));
console.log("wrote node-semver-cases.json and node-semver-fuzz-cases.json");
