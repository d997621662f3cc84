/**
 * μ-law calls: Exotel's `audio/x-mulaw;rate=8000` streams. Bots hear and
 * play 16-bit PCM; the wire carries G.711 μ-law in 20 ms multiples (160
 * bytes); the echo returns the caller's μ-law bytes unchanged.
 */
import { assert, assertEquals } from "@std/assert";
import { concat } from "@std/bytes";
import { decodeMulaw, encodeMulaw, MULAW_SILENCE } from "../src/audio/mulaw.ts";
import { padToAlignment } from "../src/audio/pcm.ts";
import type { BotFactory, CallOutput } from "../src/bots/bot.ts";
import { createEchoBot } from "../src/bots/echo.ts";
import { Call, type CallRequest, type CallSettings } from "../src/call/call.ts";
import { SessionRegistry } from "../src/call/registry.ts";
import { createSocketPair } from "../src/call/socket.ts";
import { decodeWav } from "../src/audio/wav.ts";
import { simulateCall } from "../tools/simulator.ts";
import { fixturePcm, until } from "./fakes/agent_call.ts";
import { startAgentServer } from "./fakes/bot_server.ts";
import { FakeClock } from "./fakes/clock.ts";
import { textReply } from "./fakes/openai_server.ts";
import { HELLO_TRANSCRIPT } from "./fakes/stt_servers.ts";
import { fakeSpeech } from "./fakes/tts_servers.ts";
import { serve } from "./fakes/sockets.ts";
import { captureLogs } from "./fakes/log_capture.ts";

const settings: CallSettings = {
  chunkBytes: 3200,
  leadMs: 400,
  maxBufferedBytes: 65536,
  maxFrameBytes: 64 * 1024,
  maxPreStartBytes: 8000,
};

const ALL_CODES = Uint8Array.from({ length: 256 }, (_, code) => code);

interface Frame {
  event: string;
  media?: { payload: string };
}

function startFrame(encoding: string, sampleRate?: string) {
  return {
    event: "start",
    stream_sid: "S1",
    start: {
      stream_sid: "S1",
      call_sid: "CA1",
      media_format: {
        encoding,
        ...sampleRate === undefined ? {} : { sample_rate: sampleRate },
        bit_rate: "8",
      },
    },
  };
}

/** Equal bytes, or a failure naming the first difference (a diff of 100 KB arrays would not fit in memory). */
function assertSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  const length = Math.min(actual.length, expected.length);
  let at = 0;
  while (at < length && actual[at] === expected[at]) at++;
  assert(
    at === actual.length && at === expected.length,
    `lengths ${actual.length} and ${expected.length}, first difference at byte ${at}`,
  );
}

function mediaFrame(payload: Uint8Array) {
  return {
    event: "media",
    stream_sid: "S1",
    media: { payload: payload.toBase64() },
  };
}

/** A call over an in-memory pair on a fake clock; `sent` holds the wire bytes of every media frame. */
function setup(
  createBot: BotFactory,
  request: Partial<CallRequest> = {},
) {
  const clock = new FakeClock();
  const [server, exotel] = createSocketPair();
  const sent: Uint8Array[] = [];
  exotel.listen({
    message: (data) => {
      const frame: Frame = JSON.parse(data as string);
      if (frame.event === "media") {
        sent.push(Uint8Array.fromBase64(frame.media!.payload));
      }
    },
    close: () => {},
  });
  const call = new Call({
    socket: server,
    clock,
    registry: new SessionRegistry(),
    settings,
    botName: "test",
    createBot,
    request: { sampleRate: 8000, remoteAddress: "127.0.0.1", ...request },
  });
  const send = (frame: unknown) => exotel.send(JSON.stringify(frame));
  return { clock, call, send, sent };
}

/** A bot that keeps what it hears and plays what the test gives it. */
function listeningBot() {
  const heard: Uint8Array[] = [];
  const rates: number[] = [];
  let output: CallOutput | undefined;
  const factory: BotFactory = (info, callOutput) => {
    output = callOutput;
    rates.push(info.sampleRate);
    return { audio: (pcm) => void heard.push(pcm), stop: () => {} };
  };
  return {
    factory,
    heard: () => concat(heard),
    rates,
    play: (pcm: Uint8Array) => output!.play(pcm),
  };
}

Deno.test("a μ-law call: the bot hears PCM decoded from μ-law, held audio before start too", async () => {
  const bot = listeningBot();
  const { call, send, clock } = setup(bot.factory, { sampleRate: 16000 });
  const early = ALL_CODES.subarray(0, 100);
  const later = ALL_CODES.subarray(100);
  send(mediaFrame(early)); // before start: held, decoded once start names μ-law
  send(startFrame("audio/x-mulaw;rate=8000"));
  send(mediaFrame(later));
  await clock.advance(0);
  assertEquals(bot.heard(), decodeMulaw(ALL_CODES));
  // μ-law is 8 kHz telephone audio, whatever the URL asked for.
  assertEquals(bot.rates, [8000]);
  assertEquals(call.session.sampleRate, 8000);
  assertEquals(call.session.bytesIn, 256);
  call.end("test");
});

