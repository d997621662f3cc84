import {
  assert,
  assertEquals,
  assertExists,
  assertFalse,
  assertRejects,
} from "@std/assert";
import {
  buildCallRecord,
  type CallRecord,
  type TranscriptEntry,
} from "../src/records/call_record.ts";
import {
  CallStore,
  InvalidCursorError,
  openKv,
} from "../src/records/call_store.ts";
import { parseStatusCallback } from "../src/records/call_status.ts";
import { parseInboundFrame } from "../src/exotel/protocol.ts";
import { createEchoBot } from "../src/bots/echo.ts";
import { Call } from "../src/call/call.ts";
import { SessionRegistry } from "../src/call/registry.ts";
import { createSocketPair } from "../src/call/socket.ts";
import { FakeClock, settle } from "./fakes/clock.ts";
import { until } from "./fakes/agent_call.ts";
import { makeSession } from "./fakes/session.ts";

const T0 = Date.parse("2025-03-01T10:00:00Z");

/** A record of a call that ended `minutes` after T0. */
function record(
  minutes: number,
  fields: { from?: string; to?: string; callId?: string; id?: string } = {},
): CallRecord {
  const session = makeSession({
    connectedAt: T0 + minutes * 60_000 - 30_000,
    callId: fields.callId ?? `CA${minutes}`,
    from: fields.from ?? "+919876543210",
    to: fields.to ?? "08047491899",
    ...(fields.id ? { id: fields.id } : {}),
  });
  return buildCallRecord(session, "stop:callended", {
    endedAt: T0 + minutes * 60_000,
  });
}

async function withStore(
  test: (store: CallStore, kv: Deno.Kv) => Promise<void>,
  options: ConstructorParameters<typeof CallStore>[1] = {},
): Promise<void> {
  const kv = await openKv(":memory:");
  const store = new CallStore(kv, { ...options, ownsKv: true });
  try {
    await test(store, kv);
  } finally {
    await store.close();
  }
}

Deno.test("a record is built from the session, the end reason and what the bot adds", () => {
  const session = makeSession({
    connectedAt: T0,
    framesIn: 120,
    bytesIn: 38400,
    badFrames: { invalid_json: 1 },
    dtmfDigits: "12#",
  });
  session.playout.framesOut = 10;
  session.playout.clears = 1;
  const transcript: TranscriptEntry[] = [
    { role: "caller", text: "hello", atMs: 1200 },
    {
      role: "bot",
      text: "Hi, how can I help you today?",
      heardText: "Hi, how",
      interrupted: true,
      atMs: 2100,
    },
  ];
  const built = buildCallRecord(session, "closed:1006", {
    endedAt: T0 + 65_000,
    instanceId: "vm-1",
    transcript,
    turns: [{ turn: 1, latenciesMs: { stt_final: 200, first_media: 900 } }],
    recording: {
      path: "/rec/x.wav",
      sampleRate: 8000,
      durationMs: 65000,
      bytes: 2080044,
    },
  });
  assertEquals(built.id, session.id);
  assertEquals(built.startedAt, "2025-03-01T10:00:00.000Z");
  assertEquals(built.endedAt, "2025-03-01T10:01:05.000Z");
  assertEquals(built.durationMs, 65_000);
  assertEquals(built.ended, {
    reason: "closed:1006",
    outcome: "closed",
    detail: "1006",
  });
  assertEquals(built.counters.framesIn, 120);
  assertEquals(built.counters.framesOut, 10);
  assertEquals(built.counters.clears, 1);
  assertEquals(built.counters.badFrames, { invalid_json: 1 });
  assertEquals(built.dtmfDigits, "12#");
  assertEquals(built.instanceId, "vm-1");
  assertEquals(built.transcript, transcript);
  assertEquals(built.recording?.path, "/rec/x.wav");
  // A copy, not the live session's objects.
  session.badFrames.invalid_json = 5;
  assertEquals(built.counters.badFrames, { invalid_json: 1 });
});

Deno.test("a saved call reads back by id and by CallSid, transcript included", () =>
  withStore(async (store) => {
    const saved = record(1, { callId: "CA-read" });
    saved.transcript = [{ role: "caller", text: "namaste", atMs: 10 }];
    saved.turns = [{ turn: 1, latenciesMs: { stt_final: 150 } }];
    assert(await store.save(saved));
    assertEquals(await store.get(saved.id), saved);
    assertEquals(await store.get("CA-read"), saved);
    assertEquals(await store.get("nope"), undefined);
  }));

