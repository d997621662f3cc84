import { assertEquals } from "@std/assert";
import { liveTotals, plainLabel } from "../src/metrics/live_totals.ts";
import { createPlayoutCounters } from "../src/call/player.ts";
import { makeSession } from "./fakes/session.ts";

Deno.test("liveTotals sums every call's counters and counts calls by state, stopped ones in calls only", () => {
  const playout = { ...createPlayoutCounters(), framesOut: 3, clears: 1 };
  const totals = liveTotals([
    makeSession({ state: "connected", framesIn: 2, dtmfDigits: "1" }),
    makeSession({ state: "started", framesIn: 5, bytesIn: 640, playout }),
    makeSession({ state: "stopped", framesIn: 1, dtmfDigits: "#*" }),
  ]);
  assertEquals(
    [totals.calls, totals.connected, totals.started],
    [3, 1, 1],
  );
  assertEquals(
    [totals.framesIn, totals.bytesIn, totals.framesOut, totals.clears],
    [8, 640, 3, 1],
  );
  assertEquals(totals.dtmfDigits, 3);
});

Deno.test("liveTotals folds bad-frame kinds that are not plain labels into other", () => {
  const totals = liveTotals([
    makeSession({ badFrames: { invalid_json: 2, "Weird Kind!": 1 } }),
    makeSession({ badFrames: { invalid_json: 1, ["x".repeat(40)]: 4 } }),
  ]);
  assertEquals(
    Object.fromEntries(totals.badFrames),
    { invalid_json: 3, other: 5 },
  );
  const labels: Array<[string, string]> = [
    ["too_large", "too_large"],
    ["Too_large", "other"],
    ["a".repeat(32), "a".repeat(32)],
    ["a".repeat(33), "other"],
    ["", "other"],
  ];
  for (const [kind, label] of labels) assertEquals(plainLabel(kind), label);
});
