/**
 * The speech-to-text uplink: frame by frame while anything may depend on
 * the audio, 100 ms messages while the caller has long been quiet; and the
 * listener sending through it to a fake Deepgram.
 */
import { assertEquals, assertGreater, assertThrows } from "@std/assert";
import type { AgentBot } from "../src/bots/agent/agent.ts";
import { createAgentBotFactory } from "../src/bots/agent/mod.ts";
import { systemClock } from "../src/call/clock.ts";
import { Listener } from "../src/bots/agent/listener.ts";
import { SttUplink } from "../src/bots/agent/stt_uplink.ts";
import { DeepgramStt } from "../src/providers/stt/deepgram.ts";
import type { SpeechEvent } from "../src/providers/stt/speech_to_text.ts";
import {
  feed,
  fixturePcm,
  startAgentFakes,
  startMemoryCall,
  until,
} from "./fakes/agent_call.ts";
import { FakeClock } from "./fakes/clock.ts";
import { FakeSttServer } from "./fakes/stt_servers.ts";

/** One step: a 20 ms frame at 8 kHz, a detector report, or a vendor event. */
type Step = "frame" | "voiced" | SpeechEvent;

/** Runs `steps`, returning the sizes of the messages sent, in ms, per step (0 = none). */
function run(steps: Step[], options: { coalesceMs?: number } = {}): number[] {
  const uplink = new SttUplink({ sampleRate: 8000, ...options });
  let counter = 0;
  const sent: number[] = [];
  const received: number[] = [];
  for (const step of steps) {
    let message: Uint8Array | undefined;
    if (step === "frame") {
      // Numbered frames, to check nothing is lost or reordered.
      const frame = new Uint8Array(320).fill(counter++ % 256);
      message = uplink.push(frame);
    } else if (step === "voiced") message = uplink.voiced();
    else message = uplink.heard(step);
    sent.push(message ? message.length / 16 : 0);
    if (message) received.push(...message.filter((_, i) => i % 320 === 0));
  }
  const held = uplink.take();
  if (held) received.push(...held.filter((_, i) => i % 320 === 0));
  assertEquals(received, Array.from({ length: counter }, (_, i) => i % 256));
  return sent;
}

const frames = (n: number): Step[] => Array(n).fill("frame");
const live = (n: number) => Array(n).fill(20);
const coalesced = (n: number) =>
  Array.from({ length: n }, (_, i) => (i % 5 === 4 ? 100 : 0));

const cases: {
  name: string;
  steps: Step[];
  sent: number[];
  coalesceMs?: number;
}[] = [
  {
    name: "the first second goes frame by frame, then 100 ms at a time",
    steps: frames(60),
    sent: [...live(50), ...coalesced(10)],
  },
  {
    name: "speech detected sends what is held and goes frame by frame",
    steps: [...frames(53), "voiced", ...frames(3)],
    sent: [...live(50), 0, 0, 0, 60, ...live(3)],
  },
  {
    name: "a second after the last speech it coalesces again",
    steps: [...frames(50), "voiced", ...frames(55)],
    sent: [...live(50), 0, ...live(50), ...coalesced(5)],
  },
  {
    name: "the vendor's speech_started sends what is held",
    steps: [...frames(52), { type: "speech_started" }, "frame"],
    sent: [...live(50), 0, 0, 40, 20],
  },
  {
    name: "a partial opens a turn, which stays frame by frame until it ends",
    steps: [
      ...frames(51),
      { type: "partial", text: "hel" },
      ...frames(80),
      { type: "final", text: "hello", endOfTurn: false },
      ...frames(5),
      { type: "end_of_turn" },
      ...frames(55),
    ],
    sent: [
      ...live(50),
      0,
      20,
      ...live(80),
      0,
      ...live(5),
      0,
      ...live(50),
      ...coalesced(5),
    ],
  },
  {
    name: "a final that ends the turn starts the quiet second afresh",
    steps: [
      ...frames(50),
      { type: "partial", text: "hi" },
      ...frames(10),
      { type: "final", text: "hi", endOfTurn: true },
      ...frames(55),
    ],
    sent: [...live(50), 0, ...live(10), 0, ...live(50), ...coalesced(5)],
  },
  {
    name: "coalesceMs 0 sends every frame",
    steps: frames(80),
    sent: live(80),
    coalesceMs: 0,
  },
  {
    name: "coalesceMs 60 sends 60 ms at a time",
    steps: frames(56),
    sent: [...live(50), 0, 0, 60, 0, 0, 60],
    coalesceMs: 60,
  },
];

for (const { name, steps, sent, coalesceMs } of cases) {
  Deno.test(`SttUplink: ${name}`, () => {
    assertEquals(run(steps, { coalesceMs }), sent);
  });
}

