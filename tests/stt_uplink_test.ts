/**
 * The speech-to-text uplink: 60 ms messages while the caller speaks (pauses
 * within the speech's tail included), frame by frame while the vendor's
 * endpointing may depend on the audio, 100 ms messages while the caller has
 * long been quiet or the vendor has ended the turn; and the listener and
 * the agent sending through it to a fake Deepgram.
 */
import fc from "fast-check";
import { assert, assertEquals, assertGreater, assertThrows } from "@std/assert";
import { energyDetector } from "../src/audio/speech_detector.ts";
import type { AgentBot } from "../src/bots/agent/agent.ts";
import { createAgentBotFactory } from "../src/bots/agent/mod.ts";
import {
  speechTailFor,
  SttUplink,
  type SttUplinkOptions,
} from "../src/bots/agent/stt_uplink.ts";
import { FallbackStt } from "../src/providers/fallback/fallback_stt.ts";
import { ProviderChain } from "../src/providers/fallback/provider_chain.ts";
import { ProviderHealth } from "../src/providers/fallback/provider_health.ts";
import { DeepgramStt } from "../src/providers/stt/deepgram.ts";
import type {
  SpeechEvent,
  SpeechToText,
} from "../src/providers/stt/speech_to_text.ts";
import {
  feed,
  fixturePcm,
  listenerOn,
  startAgentFakes,
  startMemoryCall,
  until,
} from "./fakes/agent_call.ts";
import { FakeClock } from "./fakes/clock.ts";
import { FakeSttServer } from "./fakes/stt_servers.ts";

/**
 * One step: a 20 ms frame at 8 kHz, a detector verdict on the latest
 * window, or a vendor event.
 */
type Step = "frame" | "voiced" | "unvoiced" | SpeechEvent;

type RunOptions = Omit<SttUplinkOptions, "sampleRate">;

