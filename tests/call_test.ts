import { assert, assertEquals } from "@std/assert";
import type { Bot, BotFactory, CallInfo, CallOutput } from "../src/bots/bot.ts";
import { createEchoBot } from "../src/bots/echo.ts";
import {
  BOT_STOP_WAIT_MS,
  Call,
  type CallRequest,
  type CallSettings,
} from "../src/call/call.ts";
import { SessionRegistry } from "../src/call/registry.ts";
import { summarizeCall } from "../src/call/call_snapshot.ts";
import { createSocketPair } from "../src/call/socket.ts";
import { FakeClock, settle } from "./fakes/clock.ts";

const settings: CallSettings = {
  chunkBytes: 3200,
  leadMs: 400,
  maxBufferedBytes: 65536,
  maxFrameBytes: 16 * 1024,
  maxPreStartBytes: 8000,
};

interface Frame {
  event: string;
  stream_sid?: string;
  media?: { payload: string };
  mark?: { name: string };
}

/** A call over an in-memory pair; `exotel` is the peer's end. */
function setup(
  options: { createBot?: BotFactory; request?: Partial<CallRequest> } = {},
) {
  const clock = new FakeClock();
  const registry = new SessionRegistry();
  const [server, exotel] = createSocketPair();
  const received: Frame[] = [];
  let closed: { code: number; reason: string } | undefined;
  exotel.listen({
    message: (data) => received.push(JSON.parse(data as string)),
    close: (code, reason) => closed = { code, reason },
  });
  const call = new Call({
    socket: server,
    clock,
    registry,
    settings,
    botName: "test",
    createBot: options.createBot ?? createEchoBot,
    request: {
      sampleRate: 8000,
      remoteAddress: "127.0.0.1",
      ...options.request,
    },
  });
  const send = (frame: unknown) => exotel.send(JSON.stringify(frame));
  return {
    clock,
    registry,
    call,
    exotel,
    server,
    received,
    send,
    closed: () => closed,
    media: () => received.filter((frame) => frame.event === "media"),
  };
}

function start(
  streamSid = "S1",
  sampleRate = "8000",
  extra: Record<string, unknown> = {},
) {
  return {
    event: "start",
    sequence_number: "1",
    stream_sid: streamSid,
    start: {
      stream_sid: streamSid,
      call_sid: "CA1",
      account_sid: "AC1",
      from: "+919876543210",
      to: "08047491899",
      custom_parameters: { lang: "en" },
      media_format: {
        encoding: "audio/x-raw",
        sample_rate: sampleRate,
        bit_rate: "16",
      },
      ...extra,
    },
  };
}

function media(pcm: Uint8Array, streamSid = "S1", sequence = 2) {
  return {
    event: "media",
    sequence_number: String(sequence),
    stream_sid: streamSid,
    media: {
      chunk: String(sequence - 1),
      timestamp: "0",
      payload: pcm.toBase64(),
    },
  };
}

/** A bot that records every hook call. */
function recordingBot(
  record: string[],
  onCreate?: (output: CallOutput, info: CallInfo) => void,
): BotFactory {
  return (info, output) => {
    onCreate?.(output, info);
    record.push(`create ${info.callId} ${info.streamSid} ${info.sampleRate}`);
    const bot: Bot = {
      start: () => void record.push("start"),
      audio: (pcm) => void record.push(`audio ${pcm.length}`),
      dtmf: (digit) => void record.push(`dtmf ${digit}`),
      marked: (name) => void record.push(`marked ${name}`),
      stop: () => void record.push("stop"),
    };
    return bot;
  };
}

Deno.test("a call registers its session on connect and sends nothing before start", async () => {
  const { registry, send, received, call } = setup({
    request: { callId: "CA9" },
  });
  send({ event: "connected" });
  await settle();
  assertEquals(registry.size, 1);
  const session = summarizeCall([...registry.values()][0]);
  assertEquals([session.callId, session.state, session.isActive], [
    "CA9",
    "connected",
    true,
  ]);
  assertEquals(received, []);
  call.end("test");
});