Deno.test("a μ-law call: what the bot plays goes out as μ-law in 160-byte multiples, the last padded with μ-law silence", async () => {
  const bot = listeningBot();
  const { call, send, clock, sent } = setup(bot.factory);
  send(startFrame("audio/x-mulaw", "8000"));
  await clock.advance(0);
  // 5590 samples: three 200 ms chunks and a 790-sample tail, padded to 800.
  const pcm = decodeMulaw(
    Uint8Array.from({ length: 5590 }, (_, i) => (i * 7) & 0xff),
  );
  const played = bot.play(pcm);
  await clock.advance(2000);
  assertEquals(sent.map((chunk) => chunk.length), [1600, 1600, 1600, 800]);
  const wire = concat(sent);
  assertEquals(wire.subarray(0, 5590), encodeMulaw(pcm));
  assertEquals(wire.subarray(5590), new Uint8Array(10).fill(MULAW_SILENCE));
  assertEquals(call.session.playout.bytesOut, 5600);
  send({ event: "mark", stream_sid: "S1", mark: { name: "utt-1" } });
  assertEquals((await played).status, "played");
  call.end("test");
});

Deno.test("a μ-law echo returns every one of the 256 codes byte for byte", async () => {
  const { call, send, clock, sent } = setup(createEchoBot);
  send(startFrame("audio/x-mulaw", "8000"));
  // 2 s of caller audio cycling through every code, in 20 ms frames.
  const caller = Uint8Array.from({ length: 16000 }, (_, i) => (i * 73) & 0xff);
  for (let at = 0; at < caller.length; at += 160) {
    send(mediaFrame(caller.subarray(at, at + 160)));
    await clock.advance(20);
  }
  await clock.advance(1000);
  assertEquals(concat(sent), caller);
  assert(sent.every((chunk) => chunk.length % 160 === 0));
  call.end("test");
});

Deno.test("an unknown encoding is logged once and treated as 16-bit PCM", async () => {
  await using logs = await captureLogs();
  const bot = listeningBot();
  const { call, send, clock } = setup(bot.factory);
  send(startFrame("audio/opus", "8000"));
  const pcm = new Uint8Array(640).map((_, i) => i);
  send(mediaFrame(pcm));
  send(mediaFrame(pcm));
  await clock.advance(0);
  assertEquals(bot.heard(), concat([pcm, pcm]));
  const unknown = logs.records.filter((record) =>
    record.level === "warning" &&
    record.message.join("").includes("Unknown media encoding")
  );
  assertEquals(unknown.length, 1);
  assertEquals(unknown[0].properties.encoding, "audio/opus");
  call.end("test");
});

Deno.test("through the server, a simulated 8 kHz μ-law call gets its speech echoed byte for byte", async () => {
  await using server = await serve();
  const { pcm } = decodeWav(
    await Deno.readFile(
      new URL("./fixtures/audio/hello_8000.wav", import.meta.url),
    ),
  );
  const report = await simulateCall({
    url: `ws://127.0.0.1:${server.addr.port}/voicebot/ws`,
    pcm,
    sampleRate: 8000,
    encoding: "mulaw",
    waitForReplyMs: 300,
    maxWaitMs: 5000,
  });
  assert(report.connected, report.error);
  assertEquals(report.encoding, "mulaw");
  assertEquals(report.badChunks, []);
  assertEquals(report.badFrames, []);
  // Decoding is one-to-one: equal PCM here means equal μ-law on the wire.
  const sentAsMulaw = decodeMulaw(encodeMulaw(pcm));
  assertSameBytes(report.receivedPcm.subarray(0, pcm.length), sentAsMulaw);
  assertEquals(report.endReason, "completed");
  await until(() => server.registry.size === 0, "the call to end");
});

Deno.test("through the server, the agent answers a μ-law call: it hears decoded PCM and its voice goes out as μ-law", async () => {
  await using agent = await startAgentServer({
    script: {
      turns: [{ text: HELLO_TRANSCRIPT, speechStartMs: 1520, turnMs: 5600 }],
    },
    replies: [textReply(["Sure", ", I can help", " with that."])],
  });
  const caller = concat([
    new Uint8Array(16000),
    await fixturePcm("hello_8000.wav"),
  ]);
  const report = await simulateCall({
    url: agent.url,
    pcm: caller,
    sampleRate: 8000,
    encoding: "mulaw",
    waitForReplyMs: 1000,
    maxWaitMs: 10_000,
  });
  assert(report.connected, report.error);
  assertEquals(report.badChunks, []);
  assertEquals(report.badFrames, []);
  const spoken = (texts: string[]) =>
    concat(texts.map((text) => padToAlignment(fakeSpeech(text, 8000))));
  const expected = spoken([
    "Hello! How can I help you today?",
    "Sure, I can help with that.",
  ]);
  // The agent's PCM, μ-law on the wire, decoded by the simulator.
  assertSameBytes(report.receivedPcm, decodeMulaw(encodeMulaw(expected)));
  assertEquals(report.marksEchoed, report.marksReceived);
  // Speech-to-text got 16-bit PCM decoded from the caller's μ-law.
  const heard = agent.vendors.stt.connections[0].audio;
  const callerAsMulaw = decodeMulaw(encodeMulaw(caller));
  assert(heard.length > callerAsMulaw.length, `heard ${heard.length}`);
  assertSameBytes(heard.subarray(0, callerAsMulaw.length), callerAsMulaw);
  // Then the silence Exotel streams while the caller listens: μ-law 0xFF, PCM 0.
  assert(heard.subarray(callerAsMulaw.length).every((byte) => byte === 0));
});
