import { assert, assertEquals, assertFalse } from "@std/assert";
import type { Session } from "../src/call/registry.ts";
import {
  type InstanceInfo,
  type LiveSessionList,
  LiveSessions,
} from "../src/instances/live_sessions.ts";
import { openKv } from "../src/records/call_store.ts";
import { loadConfig } from "../src/config.ts";
import { startServer } from "../src/server.ts";
import { FakeClock } from "./fakes/clock.ts";
import { makeSession } from "./fakes/session.ts";

/** Two KV handles on one file, as two instances on one machine would have. */
async function withSharedKv(
  test: (a: Deno.Kv, b: Deno.Kv) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/shared.kv`;
  const a = await openKv(path);
  const b = await openKv(path);
  try {
    await test(a, b);
  } finally {
    a.close();
    b.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function instance(
  kv: Deno.Kv,
  instanceId: string,
  sessions: Session[],
  clock?: FakeClock,
): LiveSessions {
  return new LiveSessions(kv, {
    instanceId,
    sessions: () => sessions,
    clock,
  });
}

const callIds = (list: LiveSessionList) =>
  list.sessions.map((entry) => `${entry.instanceId}:${entry.callId}`);

Deno.test("two instances sharing a KV file list each other's calls, each with its instance id", () =>
  withSharedKv(async (kvA, kvB) => {
    const sessionsA = [makeSession({ callId: "CA-a1", connectedAt: 1000 })];
    const sessionsB = [
      makeSession({ callId: "CA-b1", connectedAt: 2000 }),
      makeSession({ callId: "CA-b2", connectedAt: 500 }),
    ];
    const a = instance(kvA, "vm-a", sessionsA);
    const b = instance(kvB, "vm-b", sessionsB);
    assert(await a.publish());
    assert(await b.publish());
    const fromA = await a.listAll();
    assertEquals(callIds(fromA), ["vm-b:CA-b2", "vm-a:CA-a1", "vm-b:CA-b1"]);
    assertEquals(fromA.instances, ["vm-a", "vm-b"]);
    assertEquals([fromA.total, fromA.complete], [3, true]);
    const fromB = await b.listAll();
    assertEquals(callIds(fromB), callIds(fromA));
    const entry = fromB.sessions.find((session) => session.callId === "CA-a1")!;
    assertEquals(entry.sessionId, sessionsA[0].id);
    assertEquals(entry.from, "+919876543210");
    assertEquals(entry.state, "started");
    await a.stop();
    await b.stop();
  }));

Deno.test("an ended call disappears from every instance's list flushMs later, not at the next heartbeat", () =>
  withSharedKv(async (kvA, kvB) => {
    const clock = new FakeClock();
    const session = makeSession({ callId: "CA-ending" });
    const sessionsA = [session];
    const a = instance(kvA, "vm-a", sessionsA, clock);
    const b = instance(kvB, "vm-b", [], clock);
    await a.publish();
    assertEquals(callIds(await b.listAll()), ["vm-a:CA-ending"]);
    session.state = "stopped";
    sessionsA.pop();
    const withdrawn = a.withdraw(session.id);
    await clock.advance(500); // the default flushMs
    assert(await withdrawn);
    assertEquals(callIds(await b.listAll()), []);
    await a.stop();
    await b.stop();
  }));

Deno.test("a call announced at start shows flushMs later on the clock, before the next heartbeat", () =>
  withSharedKv(async (kvA, kvB) => {
    const clock = new FakeClock();
    const sessionsA: Session[] = [];
    const a = new LiveSessions(kvA, {
      instanceId: "vm-a",
      sessions: () => sessionsA,
      flushMs: 500,
      clock,
    });
    const b = instance(kvB, "vm-b", [], clock);
    await a.publish();
    const session = makeSession({ callId: "CA-new" });
    sessionsA.push(session);
    const announced = a.announce(session);
    await clock.advance(499);
    assertEquals(callIds(await b.listAll()), [], "still queued");
    await clock.advance(1);
    assert(await announced);
    assertEquals(callIds(await b.listAll()), ["vm-a:CA-new"]);
    await a.stop();
    await b.stop();
  }));

Deno.test("starts and ends are written together, and a call that ended while queued is never written", () =>
  withSharedKv(async (kvA, kvB) => {
    const a = new LiveSessions(kvA, {
      instanceId: "vm-a",
      sessions: () => [],
      flushMs: 60_000,
    });
    const b = instance(kvB, "vm-b", []);
    const sessions = ["CA-1", "CA-2", "CA-3"].map((callId) =>
      makeSession({ callId })
    );
    const written = sessions.map((session) => a.announce(session));
    sessions[1].state = "stopped";
    const withdrawn = a.withdraw(sessions[1].id);
    assertEquals(callIds(await b.listAll()), [], "nothing written yet");
    assert(await a.flush());
    assertEquals(await Promise.all([...written, withdrawn]), [
      true,
      true,
      true,
      true,
    ]);
    assertEquals(
      callIds(await b.listAll()).sort(),
      ["vm-a:CA-1", "vm-a:CA-3"],
    );
    const keys = [];
    for await (const entry of kvB.list({ prefix: ["live_sessions", "vm-a"] })) {
      keys.push(entry.key[2]);
    }
    assertFalse(keys.includes(sessions[1].id));
    await a.stop();
    await b.stop();
  }));

Deno.test("stop writes what is still queued before it removes the instance's entries", () =>
  withSharedKv(async (kvA) => {
    const a = new LiveSessions(kvA, {
      instanceId: "vm-a",
      sessions: () => [],
      flushMs: 60_000,
    });
    const announced = a.announce(makeSession({ callId: "CA-late" }));
    await a.stop();
    assert(await announced, "the queued write landed, then was cleaned up");
    const left = [];
    for await (const entry of kvA.list({ prefix: ["live_sessions"] })) {
      left.push(entry.key);
    }
    assertEquals(left, []);
    assertFalse(await a.announce(makeSession({ callId: "CA-after" })));
  }));

Deno.test("an instance that stopped heartbeating drops out once its entries are stale", () =>
  withSharedKv(async (kvA, kvB) => {
    const clock = new FakeClock(Date.parse("2025-03-01T10:00:00Z"));
    const crashed = instance(kvA, "vm-crashed", [
      makeSession({ callId: "CA-ghost" }),
    ], clock);
    const alive = new LiveSessions(kvB, {
      instanceId: "vm-alive",
      sessions: () => [],
      heartbeatMs: 10_000,
      clock,
    });
    await crashed.publish();
    assertEquals(callIds(await alive.listAll()), ["vm-crashed:CA-ghost"]);
    await clock.advance(29_000);
    assertEquals(
      (await alive.listAll()).total,
      1,
      "still within three heartbeats",
    );
    await clock.advance(2_000);
    const later = await alive.listAll();
    assertEquals(later.total, 0);
    assertEquals(later.instances, ["vm-alive"]);
    await alive.stop();
  }));

Deno.test("stop removes the instance's own entries", () =>
  withSharedKv(async (kvA, kvB) => {
    const a = instance(kvA, "vm-a", [
      makeSession({ callId: "CA-1" }),
      makeSession({ callId: "CA-2" }),
    ]);
    const b = instance(kvB, "vm-b", []);
    await a.publish();
    assertEquals((await b.listAll()).total, 2);
    await a.stop();
    const after = await b.listAll();
    assertEquals([after.total, after.instances], [0, ["vm-b"]]);
    await b.stop();
  }));

Deno.test("the heartbeat publishes on start and every interval on the clock, and not after stop", () =>
  withSharedKv(async (kvA, kvB) => {
    const clock = new FakeClock(Date.parse("2025-03-01T10:00:00Z"));
    const session = makeSession({ callId: "CA-beat" });
    const a = new LiveSessions(kvA, {
      instanceId: "vm-a",
      sessions: () => [session],
      heartbeatMs: 10_000,
      clock,
    });
    const b = instance(kvB, "vm-b", [], clock);
    const heartbeatAt = async () =>
      (await kvB.get<InstanceInfo>(["instances", "vm-a"])).value?.heartbeatAt;
    /** Waits (on real time, the KV write's) until the entry says `at`. */
    const written = async (at: string) => {
      for (let reads = 0; reads < 1000; reads++) {
        if (await heartbeatAt() === at) return;
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      assertEquals(await heartbeatAt(), at);
    };

    a.start();
    await written("2025-03-01T10:00:00.000Z");
    await clock.advance(9_999);
    assertEquals(await heartbeatAt(), "2025-03-01T10:00:00.000Z");
    await clock.advance(1);
    await written("2025-03-01T10:00:10.000Z");
    await clock.advance(10_000);
    await written("2025-03-01T10:00:20.000Z");
    await clock.advance(10_000);
    await written("2025-03-01T10:00:30.000Z");
    assertEquals(callIds(await b.listAll()), ["vm-a:CA-beat"]);

    await a.stop();
    assertEquals(clock.pending, 0, "no heartbeat is left scheduled");
    assertEquals(await heartbeatAt(), undefined, "stop removes the entry");
    await clock.advance(50_000);
    assertEquals(await heartbeatAt(), undefined, "nothing published again");
    assertEquals((await b.listAll()).total, 0);
    await b.stop();
  }));

Deno.test("with KV unreachable, an instance still lists its own calls and says the list is partial", async () => {
  const kv = await openKv(":memory:");
  const session = makeSession({ callId: "CA-local" });
  const live = instance(kv, "vm-a", [session]);
  kv.close();
  assertFalse(live.publishFailing);
  assertFalse(await live.publish());
  assert(live.publishFailing, "reported to /health as degraded");
  assertFalse(await live.announce(session));
  assertFalse(await live.withdraw(session.id));
  const list = await live.listAll();
  assertEquals(callIds(list), ["vm-a:CA-local"]);
  assertFalse(list.complete);
  await live.stop();
});

/** Starts `tests/fakes/live_instance.ts` as its own process and waits for it to publish. */
async function spawnInstance(path: string, instanceId: string, callId: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--frozen",
      "--unstable-kv",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      new URL("./fakes/live_instance.ts", import.meta.url).pathname,
      path,
      instanceId,
      callId,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  const writer = child.stdin.getWriter();
  let buffered = "";
  const readLine = async (): Promise<string> => {
    while (!buffered.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`Instance "${instanceId}" exited early`);
      buffered += value;
    }
    const newline = buffered.indexOf("\n");
    const line = buffered.slice(0, newline);
    buffered = buffered.slice(newline + 1);
    return line;
  };
  assertEquals(await readLine(), "ready");
  return {
    async list(): Promise<LiveSessionList> {
      await writer.write(new TextEncoder().encode("list\n"));
      return JSON.parse(await readLine());
    },
    async stop(): Promise<Deno.CommandStatus> {
      await writer.close();
      const status = await child.status;
      await lines.cancel();
      return status;
    },
  };
}

Deno.test("two instance processes sharing one KV file list each other's calls", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/shared.kv`;
  const one = await spawnInstance(path, "proc-1", "CA-p1");
  const two = await spawnInstance(path, "proc-2", "CA-p2");
  try {
    const fromOne = await one.list();
    const fromTwo = await two.list();
    assertEquals(callIds(fromOne).sort(), ["proc-1:CA-p1", "proc-2:CA-p2"]);
    assertEquals(callIds(fromTwo).sort(), ["proc-1:CA-p1", "proc-2:CA-p2"]);
    assertEquals(fromOne.instances, ["proc-1", "proc-2"]);
  } finally {
    assert((await one.stop()).success);
  }
  const afterOne = await two.list();
  assertEquals(callIds(afterOne), ["proc-2:CA-p2"]);
  assert((await two.stop()).success);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a restarted instance's calls from before its crash vanish from other instances' lists at its first heartbeat, and are removed once the old run is known dead", () =>
  withSharedKv(async (kvA, kvB) => {
    const clock = new FakeClock(Date.parse("2025-03-01T10:00:00Z"));
    const crashed = instance(kvA, "vm-1", [
      makeSession({ callId: "CA-before-crash" }),
    ], clock);
    const observer = instance(kvB, "vm-2", [], clock);
    await crashed.publish();
    assertEquals(callIds(await observer.listAll()), ["vm-1:CA-before-crash"]);
    // SIGKILL: no stop. The next run starts two seconds later.
    await clock.advance(2_000);
    const restarted = instance(kvA, "vm-1", [
      makeSession({ callId: "CA-after-restart" }),
    ], clock);
    let settled: boolean | undefined;
    void restarted.previousRunEnded().then((ended) => settled = ended);
    await restarted.publish();
    assertEquals(callIds(await observer.listAll()), ["vm-1:CA-after-restart"]);
    assertEquals(settled, undefined, "the old run's heartbeat is still fresh");
    await clock.advance(10_000);
    await restarted.publish();
    await clock.advance(10_000);
    await restarted.publish();
    assertEquals(settled, true);
    const left = [];
    for await (const entry of kvB.list({ prefix: ["live_sessions", "vm-1"] })) {
      left.push(entry.key[2]);
    }
    assertEquals(left.length, 1);
    assertEquals(restarted.duplicateRunId, undefined);
    await restarted.stop();
    await observer.stop();
  }));