Deno.test("a reconnected call's CallSid finds its newest record", () =>
  withStore(async (store) => {
    const older = record(1, { callId: "CA-same" });
    const newer = record(2, { callId: "CA-same" });
    await store.save(newer);
    await store.save(older);
    assertEquals((await store.get("CA-same"))?.id, newer.id);
  }));

Deno.test("a transcript far beyond KV's 64 KiB value limit is stored and read back whole", () =>
  withStore(async (store) => {
    const long = record(3);
    long.transcript = Array.from({ length: 3000 }, (_, i) => ({
      role: i % 2 === 0 ? "caller" : "bot",
      text: `turn ${i}: ${"काफ़ी लंबा वाक्य ".repeat(10)}`,
      atMs: i * 1000,
    }));
    long.turns = Array.from({ length: 1500 }, (_, i) => ({
      turn: i + 1,
      latenciesMs: { stt_final: 200 + i, llm_first_token: 500 + i },
    }));
    assert(new TextEncoder().encode(JSON.stringify(long)).length > 1_000_000);
    assert(await store.save(long));
    assertEquals(await store.get(long.id), long);
    const { calls } = await store.list();
    assertEquals(calls.length, 1);
    assertFalse("transcript" in calls[0]);
  }));

Deno.test("calls list newest first, a page at a time, with a cursor", () =>
  withStore(async (store) => {
    const records = Array.from({ length: 7 }, (_, i) => record(i + 1));
    for (const saved of [...records].reverse()) await store.save(saved);
    const seen: string[] = [];
    let cursor: string | undefined;
    const pages: number[] = [];
    do {
      const page = await store.list({ limit: 3, cursor });
      pages.push(page.calls.length);
      seen.push(...page.calls.map((call) => call.callId));
      cursor = page.cursor;
    } while (cursor !== undefined);
    assertEquals(pages, [3, 3, 1]);
    assertEquals(seen, ["CA7", "CA6", "CA5", "CA4", "CA3", "CA2", "CA1"]);
    const exact = await store.list({ limit: 7 });
    assertEquals(exact.calls.length, 7);
    assertEquals(exact.cursor, undefined, "no cursor when nothing is left");
  }));

Deno.test("calls filter by when they ended and by number, on its last ten digits", () =>
  withStore(async (store) => {
    await store.save(record(1, { from: "+919876543210" }));
    await store.save(record(2, { from: "+911111111111" }));
    await store.save(record(3, { from: "09876543210" }));
    await store.save(record(4, { from: "+912222222222", to: "9876543210" }));
    const ids = async (query: Parameters<CallStore["list"]>[0]) =>
      (await store.list(query)).calls.map((call) => call.callId);
    assertEquals(await ids({ number: "9876543210" }), ["CA4", "CA3", "CA1"]);
    assertEquals(await ids({ number: "+91 98765 43210" }), [
      "CA4",
      "CA3",
      "CA1",
    ]);
    assertEquals(
      await ids({
        from: new Date(T0 + 2 * 60_000),
        to: new Date(T0 + 4 * 60_000),
      }),
      ["CA3", "CA2"],
    );
    assertEquals(
      await ids({ number: "9876543210", from: new Date(T0 + 2 * 60_000) }),
      ["CA4", "CA3"],
    );
    const paged = await store.list({ number: "9876543210", limit: 2 });
    assertEquals(paged.calls.map((call) => call.callId), ["CA4", "CA3"]);
    const rest = await store.list({
      number: "9876543210",
      limit: 2,
      cursor: paged.cursor,
    });
    assertEquals(rest.calls.map((call) => call.callId), ["CA1"]);
  }));

Deno.test("a cursor that is not one is refused", () =>
  withStore(async (store) => {
    await store.save(record(1));
    await assertRejects(
      () => store.list({ cursor: "not-a-cursor!" }),
      InvalidCursorError,
    );
  }));

