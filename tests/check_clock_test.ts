import { assertEquals } from "@std/assert";
import {
  checkClockUses,
  CLOCK_ALLOWED,
  describeClockReport,
  findClockUses,
  readSources,
} from "../tools/check_clock.ts";

Deno.test("check_clock flags each raw time use on a code line, references included, and skips comments", () => {
  const cases: Array<[string, string[]]> = [
    ["const at = Date.now();", ["Date.now"]],
    ["this.#now = options.now ?? Date.now;", ["Date.now"]],
    ["const started = performance.now();", ["performance.now"]],
    ["const today = new Date().toISOString();", ["new Date()"]],
    ["const timer = setInterval(tick, 1000);", ["setInterval("]],
    ["await new Promise((r) => setTimeout(r, 5));", ["setTimeout("]],
    ["globalThis.setTimeout(done, 0);", ["setTimeout("]],
    ["const both = Date.now() - performance.now();", [
      "Date.now",
      "performance.now",
    ]],
    ["const at = new Date(session.connectedAt);", []],
    ["const at = clock.epochMs();", []],
    ["clearTimeout(this.#timer);", []],
    ["const cancel = clock.schedule(tick, 1000);", []],
    ["// Date.now() would do, but tests need the clock.", []],
    [' * const timeline = log.begin("stt", Date.now());', []],
    ["/** Epoch ms; `Date.now` by default. */", []],
  ];
  for (const [line, names] of cases) {
    assertEquals(
      findClockUses(line, "src/x.ts").map((use) => use.name),
      names,
      line,
    );
  }
});

Deno.test("check_clock reports uses outside the allow-list with file and line, and temporary entries no longer needed", () => {
  const files = new Map([
    ["src/call/clock.ts", "export const now = () => performance.now();"],
    ["src/records/store.ts", "const a = 1;\nconst b = Date.now();"],
    ["src/bots/done.ts", "const at = clock.now();"],
  ]);
  const report = checkClockUses(files, [
    { path: "src/call/clock.ts", why: "the system clock itself" },
    { path: "src/bots/done.ts", why: "being rewritten", temporary: true },
  ]);
  assertEquals(describeClockReport(report), [
    "src/records/store.ts:2: Date.now outside the injected Clock (take a Clock in the options): const b = Date.now();",
    "src/bots/done.ts: no longer uses the real clock: remove its temporary entry from CLOCK_ALLOWED in tools/check_clock.ts",
  ]);
});

Deno.test("src/ takes time only from the injected Clock, outside the allow-list", async () => {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const sources = await readSources("src", { root });
  const report = checkClockUses(sources);
  assertEquals(describeClockReport(report), []);
  // Every allowed file exists: a renamed one must not keep its entry.
  for (const entry of CLOCK_ALLOWED) {
    assertEquals(sources.has(entry.path), true, entry.path);
  }
});
