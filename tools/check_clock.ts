/**
 * Checks that code under `src/` takes time from the injected `Clock`
 * (`src/call/clock.ts`): no `Date.now`, `performance.now`, `new Date()`,
 * `setTimeout(` or `setInterval(` outside {@linkcode CLOCK_ALLOWED}. Run by
 * `deno task check`:
 *
 * ```sh
 * deno run --allow-read tools/check_clock.ts
 * ```
 *
 * Comment lines (`//`, `/*`, ` *`) are skipped: examples in doc comments
 * may show the real clock. Browser code (`src/console/static/`, `.js`) is
 * not scanned. Exits 1 listing each use, and each temporary allow-list entry
 * that no longer matches anything (so that the list only shrinks).
 *
 * @module
 */

import { listFiles } from "./list_files.ts";

/** A kind of raw time use, and how to find it on a line. */
export interface ClockPattern {
  /** Its name, as the report quotes it. */
  name: string;
  /** Matches it on one line of code. */
  pattern: RegExp;
}

/** What the check forbids outside the allow-list. */
export const CLOCK_PATTERNS: readonly ClockPattern[] = [
  // A reference counts too: `options.now ?? Date.now` is the real clock.
  { name: "Date.now", pattern: /\bDate\.now\b/ },
  { name: "performance.now", pattern: /\bperformance\.now\b/ },
  { name: "new Date()", pattern: /\bnew Date\(\s*\)/ },
  { name: "setTimeout(", pattern: /\bsetTimeout\(/ },
  { name: "setInterval(", pattern: /\bsetInterval\(/ },
];

/** A file allowed the real clock, and why. */
export interface ClockAllowance {
  /** Its path from the project root. */
  path: string;
  /** Why it may. */
  why: string;
  /**
   * True for a file of work still in progress on another branch: reported
   * once it no longer needs the entry, so the integrator removes it.
   */
  temporary?: boolean;
}

/**
 * The files that may use the real clock: the clock itself and the
 * composition roots that choose it, plus, temporarily, files other helpers
 * are rewriting on their branches (see each entry).
 */
export const CLOCK_ALLOWED: readonly ClockAllowance[] = [
  { path: "src/call/clock.ts", why: "the system clock itself" },
  { path: "src/server.ts", why: "composition root: picks the clock" },
  { path: "src/serve.ts", why: "composition root: picks the clock" },
];

/** One raw time use found. */
export interface ClockUse {
  /** The file, from the project root. */
  path: string;
  /** Its line, from 1. */
  line: number;
  /** Which {@linkcode CLOCK_PATTERNS} entry. */
  name: string;
  /** The line, trimmed. */
  text: string;
}

/**
 * The raw time uses in `source`, the text of the file at `path`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { findClockUses } from "./check_clock.ts";
 *
 * const source = [
 *   "/** Epoch ms; `Date.now()` in the docs is fine. *\/",
 *   "const now = options.now ?? Date.now;",
 *   "const at = clock.epochMs();",
 * ].join("\n");
 * assertEquals(findClockUses(source, "src/x.ts"), [{
 *   path: "src/x.ts",
 *   line: 2,
 *   name: "Date.now",
 *   text: "const now = options.now ?? Date.now;",
 * }]);
 * ```
 */
export function findClockUses(source: string, path: string): ClockUse[] {
  const uses: ClockUse[] = [];
  source.split("\n").forEach((raw, index) => {
    const text = raw.trim();
    if (/^(\/\/|\/\*|\*)/.test(text)) return;
    for (const { name, pattern } of CLOCK_PATTERNS) {
      if (pattern.test(text)) uses.push({ path, line: index + 1, name, text });
    }
  });
  return uses;
}

/** What {@linkcode checkClockUses} found wrong. */
export interface ClockReport {
  /** Uses outside the allow-list. */
  uses: ClockUse[];
  /** Temporary allow-list entries whose file no longer uses the real clock. */
  stale: ClockAllowance[];
}

/**
 * Checks `files` (path → source) against `allowed`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { checkClockUses } from "./check_clock.ts";
 *
 * const report = checkClockUses(
 *   new Map([["src/a.ts", "setInterval(tick, 1000);"], ["src/b.ts", ""]]),
 *   [{ path: "src/b.ts", why: "being rewritten", temporary: true }],
 * );
 * assertEquals(report.uses.map((use) => `${use.path}:${use.line}`), ["src/a.ts:1"]);
 * assertEquals(report.stale.map((entry) => entry.path), ["src/b.ts"]);
 * ```
 */
export function checkClockUses(
  files: ReadonlyMap<string, string>,
  allowed: readonly ClockAllowance[] = CLOCK_ALLOWED,
): ClockReport {
  const allowedPaths = new Set(allowed.map((entry) => entry.path));
  const uses: ClockUse[] = [];
  const using = new Set<string>();
  for (const [path, source] of files) {
    const found = findClockUses(source, path);
    if (found.length > 0) using.add(path);
    if (!allowedPaths.has(path)) uses.push(...found);
  }
  const stale = allowed.filter((entry) =>
    entry.temporary && !using.has(entry.path)
  );
  return { uses, stale };
}

/** Reads every `.ts` file under `dir` (relative to `root`), by path from `root`. */
export async function readSources(
  dir: string,
  options: { root: string },
): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const path of await listFiles(dir, { match: /\.ts$/, ...options })) {
    files.set(path, await Deno.readTextFile(`${options.root}/${path}`));
  }
  return files;
}

/** The report as lines for a person, empty when all is well. */
export function describeClockReport(report: ClockReport): string[] {
  return [
    ...report.uses.map((use) =>
      `${use.path}:${use.line}: ${use.name} outside the injected Clock (take a Clock in the options): ${use.text}`
    ),
    ...report.stale.map((entry) =>
      `${entry.path}: no longer uses the real clock: remove its temporary entry from CLOCK_ALLOWED in tools/check_clock.ts`
    ),
  ];
}

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const report = checkClockUses(await readSources("src", { root }));
  const problems = describeClockReport(report);
  // deno-lint-ignore no-console -- a CLI's report
  for (const problem of problems) console.error(problem);
  if (problems.length > 0) Deno.exit(1);
  const temporary = CLOCK_ALLOWED.filter((entry) => entry.temporary).length;
  // deno-lint-ignore no-console -- a CLI's report
  console.log(
    `Clock OK: no raw time in src/ outside the allow-list (${temporary} temporary entries)`,
  );
}