Deno.test("status callbacks merge before and after the record, idempotently, newest winning", () =>
  withStore(async (store) => {
    const answered = parseStatusCallback({
      CallSid: "CA-status",
      Status: "in-progress",
      EventType: "answered",
      DateUpdated: "2025-03-01 10:00:05",
    });
    const terminal = parseStatusCallback({
      CallSid: "CA-status",
      Status: "completed",
      EventType: "terminal",
      DateUpdated: "2025-03-01 10:01:00",
      ConversationDuration: "55",
      RecordingUrl: "https://recordings.exotel.com/CA-status.mp3",
    });
    // Before the call has a record: kept under the CallSid.
    await store.mergeStatus("CA-status", terminal);
    const saved = record(1, { callId: "CA-status" });
    await store.save(saved);
    // Exotel's retry, then the older event arriving late.
    await store.mergeStatus("CA-status", terminal);
    await store.mergeStatus("CA-status", answered);
    const call = await store.get(saved.id);
    assertExists(call?.exotel);
    assertEquals(call.exotel, {
      callSid: "CA-status",
      status: "completed",
      eventType: "terminal",
      events: ["answered", "terminal"],
      dateUpdated: "2025-03-01 10:01:00",
      conversationDuration: 55,
      recordingUrl: "https://recordings.exotel.com/CA-status.mp3",
    });
    const listed = (await store.list()).calls[0];
    assertEquals(listed.exotel, call.exotel);
    assertEquals(await store.getStatus("CA-status"), call.exotel);
  }));

Deno.test("concurrent status merges for one call all land", () =>
  withStore(async (store) => {
    const events = ["answered", "terminal", "ringing", "busy", "other"];
    await Promise.all(events.map((event, i) =>
      store.mergeStatus(
        "CA-race",
        parseStatusCallback({
          CallSid: "CA-race",
          EventType: event,
          DateUpdated: `2025-03-01 10:00:0${i}`,
        }),
      )
    ));
    assertEquals(
      (await store.getStatus("CA-race"))?.events,
      [...events].sort(),
    );
  }));

/** A KV whose atomic commits fail `failures` times before working, as a flaky disk does. */
function flakyKv(kv: Deno.Kv, failures: number): Deno.Kv & { failed: number } {
  let failed = 0;
  const flaky = new Proxy(kv, {
    get(target, property) {
      if (property === "failed") return failed;
      if (property !== "atomic") {
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      }
      return () => {
        const operation = target.atomic();
        const wrapped: Deno.AtomicOperation = new Proxy(operation, {
          get(op, name) {
            const value = Reflect.get(op, name, op);
            if (typeof value !== "function") return value;
            if (name === "commit" && failed < failures) {
              return () => {
                failed++;
                return Promise.reject(
                  new Error("database is locked (injected)"),
                );
              };
            }
            if (name === "commit") return value.bind(op);
            // Chained calls (set, check, delete…) must keep returning the wrapper.
            return (...args: unknown[]) => {
              value.apply(op, args);
              return wrapped;
            };
          },
        });
        return wrapped;
      };
    },
  });
  return flaky as Deno.Kv & { failed: number };
}

Deno.test("a write that fails is retried with backoff and lands", async () => {
  const kv = await openKv(":memory:");
  const flaky = flakyKv(kv, 2);
  const store = new CallStore(flaky, { retryDelayMs: 1 });
  const saved = record(1);
  assert(await store.save(saved));
  assertEquals(flaky.failed, 2);
  assertEquals((await store.get(saved.id))?.id, saved.id);
  await store.close();
  kv.close();
});

Deno.test("a write that keeps failing gives up, reports and never throws", async () => {
  const kv = await openKv(":memory:");
  const lost: string[] = [];
  const store = new CallStore(kv, {
    attempts: 3,
    retryDelayMs: 1,
    onSaveFailed: (failed) => lost.push(failed.id),
  });
  kv.close();
  const saved = record(1);
  assertFalse(await store.save(saved));
  assertEquals(lost, [saved.id]);
  await store.close();
});

Deno.test("close waits for writes still retrying", async () => {
  const kv = await openKv(":memory:");
  const flaky = flakyKv(kv, 3);
  const store = new CallStore(flaky, { retryDelayMs: 5 });
  const saved = record(1);
  const saving = store.save(saved);
  assertEquals(store.pendingSaves, 1);
  await store.close();
  assertEquals(store.pendingSaves, 0);
  assertEquals(flaky.failed, 3);
  assert(await saving);
  const reader = new CallStore(kv);
  assertEquals((await reader.get(saved.id))?.id, saved.id);
  kv.close();
});