Deno.test("start fills the session and creates the bot with the call's info", async () => {
  const record: string[] = [];
  const { registry, send, call } = setup({ createBot: recordingBot(record) });
  send({ event: "connected" });
  send(start("S1", "16000"));
  await settle();
  const session = [...registry.values()][0];
  assertEquals(record, ["create CA1 S1 16000", "start"]);
  assertEquals(session.from, "+919876543210");
  assertEquals(session.to, "08047491899");
  assertEquals(session.customParameters, { lang: "en" });
  assertEquals(session.sampleRate, 16000);
  assertEquals(session.sequenceNumber, 1);
  call.end("test");
});

Deno.test("the URL's sample rate stands when start does not name a valid one", async () => {
  const record: string[] = [];
  const { send, call } = setup({
    createBot: recordingBot(record),
    request: { sampleRate: 24000 },
  });
  send(start("S1", "11025"));
  await settle();
  assertEquals(record[0], "create CA1 S1 24000");
  call.end("test");
});

Deno.test("the echo bot returns the caller's audio byte for byte in 3200-byte chunks", async () => {
  const { send, clock, media: sentMedia, call } = setup();
  send(start());
  const caller = new Uint8Array(9600).map((_, i) => (i * 13) % 256);
  for (let offset = 0; offset < caller.length; offset += 640) {
    send(media(caller.subarray(offset, offset + 640), "S1", 2 + offset / 640));
    await clock.advance(20);
  }
  await clock.advance(1000);
  const echoed = sentMedia().map((frame) =>
    Uint8Array.fromBase64(frame.media!.payload)
  );
  assertEquals(echoed.map((chunk) => chunk.length), [3200, 3200, 3200]);
  assertEquals(new Uint8Array(echoed.flatMap((chunk) => [...chunk])), caller);
  assert(sentMedia().every((frame) => frame.stream_sid === "S1"));
  call.end("test");
});

Deno.test("media before start is held and given to the bot after start", async () => {
  const record: string[] = [];
  const { send, registry, call } = setup({ createBot: recordingBot(record) });
  send(media(new Uint8Array(640)));
  send(media(new Uint8Array(320)));
  await settle();
  assertEquals([...registry.values()][0].audioChunksBuffered, 2);
  send(start());
  await settle();
  assertEquals(record, [
    "create CA1 S1 8000",
    "start",
    "audio 640",
    "audio 320",
  ]);
  assertEquals([...registry.values()][0].audioChunksBuffered, 0);
  call.end("test");
});

Deno.test("media before start beyond the limit is dropped and counted", async () => {
  const { send, registry, call } = setup();
  for (let i = 0; i < 5; i++) send(media(new Uint8Array(3200)));
  await settle();
  const session = [...registry.values()][0];
  assertEquals(session.audioChunksBuffered, 2);
  assertEquals(session.badFrames.media_before_start, 3);
  call.end("test");
});

Deno.test("malformed frames are skipped and counted while the call goes on", async () => {
  const record: string[] = [];
  const { send, exotel, registry, call } = setup({
    createBot: recordingBot(record),
  });
  send(start());
  exotel.send("{not json");
  exotel.send("[]");
  exotel.sendBinary(new Uint8Array([1, 2, 3]));
  send({ event: "dance" });
  send({ event: "media", media: { payload: "%%%%" } });
  send({ event: "dtmf", dtmf: { digit: "x" } });
  send(media(new Uint8Array(320)));
  await settle();
  const session = [...registry.values()][0];
  assertEquals(session.badFrames, {
    invalid_json: 1,
    not_an_object: 1,
    binary: 1,
    unknown_event: 1,
    invalid_payload: 1,
    invalid_digit: 1,
  });
  assertEquals(record.at(-1), "audio 320");
  assertEquals(session.state, "started");
  call.end("test");
});

