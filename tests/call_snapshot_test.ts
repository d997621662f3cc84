import { assert, assertEquals } from "@std/assert";
import type { BotFactory, CallInfo } from "../src/bots/bot.ts";
import { createEchoBot } from "../src/bots/echo.ts";
import { Call } from "../src/call/call.ts";
import {
  type CallSnapshot,
  MAX_KEPT_DTMF_DIGITS,
  summarizeCall,
} from "../src/call/call_snapshot.ts";
import { SessionRegistry } from "../src/call/registry.ts";
import { createSocketPair } from "../src/call/socket.ts";
import { liveSessionEntry } from "../src/instances/live_sessions.ts";
import { liveTotals } from "../src/metrics/live_totals.ts";
import { buildCallRecord } from "../src/records/call_record.ts";
import { FakeClock, settle } from "./fakes/clock.ts";
import { makeSession } from "./fakes/session.ts";

const turns = Array.from({ length: 7 }, (_, i) => ({
  turn: i + 1,
  latenciesMs: { stt_final: 100 + i },
}));

Deno.test("summarizeCall projects the snapshot and copies what the call goes on changing", () => {
  const session = makeSession({
    callId: "CA7",
    badFrames: { invalid_json: 1 },
    customParameters: { lang: "hi" },
  });
  const summary = summarizeCall(session, { turns });
  session.badFrames.invalid_json = 5;
  session.playout.framesOut = 99;
  session.customParameters.lang = "en";
  session.state = "stopped";
  assertEquals(summary.callId, "CA7");
  assertEquals(summary.badFrames, { invalid_json: 1 });
  assertEquals(summary.playout.framesOut, 0);
  assertEquals(summary.customParameters, { lang: "hi" });
  assertEquals([summary.state, summary.isActive], ["started", true]);
  assertEquals(summary.connectedAt, "2025-03-01T10:00:00.000Z");
  assertEquals(summary.lastTurns.map((turn) => turn.turn), [3, 4, 5, 6, 7]);
  assertEquals(summarizeCall(session).lastTurns, []);
});

Deno.test("the summary, the record, the live entry and the metric totals all project one snapshot", () => {
  const snapshot: CallSnapshot = makeSession({
    id: "session-1",
    callId: "CA-one",
    from: "+919800000001",
    customParameters: { lang: "ta" },
    sampleRate: 16000,
    encoding: "mulaw",
    framesIn: 40,
    bytesIn: 128_000,
    dtmfDigits: "12#",
    badFrames: { binary: 2 },
    endedAt: Date.parse("2025-03-01T10:01:00Z"),
    endReason: "stop:callended",
    state: "stopped",
  });
  const summary = summarizeCall(snapshot);
  const record = buildCallRecord(snapshot, "stop:callended");
  const entry = liveSessionEntry(snapshot, {
    instanceId: "vm-1",
    publishedAt: Date.parse("2025-03-01T10:00:59Z"),
  });
  const totals = liveTotals([snapshot]);
  const views = [
    ["summary", summary.callId, summary.from, summary.sampleRate],
    ["record", record.callId, record.from, record.sampleRate],
    ["live entry", entry.callId, entry.from, entry.sampleRate],
  ];
  for (const [view, ...fields] of views) {
    assertEquals(fields, ["CA-one", "+919800000001", 16000], String(view));
  }
  assertEquals(
    [summary.dtmfDigits, record.dtmfDigits, entry.dtmfDigits],
    ["12#", "12#", "12#"],
  );
  assertEquals(record.durationMs, 60_000);
  assertEquals(record.endedAt, "2025-03-01T10:01:00.000Z");
  assertEquals([entry.sessionId, entry.instanceId], ["session-1", "vm-1"]);
  assertEquals(entry.publishedAt, "2025-03-01T10:00:59.000Z");
  assertEquals(summary.encoding, "mulaw");
  assertEquals(
    [totals.framesIn, totals.bytesIn, totals.dtmfDigits, totals.calls],
    [40, 128_000, 3, 1],
  );
  assertEquals([...totals.badFrames], [["binary", 2]]);
});