Deno.test("records past the retention period are neither listed nor read", () =>
  withStore(async (store) => {
    const old = record(1, { callId: "CA-old" });
    const recent = buildCallRecord(
      makeSession({
        callId: "CA-recent",
        connectedAt: Date.now() - 60_000,
        endedAt: Date.now(),
      }),
      "stop:callended",
    );
    await store.save(old);
    await store.save(recent);
    assertEquals(
      (await store.list()).calls.map((call) => call.callId),
      ["CA-recent"],
    );
    assertEquals(await store.get(old.id), undefined);
    assertEquals(await store.get("CA-old"), undefined);
    assertEquals((await store.get(recent.id))?.callId, "CA-recent");
  }, { retentionMs: 24 * 3600_000 }));

Deno.test("openKv creates the KV file's folder", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/nested/data/exovoice.kv`;
  const kv = await openKv(path);
  await kv.set(["x"], 1);
  kv.close();
  assert((await Deno.stat(path)).isFile);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a real call's record is written when it ends, even when the server cuts it and closes the store at once", async () => {
  const kv = await openKv(":memory:");
  const store = new CallStore(kv);
  const [server, exotel] = createSocketPair();
  exotel.listen({ message: () => {}, close: () => {} });
  const call = new Call({
    socket: server,
    clock: new FakeClock(),
    registry: new SessionRegistry(),
    settings: {
      chunkBytes: 3200,
      leadMs: 400,
      maxBufferedBytes: 65536,
      maxFrameBytes: 16 * 1024,
      maxPreStartBytes: 8000,
    },
    botName: "echo",
    createBot: createEchoBot,
    request: { callId: "CA-cut", sampleRate: 8000, remoteAddress: "10.0.0.9" },
  });
  // As the server wires it: the record is saved when the call ends.
  call.ended.then((reason) =>
    store.save(buildCallRecord(call.session, reason, { instanceId: "vm-1" }))
  );
  exotel.send(JSON.stringify({
    event: "start",
    stream_sid: "S-cut",
    start: {
      call_sid: "CA-cut",
      from: "+919876543210",
      to: "08047491899",
      custom_parameters: { order: "42" },
    },
  }));
  exotel.send(JSON.stringify({ event: "dtmf", dtmf: { digit: "7" } }));
  await settle();
  call.session.end("server_shutdown", 1001);
  await settle();
  await store.close();
  const [saved] = (await new CallStore(kv).list()).calls;
  assertEquals(saved.callId, "CA-cut");
  assertEquals(saved.ended, {
    reason: "server_shutdown",
    outcome: "server_shutdown",
    detail: "none",
  });
  assertEquals(saved.customParameters, { order: "42" });
  assertEquals(saved.dtmfDigits, "7");
  assertEquals(saved.counters.framesIn, 2);
  assertEquals(saved.remoteAddress, "10.0.0.9");
  assertEquals(saved.instanceId, "vm-1");
  kv.close();
});

Deno.test("a record stays under KV's value limit whatever custom parameters a peer sent", () =>
  withStore(async (store) => {
    const parsed = parseInboundFrame(JSON.stringify({
      event: "start",
      start: {
        call_sid: "CA".repeat(5000),
        from: "9".repeat(5000),
        custom_parameters: Object.fromEntries(
          Array.from(
            { length: 2000 },
            (_, i) => [`key${i}`, "v".repeat(1000)],
          ),
        ),
      },
    }));
    assert(parsed.ok && parsed.event.event === "start");
    const { callSid, from, customParameters } = parsed.event.start;
    const saved = buildCallRecord(
      makeSession({ callId: callSid, from, customParameters }),
      "stop:callended",
    );
    assertEquals(Object.keys(saved.customParameters).length, 10);
    assertEquals(saved.customParameters.key0.length, 256);
    assert(await store.save(saved));
  }));

Deno.test("a record still being built (waiting for its recording) is waited for by close", async () => {
  const kv = await openKv(":memory:");
  const store = new CallStore(kv);
  const saved = record(1, { callId: "CA-later" });
  let finish!: (ready: CallRecord) => void;
  const saving = store.save(
    new Promise<CallRecord>((resolve) => finish = resolve),
  );
  const closing = store.close();
  setTimeout(() => finish(saved), 10);
  await closing;
  assert(await saving);
  assertEquals((await new CallStore(kv).get("CA-later"))?.id, saved.id);
  const failed = await store.save(Promise.reject(new Error("recorder broke")));
  assertFalse(failed);
  kv.close();
});

Deno.test("records of calls ending together share their commits", async () => {
  const kv = await openKv(":memory:");
  let commits = 0;
  const counting = new Proxy(kv, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (property !== "atomic") {
        return typeof value === "function" ? value.bind(target) : value;
      }
      return () => {
        commits++;
        return target.atomic();
      };
    },
  });
  const store = new CallStore(counting, { batchMs: 10 });
  const saved = Array.from({ length: 30 }, (_, i) => record(i + 1));
  assertEquals(
    await Promise.all(saved.map((one) => store.save(one))),
    saved.map(() => true),
  );
  assertEquals(commits, 2, "30 records in commits of 25");
  assertEquals((await store.list({ limit: 100 })).calls.length, 30);
  await store.close();
  kv.close();
});

Deno.test("a record waiting for its batch is written when the store closes", async () => {
  const kv = await openKv(":memory:");
  const store = new CallStore(kv, { batchMs: 3_600_000 });
  const saved = record(1);
  const saving = store.save(saved);
  await settle();
  assertEquals(store.pendingSaves, 1);
  await store.close();
  assert(await saving);
  assertEquals((await new CallStore(kv).get(saved.id))?.id, saved.id);
  kv.close();
});

Deno.test("a call's record is listed in progress from its start and replaced, not duplicated, when it ends", () =>
  withStore(async (store, kv) => {
    const session = makeSession({ connectedAt: T0, callId: "CA-open" });
    assert(await store.open(session));
    let page = await store.list({ number: "9876543210" });
    assertEquals(page.calls.map((call) => call.state), ["in_progress"]);
    assertEquals((await store.get("CA-open"))?.state, "in_progress");
    session.framesIn = 50;
    assert(await store.checkpoint([session]));
    assertEquals((await store.get("CA-open"))?.counters.framesIn, 50);
    session.state = "stopped";
    assert(
      await store.save(
        buildCallRecord(session, "stop:callended", { endedAt: T0 + 60_000 }),
      ),
    );
    page = await store.list({ number: "9876543210" });
    assertEquals(page.calls.map((call) => call.state), ["completed"]);
    assertEquals((await store.list()).calls.length, 1);
    const open = [];
    for await (const entry of kv.list({ prefix: ["calls_open"] })) {
      open.push(entry.key);
    }
    assertEquals(open, []);
  }, { instanceId: "vm-1" }));

Deno.test("a checkpoint rewrites the record alone while its indexes stand, and re-indexes when the numbers change", () =>
  withStore(async (store, kv) => {
    const session = makeSession({ connectedAt: T0, callId: "CA-steady" });
    assert(await store.open(session));
    const keys = async () => {
      const found: string[] = [];
      for await (const entry of kv.list({ prefix: [] })) {
        found.push(String(entry.key[0]));
      }
      return found.sort();
    };
    const indexed = await keys();
    // Deleted behind the store's back: a checkpoint that rewrote the
    // indexes would bring them back.
    for await (const entry of kv.list({ prefix: ["calls_by_sid"] })) {
      await kv.delete(entry.key);
    }
    session.framesIn = 50;
    assert(await store.checkpoint([session]));
    assertEquals((await store.get(session.id))?.counters.framesIn, 50);
    assertEquals(
      (await keys()).filter((key) => key === "calls_by_sid"),
      [],
      "the steady checkpoint wrote the record only",
    );
    session.to = "+911111122222";
    session.framesIn = 60;
    assert(await store.checkpoint([session]));
    assertEquals(
      (await store.list({ number: "1111122222" })).calls.map((call) => call.id),
      [session.id],
    );
    assert((await keys()).includes("calls_by_sid"), "re-indexed in full");
    assertEquals(
      (await keys()).filter((key) => key !== "calls_by_number"),
      indexed.filter((key) => key !== "calls_by_number"),
    );
  }, { instanceId: "vm-1" }));

Deno.test("a call that ends within its first batch is never written as in progress", () =>
  withStore(async (store) => {
    const session = makeSession({ connectedAt: T0, callId: "CA-short" });
    const opened = store.open(session);
    session.state = "stopped";
    const saved = store.save(
      buildCallRecord(session, "stop:callended", { endedAt: T0 + 1000 }),
    );
    assert(await opened);
    assert(await saved);
    const { calls } = await store.list();
    assertEquals(calls.map((call) => call.state), ["completed"]);
  }));

Deno.test("the next run closes the records a crashed run left in progress, with their last counters, and only those", async () => {
  const kv = await openKv(":memory:");
  const crashed = new CallStore(kv, { instanceId: "vm-1", runId: "run-1" });
  const live = makeSession({ connectedAt: T0, callId: "CA-crashed" });
  live.framesIn = 120;
  live.bytesIn = 38_400;
  assert(await crashed.open(live));
  // The process dies here: nothing more of run-1 is written.
  const other = new CallStore(kv, { instanceId: "vm-2", runId: "run-9" });
  assert(
    await other.open(makeSession({ connectedAt: T0, callId: "CA-other" })),
  );
  const next = new CallStore(kv, { instanceId: "vm-1", runId: "run-2" });
  const ownLive = makeSession({ connectedAt: T0 + 5000, callId: "CA-new" });
  assert(await next.open(ownLive));
  assertEquals(await next.recoverCrashed(), 1);
  const record = await next.get("CA-crashed");
  assertEquals(record?.state, "crashed");
  assertEquals(record?.ended.outcome, "instance_crashed");
  assertEquals(record?.counters.framesIn, 120);
  assertEquals((await next.get("CA-new"))?.state, "in_progress");
  assertEquals((await next.get("CA-other"))?.state, "in_progress");
  assertEquals(await next.recoverCrashed(), 0, "closing twice changes nothing");
  assertEquals((await next.list()).calls.length, 3);
  await next.close();
  await other.close();
  await crashed.close();
  kv.close();
});

Deno.test("a record is hidden once the clock passes its end plus the retention period, not before", async () => {
  const retentionMs = 24 * 3600_000;
  const saved = record(1);
  const endedAt = Date.parse(saved.endedAt);
  const clock = new FakeClock(endedAt + retentionMs - 1);
  await withStore(async (store) => {
    const saving = store.save(saved);
    await clock.advance(0); // the batch timer, due at once
    assert(await saving);
    assertEquals((await store.get(saved.id))?.id, saved.id);
    assertEquals((await store.list()).calls.length, 1);
    await clock.advance(2);
    assertEquals(await store.get(saved.id), undefined);
    assertEquals((await store.list()).calls, []);
  }, { retentionMs, clock, batchMs: 0 });
});

Deno.test("a record waits batchMs on the clock before its write", async () => {
  const clock = new FakeClock();
  await withStore(async (store) => {
    const saved = record(1);
    const saving = store.save(saved);
    await clock.advance(499);
    assertEquals(await store.get(saved.id), undefined, "still batching");
    await clock.advance(1);
    assert(await saving);
    assertEquals((await store.get(saved.id))?.id, saved.id);
  }, { clock, batchMs: 500 });
});

Deno.test("a failed write is retried after retryDelayMs on the clock, doubled each try", async () => {
  const kv = await openKv(":memory:");
  const flaky = flakyKv(kv, 3);
  const clock = new FakeClock();
  const store = new CallStore(flaky, { clock, batchMs: 0, retryDelayMs: 200 });
  const saved = record(1);
  const saving = store.save(saved);
  await clock.advance(0);
  await until(() => flaky.failed === 1 && clock.pending === 1, "try 1");
  for (const [tryNumber, waitMs] of [[2, 200], [3, 400]]) {
    await clock.advance(waitMs - 1);
    assertEquals(flaky.failed, tryNumber - 1, `try ${tryNumber} early`);
    await clock.advance(1);
    await until(
      () => flaky.failed === tryNumber && clock.pending === 1,
      `try ${tryNumber}`,
    );
  }
  await clock.advance(799);
  assertEquals(await store.get(saved.id), undefined, "try 4 early");
  await clock.advance(1);
  assert(await saving, "the fourth try lands");
  assertEquals(flaky.failed, 3);
  assertEquals((await store.get(saved.id))?.id, saved.id);
  await store.close();
  kv.close();
});

Deno.test("an in-progress record's end and duration are the clock's time at the batch", async () => {
  const clock = new FakeClock(T0 + 90_000);
  await withStore(async (store) => {
    const session = makeSession({ connectedAt: T0, callId: "CA-running" });
    const opened = store.open(session);
    await clock.advance(500);
    assert(await opened);
    const stored = await store.get("CA-running");
    assertEquals(stored?.state, "in_progress");
    assertEquals(stored?.endedAt, new Date(T0 + 90_500).toISOString());
  }, { clock, batchMs: 500 });
});
