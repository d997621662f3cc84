/** The deadline sweep, one rule per test, on a fake clock. */
import { assertEquals } from "@std/assert";
import {
  type CallDeadlines,
  DeadlineSweep,
  sweepIntervalMs,
  type SweptCall,
} from "../src/call/deadline_sweep.ts";
import type { CallState } from "../src/call/call_snapshot.ts";
import { SessionRegistry } from "../src/call/registry.ts";
import { loadConfig } from "../src/config.ts";
import { createApp } from "../src/server.ts";
import { FakeClock } from "./fakes/clock.ts";
import { makeSession } from "./fakes/session.ts";

const DEADLINES: CallDeadlines = {
  idleMs: 60_000,
  handshakeMs: 10_000,
  maxCallMs: 3_600_000,
};

/** A call connected at the clock's current time that records how it ended. */
class TestCall implements SweptCall {
  readonly connectedAt: number;
  lastActivity: number;
  state: CallState;
  endedWith: string[] = [];
  #calls: Set<TestCall>;

  constructor(clock: FakeClock, calls: Set<TestCall>, state: CallState) {
    this.connectedAt = clock.epochMs();
    this.lastActivity = clock.epochMs();
    this.state = state;
    this.#calls = calls;
    calls.add(this);
  }

  end(reason: string): void {
    this.endedWith.push(reason);
    this.#calls.delete(this);
  }
}

function sweepOn(clock: FakeClock, deadlines = DEADLINES) {
  const calls = new Set<TestCall>();
  const sweep = new DeadlineSweep({ calls: () => calls, clock, deadlines });
  return { calls, sweep };
}

/** Advances `clock` by `totalMs` in steps, calling `step` after each. */
async function advanceBy(
  clock: FakeClock,
  totalMs: number,
  options: { stepMs: number; step?: () => void },
): Promise<void> {
  for (let elapsed = 0; elapsed < totalMs; elapsed += options.stepMs) {
    await clock.advance(options.stepMs);
    options.step?.();
  }
}

Deno.test("deadline sweep ends a call that sends no frame for IDLE_TIMEOUT_S with idle_timeout", async () => {
  const clock = new FakeClock();
  const { calls, sweep } = sweepOn(clock);
  const quiet = new TestCall(clock, calls, "started");
  const talking = new TestCall(clock, calls, "started");
  sweep.start();
  await advanceBy(clock, 59_000, {
    stepMs: 1000,
    step: () => talking.lastActivity = clock.epochMs(),
  });
  assertEquals(quiet.endedWith, [], "not before the deadline");
  await advanceBy(clock, 6000, {
    stepMs: 1000,
    step: () => talking.lastActivity = clock.epochMs(),
  });
  sweep.stop();
  assertEquals(quiet.endedWith, ["idle_timeout"]);
  assertEquals(talking.endedWith, [], "a call that sends frames stays");
  assertEquals(clock.pending, 0, "stop cancels the next sweep");
});

Deno.test("deadline sweep ends a socket that sends no start within HANDSHAKE_TIMEOUT_S with handshake_timeout", async () => {
  const clock = new FakeClock();
  const { calls, sweep } = sweepOn(clock);
  const silent = new TestCall(clock, calls, "connected");
  const started = new TestCall(clock, calls, "started");
  sweep.start();
  // Both keep sending frames: only the missing `start` ends one of them.
  const busy = () => {
    silent.lastActivity = clock.epochMs();
    started.lastActivity = clock.epochMs();
  };
  await advanceBy(clock, 10_000, { stepMs: 1000, step: busy });
  assertEquals(silent.endedWith, [], "not before the deadline");
  await advanceBy(clock, 6000, { stepMs: 1000, step: busy });
  sweep.stop();
  assertEquals(silent.endedWith, ["handshake_timeout"]);
  assertEquals(started.endedWith, []);
});