/** Runs `steps`, returning the sizes of the messages sent, in ms, per step (0 = none). */
function run(steps: Step[], options: RunOptions = {}): number[] {
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
    else if (step === "unvoiced") message = uplink.unvoiced();
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
/** `n` frames, each followed by the detector's verdict that it is speech. */
const speech = (n: number): Step[] =>
  Array.from({ length: n }, () => ["frame", "voiced"] as Step[]).flat();
/** `n` frames, each followed by the detector's verdict that it is not. */
const pause = (n: number): Step[] =>
  Array.from({ length: n }, () => ["frame", "unvoiced"] as Step[]).flat();
/** What `speech` and `pause` send: each frame's message, then none for its verdict. */
const perFrame = (sizes: number[]) => sizes.flatMap((size) => [size, 0]);
const live = (n: number) => Array(n).fill(20);
const coalesced = (n: number) =>
  Array.from({ length: n }, (_, i) => (i % 5 === 4 ? 100 : 0));
const inSpeech = (n: number) =>
  Array.from({ length: n }, (_, i) => (i % 3 === 2 ? 60 : 0));

const endOfTurn: SpeechEvent = { type: "final", text: "hi", endOfTurn: true };

const cases: {
  name: string;
  steps: Step[];
  sent: number[];
  options?: RunOptions;
}[] = [
  {
    name: "while the caller speaks, 60 ms go in one message",
    steps: speech(10),
    sent: perFrame([20, ...inSpeech(9)]),
  },
  {
    name: "a window without speech sends what is held, then frame by frame",
    steps: [...speech(5), ...pause(3), ...speech(4)],
    sent: [
      ...perFrame([20, 0, 0, 60, 0]),
      // The first frame of the pause was pushed before its verdict.
      0,
      40,
      ...perFrame([20, 20]),
      // Speech onset: that frame was pushed before its verdict too.
      ...perFrame([20, ...inSpeech(3)]),
    ],
  },
  {
    name:
      "speech onset after a quiet second sends what is held, then 60 ms at a time",
    steps: [...frames(53), "voiced", ...speech(4)],
    sent: [...live(50), 0, 0, 0, 60, ...perFrame(inSpeech(4))],
  },
  {
    name: "after speech a second goes frame by frame, then 100 ms at a time",
    steps: [...speech(3), ...pause(55)],
    sent: [
      ...perFrame([20, 0, 0, 60]),
      // Quiet counts from the last speech, 60 ms into the audio.
      ...perFrame(live(49)),
      ...perFrame(coalesced(5)),
    ],
  },
  {
    name:
      "the vendor's final ending the turn sends what is held, then holds quiet audio until speech",
    steps: [...speech(3), endOfTurn, "frame", "voiced", ...frames(3)],
    sent: [...perFrame([20, 0, 0]), 40, 0, 20, ...inSpeech(3)],
  },
  {
    name:
      "the vendor's end_of_turn sends what is held, then holds quiet audio until speech",
    steps: [
      ...speech(3),
      { type: "end_of_turn" },
      ...frames(2),
      "voiced",
      ...frames(3),
    ],
    sent: [...perFrame([20, 0, 0]), 40, 0, 0, 40, ...inSpeech(3)],
  },
  {
    name:
      "an end of turn while the detector still hears speech: the next frame waits for its verdict",
    steps: [...speech(5), endOfTurn, ...speech(4)],
    sent: [
      ...perFrame([20, 0, 0, 60, 0]),
      20,
      // Held as quiet audio until its verdict, speech, sends it.
      0,
      20,
      ...perFrame(inSpeech(3)),
    ],
  },
  {
    name:
      "a partial during speech sends what is held; the open turn keeps the pause frame by frame",
    steps: [
      ...speech(3),
      { type: "partial", text: "hel" },
      ...speech(3),
      ...pause(60),
      { type: "end_of_turn" },
      ...frames(55),
    ],
    sent: [
      ...perFrame([20, 0, 0]),
      40,
      ...perFrame(inSpeech(3)),
      0,
      20,
      ...perFrame(live(59)),
      0,
      ...coalesced(55),
    ],
  },
  {
    name:
      "a detector that stops reporting mid-speech falls back to 100 ms after a second",
    steps: [...speech(2), ...frames(58), "voiced", ...frames(3)],
    sent: [
      ...perFrame([20, 0]),
      // Last speech 40 ms in, 20 ms held: 60 ms messages until 1040 ms,
      // then 100 ms.
      0,
      60,
      ...inSpeech(48),
      ...coalesced(8),
      // Its next verdict of speech sends the quiet audio held at once.
      60,
      ...inSpeech(3),
    ],
  },
  {
    name: "speechCoalesceMs 0 sends speech frame by frame",
    steps: [...speech(5), ...pause(2), ...speech(3)],
    sent: perFrame(live(10)),
    options: { speechCoalesceMs: 0 },
  },
  {
    name: "a pause shorter than the speech's tail is held as speech",
    steps: [...speech(5), ...pause(4), ...speech(4)],
    sent: [
      ...perFrame([20, 0, 0, 60, 0, 0, 60, 0, 0, 60]),
      ...perFrame(inSpeech(3)),
    ],
    options: { speechTailMs: 100 },
  },
  {
    name:
      "past the speech's tail what is held goes at once, then frame by frame",
    steps: [...speech(3), ...pause(8)],
    sent: [
      ...perFrame([20, 0, 0, 60, 0, 0, 60]),
      // 100 ms after the last speech.
      0,
      20,
      ...perFrame(live(3)),
    ],
    options: { speechTailMs: 100 },
  },
  {
    name: "speechCoalesceMs 100 sends speech 100 ms at a time",
    steps: speech(11),
    sent: perFrame([20, ...coalesced(10)]),
    options: { speechCoalesceMs: 100 },
  },
];

/** The cases from before speech was coalesced: with `speechCoalesceMs: 0` they send the same. */
const quietCases: typeof cases = [
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
      ...coalesced(55),
    ],
  },
  {
    name: "a final that ends the turn coalesces quiet audio at once",
    steps: [
      ...frames(50),
      { type: "partial", text: "hi" },
      ...frames(10),
      endOfTurn,
      ...frames(55),
    ],
    sent: [...live(50), 0, ...live(10), 0, ...coalesced(55)],
  },
  {
    name: "coalesceMs 0 sends every frame",
    steps: frames(80),
    sent: live(80),
    options: { coalesceMs: 0 },
  },
  {
    name: "coalesceMs 60 sends 60 ms at a time",
    steps: frames(56),
    sent: [...live(50), 0, 0, 60, 0, 0, 60],
    options: { coalesceMs: 60 },
  },
];