Deno.test("SttUplink: frames of other sizes keep their audio and order", () => {
  const uplink = new SttUplink({ sampleRate: 16000 });
  const out: number[] = [];
  for (let i = 0; i < 200; i++) {
    // 10 ms and 30 ms frames alternating, 16 kHz.
    const frame = new Uint8Array(i % 2 ? 960 : 320).fill(i);
    const message = uplink.push(frame);
    if (message) out.push(...message);
  }
  out.push(...(uplink.take() ?? []));
  const expected: number[] = [];
  for (let i = 0; i < 200; i++) {
    expected.push(...new Uint8Array(i % 2 ? 960 : 320).fill(i));
  }
  assertEquals(out, expected);
});

Deno.test("SttUplink: a frame reused by its sender after push does not change held audio", () => {
  const uplink = new SttUplink({ sampleRate: 8000, quietAfterMs: 0 });
  const frame = new Uint8Array(320).fill(1);
  assertEquals(uplink.push(frame), undefined);
  frame.fill(9);
  assertEquals(uplink.take(), new Uint8Array(320).fill(1));
});

Deno.test("SttUplink: bad options are refused, quoting the value", () => {
  assertThrows(
    () => new SttUplink({ sampleRate: 0 }),
    RangeError,
    'Invalid sampleRate "0"',
  );
  assertThrows(
    () => new SttUplink({ sampleRate: 8000, coalesceMs: -1 }),
    RangeError,
    'Invalid coalesceMs "-1"',
  );
  assertThrows(
    () => new SttUplink({ sampleRate: 8000, quietAfterMs: Number.NaN }),
    RangeError,
    'Invalid quietAfterMs "NaN"',
  );
});

Deno.test("listener sends a quiet caller to Deepgram in 100 ms messages, speech frame by frame, all audio in order", async () => {
  // No transcripts: the vendor opening a turn would keep frames single.
  await using server = await FakeSttServer.start("deepgram", {
    script: { turns: [] },
  });
  const stt = new DeepgramStt({
    apiKey: server.apiKey,
    baseUrl: server.baseUrl,
    connectTimeoutMs: 2000,
  });
  const events: SpeechEvent[] = [];
  const listener = new Listener({
    stt,
    callRate: 8000,
    sttRate: 8000,
    language: "en-IN",
    clock: systemClock,
    onEvent: (event) => events.push(event),
    onError: (error) => {
      throw error;
    },
  });
  listener.start();
  try {
    const connection = await server.connection(0);
    await until(() => connection.headers.has("authorization"), "the session");
    const sent: number[] = [];
    const push = (n: number) => {
      for (let i = 0; i < n; i++) {
        const frame = new Uint8Array(320).fill(sent.length % 256);
        sent.push(...frame);
        listener.push(frame);
      }
    };
    // Wait for the socket, so nothing is held back for connecting.
    push(1);
    await until(() => connection.audioBytes === 320, "the first frame");
    push(49); // the first second, frame by frame
    push(100); // two quiet seconds, 100 ms at a time
    await until(() => connection.audioBytes === sent.length, "quiet audio");
    assertEquals(connection.audioMessages, 50 + 20);
    push(2);
    listener.voiced(); // speech: the 40 ms held go at once
    push(3);
    await until(() => connection.audioBytes === sent.length, "speech audio");
    assertEquals(connection.audioMessages, 50 + 20 + 1 + 3);
    assertEquals(events, []);
    push(2); // held at close, and sent before the farewell
    await listener.close();
    assertEquals(connection.audio, new Uint8Array(sent));
  } finally {
    await listener.close();
  }
});

Deno.test("agent: caller speech after a long silence goes to speech-to-text frame by frame, as the voice-activity detector hears it", async () => {
  // No transcripts, so only the detector can end the coalescing.
  await using vendors = await startAgentFakes({ script: { turns: [] } });
  const factory = createAgentBotFactory(vendors.config, {
    providers: vendors.providers,
    clock: new FakeClock(),
  });
  await using call = startMemoryCall<AgentBot>(factory);
  const connection = await vendors.stt.connection(0);
  await until(() => connection.headers.has("authorization"), "the session");
  const silence = new Uint8Array(2000 * 16);
  const hello = await fixturePcm("hello_8000.wav");
  const push = (pcm: Uint8Array) => call.bot.audio(pcm);
  await feed(push, silence, 8000);
  await until(() => connection.audioBytes === silence.length, "the silence");
  // A second frame by frame, then 100 ms messages.
  assertEquals(connection.audioMessages, 50 + 10);
  await feed(push, hello, 8000);
  await until(
    () => connection.audioBytes >= silence.length + hello.length - 1600,
    "the hello",
  );
  const frames = Math.ceil(hello.length / 320);
  const helloMessages = connection.audioMessages - 60;
  // All coalesced would be frames / 5; the speech (and the second after
  // it) went frame by frame.
  assertGreater(helloMessages, frames * 0.6, `${helloMessages} of ${frames}`);
  assertGreater(
    frames,
    helloMessages,
    "the silence before the words is coalesced",
  );
});