Deno.test("a call's snapshot carries its encoding, the agent asked for, and when and why it ended, in clock time", async () => {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const registry = new SessionRegistry();
  const [server, exotel] = createSocketPair();
  exotel.listen({ message: () => {}, close: () => {} });
  let info: CallInfo | undefined;
  const createBot: BotFactory = (given, output) => {
    info = given;
    return createEchoBot(given, output);
  };
  const call = new Call({
    socket: server,
    clock,
    registry,
    settings: {
      chunkBytes: 3200,
      leadMs: 400,
      maxBufferedBytes: 65536,
      maxFrameBytes: 65536,
      maxPreStartBytes: 64000,
    },
    botName: "echo",
    createBot,
    request: { sampleRate: 8000, remoteAddress: "127.0.0.1", agent: "sales" },
  });
  const session = [...registry.values()][0];
  assertEquals(session.connectedAt, Date.UTC(2026, 0, 1));
  assertEquals(session.encoding, "pcm");
  exotel.send(JSON.stringify({
    event: "start",
    start: {
      call_sid: "CA-mulaw",
      from: "+919800000001",
      media_format: { encoding: "audio/x-mulaw", sample_rate: "8000" },
    },
  }));
  for (let digit = 0; digit < MAX_KEPT_DTMF_DIGITS + 5; digit++) {
    exotel.send(JSON.stringify({ event: "dtmf", dtmf: { digit: "1" } }));
  }
  await settle();
  assertEquals(session.encoding, "mulaw");
  assertEquals(session.dtmfDigits.length, MAX_KEPT_DTMF_DIGITS);
  assert(info);
  assertEquals(
    [info.callId, info.sampleRate, info.agent],
    ["CA-mulaw", 8000, "sales"],
  );
  await clock.advance(2500);
  exotel.send(JSON.stringify({ event: "stop", stop: { reason: "callended" } }));
  assertEquals(await call.ended, "stop:callended");
  assertEquals(session.endedAt, Date.UTC(2026, 0, 1) + 2500);
  assertEquals(session.endReason, "stop:callended");
  assertEquals(
    buildCallRecord(session, "stop:callended").durationMs,
    2500,
  );
});

Deno.test("the agent a call asks for is the URL's agent=, else the start's custom parameter of that name", async () => {
  const cases: Array<
    [string | undefined, string | undefined, string | undefined]
  > = [
    ["sales", "support", "sales"],
    [undefined, "support", "support"],
    ["", undefined, undefined],
    [undefined, undefined, undefined],
  ];
  for (const [urlAgent, parameterAgent, expected] of cases) {
    const registry = new SessionRegistry();
    const [server, exotel] = createSocketPair();
    exotel.listen({ message: () => {}, close: () => {} });
    let info: CallInfo | undefined;
    const call = new Call({
      socket: server,
      clock: new FakeClock(),
      registry,
      settings: {
        chunkBytes: 3200,
        leadMs: 400,
        maxBufferedBytes: 65536,
        maxFrameBytes: 65536,
        maxPreStartBytes: 64000,
      },
      botName: "echo",
      createBot: (given, output) => {
        info = given;
        return createEchoBot(given, output);
      },
      request: {
        sampleRate: 8000,
        remoteAddress: "127.0.0.1",
        agent: urlAgent,
      },
    });
    exotel.send(JSON.stringify({
      event: "start",
      start: {
        call_sid: "CA1",
        custom_parameters: parameterAgent === undefined
          ? {}
          : { agent: parameterAgent },
      },
    }));
    await settle();
    const label = `${urlAgent} / ${parameterAgent}`;
    assertEquals(call.session.agent, expected, label);
    assertEquals(info?.agent, expected, label);
    assertEquals(info !== undefined && "agent" in info, expected !== undefined);
    call.end("test");
    await call.ended;
  }
});