Deno.test("deadline sweep ends a call that lasts past MAX_CALL_S with max_call_length", async () => {
  const clock = new FakeClock();
  const deadlines = { ...DEADLINES, maxCallMs: 120_000 };
  const { calls, sweep } = sweepOn(clock, deadlines);
  const long = new TestCall(clock, calls, "started");
  sweep.start();
  await advanceBy(clock, 30_000, { stepMs: 5000 });
  const later = new TestCall(clock, calls, "started");
  const busy = () => {
    long.lastActivity = clock.epochMs();
    later.lastActivity = clock.epochMs();
  };
  await advanceBy(clock, 90_000, { stepMs: 5000, step: busy });
  assertEquals(long.endedWith, [], "not at the deadline itself");
  await advanceBy(clock, 10_000, { stepMs: 5000, step: busy });
  sweep.stop();
  assertEquals(long.endedWith, ["max_call_length"]);
  assertEquals(
    later.endedWith,
    [],
    "a call that connected later has time left",
  );
});

Deno.test("deadline sweep: idle wins over handshake, handshake over max call length, each call ended once", async () => {
  const clock = new FakeClock();
  const every = { idleMs: 1000, handshakeMs: 1000, maxCallMs: 1000 };
  const { calls, sweep } = sweepOn(clock, every);
  const idle = new TestCall(clock, calls, "connected");
  const handshake = new TestCall(clock, calls, "connected");
  const maxCall = new TestCall(clock, calls, "started");
  // Not started: this test sweeps by hand.
  await clock.advance(1001);
  handshake.lastActivity = maxCall.lastActivity = clock.epochMs();
  assertEquals(sweep.sweep(), 3);
  assertEquals(
    [idle.endedWith, handshake.endedWith, maxCall.endedWith],
    [["idle_timeout"], ["handshake_timeout"], ["max_call_length"]],
  );
  assertEquals(sweep.sweep(), 0, "ended calls are gone from the list");
});

Deno.test("deadline sweep runs every half of the shortest deadline, at least every 5 s", () => {
  assertEquals(sweepIntervalMs(DEADLINES), 5000);
  assertEquals(sweepIntervalMs({ ...DEADLINES, handshakeMs: 1000 }), 500);
  assertEquals(sweepIntervalMs({ ...DEADLINES, idleMs: 2000 }), 1000);
  assertEquals(sweepIntervalMs({ ...DEADLINES, maxCallMs: 3000 }), 1500);
});

Deno.test("the app's sweep runs on its injected clock with MAX_CALL_S, IDLE_TIMEOUT_S and HANDSHAKE_TIMEOUT_S in seconds", async () => {
  const clock = new FakeClock();
  const registry = new SessionRegistry();
  const ended: Record<string, string> = {};
  const add = (callId: string, state: CallState) => {
    const id = crypto.randomUUID();
    registry.add(makeSession({
      id,
      callId,
      state,
      connectedAt: clock.epochMs(),
      lastActivity: clock.epochMs(),
      end(reason) {
        ended[callId] = reason;
        registry.remove(id);
      },
    }));
  };
  add("CA-long", "started");
  add("CA-mute", "connected");
  const app = createApp(
    loadConfig({
      MAX_CALL_S: "30",
      HANDSHAKE_TIMEOUT_S: "20",
      IDLE_TIMEOUT_S: "600",
    }),
    { registry, clock },
  );
  app.deadlines.start();
  await clock.advance(20_000);
  for (const session of registry.values()) {
    session.lastActivity = clock.epochMs();
  }
  assertEquals(ended, {}, "nothing at the deadlines themselves");
  await clock.advance(5000);
  assertEquals(ended, { "CA-mute": "handshake_timeout" });
  for (const session of registry.values()) {
    session.lastActivity = clock.epochMs();
  }
  await clock.advance(10_000);
  app.deadlines.stop();
  assertEquals(ended, {
    "CA-mute": "handshake_timeout",
    "CA-long": "max_call_length",
  });
});