Deno.test("marks reach the bot; unknown marks are ignored", async () => {
  const record: string[] = [];
  let output: CallOutput | undefined;
  const { send, clock, received, call } = setup({
    createBot: recordingBot(record, (created) => output = created),
  });
  send(start());
  await settle();
  const played = output!.play(new Uint8Array(3200), { mark: "hello" });
  await clock.advance(10);
  assertEquals(received.map((frame) => frame.event), ["media", "mark"]);
  send({ event: "mark", stream_sid: "S1", mark: { name: "nobody" } });
  send({ event: "mark", stream_sid: "S1", mark: { name: "hello" } });
  await settle();
  assertEquals((await played).status, "played");
  assertEquals(record.filter((entry) => entry.startsWith("marked")), [
    "marked hello",
  ]);
  call.end("test");
});

Deno.test("DTMF digits reach the bot and the session; invalid ones do not", async () => {
  const record: string[] = [];
  const { send, registry, call } = setup({ createBot: recordingBot(record) });
  send(start());
  for (const digit of ["1", "x", "#", "*", "10"]) {
    send({ event: "dtmf", dtmf: { digit } });
  }
  await settle();
  assertEquals(record.filter((entry) => entry.startsWith("dtmf")), [
    "dtmf 1",
    "dtmf #",
    "dtmf *",
  ]);
  assertEquals([...registry.values()][0].dtmfDigits, "1#*");
  call.end("test");
});

Deno.test("an inbound clear is ignored, never echoed", async () => {
  const { send, received, call } = setup();
  send(start());
  send({ event: "clear", stream_sid: "S1" });
  await settle();
  assertEquals(received, []);
  call.end("test");
});

Deno.test("stop ends the call: bot stopped, socket closed, session removed, nothing more sent", async () => {
  const record: string[] = [];
  let output: CallOutput | undefined;
  const { send, registry, clock, received, call, closed } = setup({
    createBot: recordingBot(record, (created) => output = created),
  });
  send(start());
  await settle();
  output!.play(new Uint8Array(32000));
  await clock.advance(0);
  const sentBefore = received.length;
  send({ event: "stop", stop: { reason: "callended" } });
  assertEquals(await call.ended, "stop:callended");
  await settle();
  assertEquals(record.at(-1), "stop");
  assertEquals(registry.size, 0);
  assertEquals(closed()?.code, 1000);
  await clock.advance(5000);
  assertEquals(received.length, sentBefore);
});

/** A bot whose transcript gains a line while it stops (an agent's caller words transcribed after the hang-up), and whose stop settles as `stopping` says. */
function stoppingBot(
  stopping: "settles" | "never settles" | "fails",
): BotFactory {
  return () => {
    const lines = ["bot: Hello"];
    return {
      audio() {},
      stop() {
        lines.push("caller: Bye then");
        if (stopping === "never settles") return new Promise<void>(() => {});
        if (stopping === "fails") return Promise.reject(new Error("boom"));
        return Promise.resolve();
      },
      report: () => ({
        transcript: lines.map((line, atMs) => {
          const [role, text] = line.split(": ");
          return { role: role as "bot" | "caller", text, atMs };
        }),
        turns: [],
      }),
    };
  };
}

const STOPPING_CASES = [
  {
    stopping: "settles",
    expected: ["Hello", "Bye then"],
    why: "the report read once stop settled",
  },
  {
    stopping: "never settles",
    expected: ["Hello"],
    why: "the report taken as the call ended, after BOT_STOP_WAIT_MS",
  },
  {
    stopping: "fails",
    expected: ["Hello"],
    why: "the report taken as the call ended",
  },
] as const;

for (const { stopping, expected, why } of STOPPING_CASES) {
  Deno.test(`the final report of a bot whose stop ${stopping} is ${why}`, async () => {
    const { send, clock, call } = setup({ createBot: stoppingBot(stopping) });
    send(start());
    await settle();
    send({ event: "stop", stop: { reason: "callended" } });
    await call.ended;
    assertEquals(call.report?.transcript.map((entry) => entry.text), [
      "Hello",
    ]);
    const final = call.finalReport;
    await clock.advance(BOT_STOP_WAIT_MS);
    assertEquals(
      (await final)?.transcript.map((entry) => entry.text),
      [...expected],
    );
  });
}