// Without a speech tail unless a case sets one: each pause then shows at once.
for (const { name, steps, sent, options } of cases) {
  Deno.test(`SttUplink: ${name}`, () => {
    assertEquals(run(steps, { speechTailMs: 0, ...options }), sent);
  });
}

for (const { name, steps, sent, options } of quietCases) {
  Deno.test(`SttUplink, speechCoalesceMs 0: ${name}`, () => {
    assertEquals(run(steps, { ...options, speechCoalesceMs: 0 }), sent);
  });
}

Deno.test("SttUplink: any mix of frames, verdicts and vendor events sends every byte once, in order, holding less than a message", () => {
  const event = fc.constantFrom<SpeechEvent>(
    { type: "speech_started" },
    { type: "partial", text: "hel" },
    { type: "final", text: "hello", endOfTurn: false },
    endOfTurn,
    { type: "end_of_turn" },
  );
  const step = fc.oneof(
    // Frames of any whole number of samples, most of them 20 ms.
    { arbitrary: fc.constant(160), weight: 6 },
    { arbitrary: fc.integer({ min: 0, max: 800 }), weight: 2 },
    {
      arbitrary: fc.constantFrom("voiced" as const, "unvoiced" as const),
      weight: 4,
    },
    { arbitrary: event, weight: 1 },
  );
  const options = fc.record({
    coalesceMs: fc.integer({ min: 0, max: 250 }),
    speechCoalesceMs: fc.integer({ min: 0, max: 250 }),
    speechTailMs: fc.integer({ min: 0, max: 300 }),
    quietAfterMs: fc.integer({ min: 0, max: 2000 }),
    sampleRate: fc.constantFrom(8000, 16000),
  });
  fc.assert(
    fc.property(
      options,
      fc.array(step, { maxLength: 600 }),
      (options, steps) => {
        const uplink = new SttUplink(options);
        const limit = Math.max(options.coalesceMs, options.speechCoalesceMs) *
          options.sampleRate * 2 / 1000;
        const pushed: number[] = [];
        // Kept as sent, to see that later frames never change a message.
        const messages: Uint8Array[] = [];
        let sentBytes = 0;
        const send = (message: Uint8Array | undefined) => {
          if (!message) return;
          messages.push(message);
          sentBytes += message.length;
        };
        let next = 0;
        for (const step of steps) {
          if (typeof step === "number") {
            const frame = Uint8Array.from(
              { length: step * 2 },
              () => next++ % 251,
            );
            pushed.push(...frame);
            const message = uplink.push(frame);
            // The frame itself goes out before its sender reuses it.
            send(message === frame ? frame.slice() : message);
            frame.fill(0);
          } else if (step === "voiced") send(uplink.voiced());
          else if (step === "unvoiced") send(uplink.unvoiced());
          else send(uplink.heard(step));
          assert(
            pushed.length - sentBytes < Math.max(limit, 2),
            `${pushed.length - sentBytes} bytes held, limit ${limit}`,
          );
        }
        send(uplink.take());
        assertEquals(messages.flatMap((message) => [...message]), pushed);
      },
    ),
    { seed: 20261203, numRuns: 300 },
  );
});

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