Deno.test("two live processes with the same INSTANCE_ID notice each other and neither touches the other's entries", () =>
  withSharedKv(async (kvA, kvB) => {
    const one = instance(kvA, "vm-same", [makeSession({ callId: "CA-one" })]);
    const two = instance(kvB, "vm-same", [makeSession({ callId: "CA-two" })]);
    let twoSettled: boolean | undefined;
    void two.previousRunEnded().then((ended) => twoSettled = ended);
    for (let round = 0; round < 3; round++) {
      await one.publish();
      await two.publish();
    }
    assertEquals(one.duplicateRunId, two.runId);
    assertEquals(two.duplicateRunId, one.runId);
    assertEquals(twoSettled, false);
    await one.stop();
    const left = [];
    for await (
      const entry of kvB.list({ prefix: ["live_sessions", "vm-same"] })
    ) {
      left.push(entry.key[2]);
    }
    assertEquals(
      left.length,
      2,
      "a duplicate's stop leaves the other's entries",
    );
    await two.stop();
  }));

Deno.test("the server publishes its heartbeat on its injected clock, every INSTANCE_HEARTBEAT_S", async () => {
  const dir = await Deno.makeTempDir();
  const clock = new FakeClock(Date.parse("2025-03-01T10:00:00Z"));
  const server = await startServer(
    loadConfig({
      HOST: "127.0.0.1",
      PORT: "0",
      KV_PATH: `${dir}/calls.kv`,
      INSTANCE_ID: "vm-clock",
      INSTANCE_HEARTBEAT_S: "10",
    }),
    { clock },
  );
  const reader = await openKv(`${dir}/calls.kv`);
  const heartbeatAt = async () =>
    (await reader.get<InstanceInfo>(["instances", "vm-clock"])).value
      ?.heartbeatAt;
  /** Waits (on real time, the KV write's) until the entry says `at`. */
  const written = async (at: string) => {
    for (let reads = 0; reads < 1000; reads++) {
      if (await heartbeatAt() === at) return;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assertEquals(await heartbeatAt(), at);
  };
  try {
    await written("2025-03-01T10:00:00.000Z");
    await clock.advance(10_000);
    await written("2025-03-01T10:00:10.000Z");
  } finally {
    await server.shutdown();
    reader.close();
    await Deno.remove(dir, { recursive: true });
  }
});