Deno.test("a peer that vanishes without a close frame is cleaned up", async () => {
  const record: string[] = [];
  const { send, exotel, registry, call } = setup({
    createBot: recordingBot(record),
  });
  send(start());
  await settle();
  exotel.drop();
  assertEquals(await call.ended, "closed:1006");
  assertEquals(registry.size, 0);
  assertEquals(record.at(-1), "stop");
});

Deno.test("ending a call does not wait for a peer that never answers the close", async () => {
  const { exotel, registry, call } = setup();
  exotel.ignoreClose = true;
  call.end("idle_timeout");
  assertEquals(await call.ended, "idle_timeout");
  assertEquals(registry.size, 0);
});

Deno.test("a bot that throws is logged and counted, and the call goes on", async () => {
  const { send, registry, call } = setup({
    createBot: () => ({
      audio() {
        throw new Error("boom");
      },
      dtmf: () => Promise.reject(new Error("async boom")),
      stop() {},
    }),
  });
  send(start());
  send(media(new Uint8Array(320)));
  send({ event: "dtmf", dtmf: { digit: "1" } });
  await settle();
  const session = [...registry.values()][0];
  assertEquals(session.badFrames.bot_error, 2);
  assertEquals(session.state, "started");
  call.end("test");
});

Deno.test("a bot that cannot be created ends the call with 1011", async () => {
  const { send, registry, call, closed } = setup({
    createBot: () => {
      throw new Error("no bot today");
    },
  });
  send(start());
  assertEquals(await call.ended, "bot_error");
  await settle();
  assertEquals(closed()?.code, 1011);
  assertEquals(registry.size, 0);
});

Deno.test("a duplicate start is ignored", async () => {
  const record: string[] = [];
  const { send, call, registry } = setup({ createBot: recordingBot(record) });
  send(start("S1"));
  send(start("S2"));
  await settle();
  assertEquals(record.filter((entry) => entry.startsWith("create")).length, 1);
  assertEquals([...registry.values()][0].streamSid, "S1");
  call.end("test");
});

Deno.test("concurrent calls never cross: each frame carries its own stream_sid", async () => {
  const calls = [setup(), setup(), setup()];
  calls.forEach(({ send }, i) => send(start(`S${i}`)));
  for (let round = 0; round < 5; round++) {
    calls.forEach(({ send }, i) =>
      send(media(new Uint8Array(3200).fill(i + 1), `S${i}`))
    );
  }
  for (const { clock } of calls) await clock.advance(2000);
  calls.forEach(({ media: sent, call }, i) => {
    assertEquals(sent().length, 5);
    for (const frame of sent()) {
      assertEquals(frame.stream_sid, `S${i}`);
      assert(
        Uint8Array.fromBase64(frame.media!.payload).every((byte) =>
          byte === i + 1
        ),
      );
    }
    call.end("test");
  });
});

Deno.test("the first oversized frame ends the call with 1009 and drops the connection", async () => {
  const { send, exotel, server, call, closed, registry } = setup();
  send(start());
  const huge = JSON.stringify(media(new Uint8Array(20_000)));
  let aborted = 0;
  const abort = server.abort.bind(server);
  server.abort = () => {
    aborted++;
    abort();
  };
  exotel.send(huge);
  exotel.send(JSON.stringify(media(new Uint8Array(320))));
  assertEquals(await call.ended, "frames_too_large");
  await settle();
  assertEquals(closed()?.code, 1009);
  assertEquals(aborted, 1);
  assertEquals(call.session.badFrames, { too_large: 1 });
  assertEquals(
    call.session.framesIn,
    2,
    "start and the oversized frame, nothing after",
  );
  assertEquals(registry.size, 0);
});