Deno.test("the speech tail follows the vendor's endpointing: Deepgram's, or the shortest in a fallback list", () => {
  const deepgram = (endpointingMs?: number) =>
    new DeepgramStt({ apiKey: "key", connectTimeoutMs: 1000, endpointingMs });
  assertEquals(deepgram().endpointingMs, 300);
  assertEquals(speechTailFor(deepgram().endpointingMs), 100);
  const decidesAlone: SpeechToText = {
    name: "sarvam",
    open: () => Promise.reject(new Error("Not opened in this test")),
  };
  const chain = (providers: SpeechToText[]) =>
    new FallbackStt(
      new ProviderChain(
        "stt",
        providers.map((provider, i) => ({ provider, label: `stt-${i}` })),
        { health: new ProviderHealth({ now: () => 0 }) },
      ).forCall(),
    );
  const listed = chain([deepgram(600), decidesAlone, deepgram(90)]);
  assertEquals(listed.endpointingMs, 90);
  assertEquals(speechTailFor(listed.endpointingMs), 30);
  assertEquals(chain([decidesAlone]).endpointingMs, undefined);
  assertEquals(speechTailFor(undefined), 100);
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
    () => new SttUplink({ sampleRate: 8000, speechCoalesceMs: -20 }),
    RangeError,
    'Invalid speechCoalesceMs "-20"',
  );
  assertThrows(
    () => new SttUplink({ sampleRate: 8000, speechTailMs: Infinity }),
    RangeError,
    'Invalid speechTailMs "Infinity"',
  );
  assertThrows(
    () => new SttUplink({ sampleRate: 8000, quietAfterMs: Number.NaN }),
    RangeError,
    'Invalid quietAfterMs "NaN"',
  );
});

Deno.test("listener sends a quiet caller to Deepgram in 100 ms messages, speech in 60 ms ones, a pause past the tail frame by frame, all audio in order", async () => {
  // No transcripts: the vendor opening a turn would keep frames single.
  await using server = await FakeSttServer.start("deepgram", {
    script: { turns: [] },
  });
  const stt = new DeepgramStt({
    apiKey: server.apiKey,
    baseUrl: server.baseUrl,
    connectTimeoutMs: 2000,
  });
  const { listener, events } = listenerOn(stt);
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
    push(3); // then 60 ms at a time
    await until(() => connection.audioBytes === sent.length, "speech audio");
    assertEquals(connection.audioMessages, 50 + 20 + 1 + 1);
    // A pause: held as speech until 100 ms after the last speech (the tail
    // for Deepgram's default endpointing), then the 40 ms held go at once,
    // then frame by frame.
    for (let i = 0; i < 5; i++) {
      push(1);
      listener.unvoiced();
    }
    push(2);
    await until(() => connection.audioBytes === sent.length, "the pause");
    assertEquals(connection.audioMessages, 50 + 20 + 1 + 1 + 1 + 3 + 2);
    assertEquals(events, []);
    listener.voiced();
    push(2); // held at close, and sent before the farewell
    await listener.close();
    assertEquals(connection.audio, new Uint8Array(sent));
  } finally {
    await listener.close();
  }
});

/**
 * What the uplink sends for `pcm` in 20 ms frames at 8 kHz with the energy
 * detector's verdicts (the agent's default): messages, and bytes still held.
 */
async function simulate(
  pcm: Uint8Array,
): Promise<{ messages: number; heldBytes: number }> {
  const uplink = new SttUplink({ sampleRate: 8000 });
  let messages = 0;
  const count = (message: Uint8Array | undefined) => {
    if (message) messages++;
  };
  const detector = energyDetector(8000, {
    onFrame: (frame) =>
      count(frame.isSpeech ? uplink.voiced() : uplink.unvoiced()),
  });
  for (let at = 0; at < pcm.length; at += 320) {
    const frame = pcm.subarray(at, at + 320);
    count(uplink.push(frame));
    detector.push(frame);
  }
  await detector.close();
  return { messages, heldBytes: uplink.take()?.length ?? 0 };
}

Deno.test("agent: the voice-activity detector's verdicts shape the speech-to-text messages, 60 ms while the caller speaks", async () => {
  // No transcripts, so only the detector moves the uplink.
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
  const all = new Uint8Array(silence.length + hello.length);
  all.set(hello, silence.length);
  const expected = await simulate(all);
  await until(
    () => connection.audioBytes === all.length - expected.heldBytes,
    "the hello",
  );
  assertEquals(connection.audio, all.subarray(0, connection.audioBytes));
  assertEquals(connection.audioMessages, expected.messages);
  // Frame by frame would be one message per frame, all coalesced a fifth
  // of that: the words went in 60 ms messages, the pauses frame by frame.
  const frames = Math.ceil(hello.length / 320);
  const helloMessages = connection.audioMessages - 60;
  assertGreater(helloMessages, frames / 5, `${helloMessages} of ${frames}`);
  assertGreater(frames * 0.8, helloMessages, `${helloMessages} of ${frames}`);
});
