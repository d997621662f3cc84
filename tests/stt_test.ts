import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { decodeWav } from "../src/audio/wav.ts";
import { ProviderError } from "../src/providers/provider_error.ts";
import {
  DeepgramStt,
  type DeepgramSttOptions,
} from "../src/providers/stt/deepgram.ts";
import {
  SarvamStt,
  type SarvamSttOptions,
} from "../src/providers/stt/sarvam.ts";
import type {
  SpeechEvent,
  SpeechToTextSession,
} from "../src/providers/stt/speech_to_text.ts";
import {
  FakeSttServer,
  HELLO_SCRIPT,
  HELLO_TRANSCRIPT,
  QUESTION_TRANSCRIPT,
  TWO_TURNS_SCRIPT,
} from "./fakes/stt_servers.ts";
import { FakeClock } from "./fakes/clock.ts";

async function fixture(name: string): Promise<Uint8Array> {
  const url = new URL(`./fixtures/audio/${name}.wav`, import.meta.url);
  return decodeWav(await Deno.readFile(url)).pcm;
}

const HELLO_PCM = await fixture("hello_8000");

/** 8 kHz PCM lasting `ms`. */
function pcmMs(ms: number): Uint8Array {
  return HELLO_PCM.slice(0, ms * 16);
}

function pushInChunks(
  session: SpeechToTextSession,
  pcm: Uint8Array,
  chunkBytes: number,
): void {
  for (let offset = 0; offset < pcm.length; offset += chunkBytes) {
    session.push(pcm.subarray(offset, offset + chunkBytes));
  }
}

/** Every event until the stream ends, and the error it ended with, if any. */
async function drain(
  session: SpeechToTextSession,
): Promise<{ events: SpeechEvent[]; error?: ProviderError }> {
  const events: SpeechEvent[] = [];
  try {
    for await (const event of session.events()) events.push(event);
  } catch (error) {
    assertInstanceOf(error, ProviderError);
    return { events, error };
  }
  return { events };
}

async function failure(session: SpeechToTextSession): Promise<ProviderError> {
  const { error } = await drain(session);
  assert(error, "expected the stream to fail");
  return error;
}

/** Connection settings of every adapter under test. */
function connectionTo(server: FakeSttServer) {
  return {
    apiKey: server.apiKey,
    baseUrl: server.baseUrl,
    connectTimeoutMs: 2000,
    closeTimeoutMs: 2000,
    // Tests push whole files before the socket opens.
    maxPendingMs: 10_000,
  };
}

function deepgram(
  server: FakeSttServer,
  overrides: Partial<DeepgramSttOptions> = {},
): DeepgramStt {
  return new DeepgramStt({ ...connectionTo(server), ...overrides });
}

function sarvam(
  server: FakeSttServer,
  overrides: Partial<SarvamSttOptions> = {},
): SarvamStt {
  return new SarvamStt({ ...connectionTo(server), ...overrides });
}

Deno.test("deepgram opens /v1/listen with the documented query and a Token header", async () => {
  await using server = await FakeSttServer.start("deepgram");
  const session = await deepgram(server).open({
    sampleRate: 8000,
    language: "en-IN",
  });
  const connection = await server.connection();
  await session.close();

  assertEquals(connection.url.pathname, "/v1/listen");
  assertEquals(Object.fromEntries(connection.url.searchParams), {
    model: "nova-3",
    encoding: "linear16",
    sample_rate: "8000",
    channels: "1",
    language: "en-IN",
    interim_results: "true",
    endpointing: "300",
    utterance_end_ms: "1000",
    vad_events: "true",
    smart_format: "true",
  });
  assertEquals(
    connection.headers.get("authorization"),
    `Token ${server.apiKey}`,
  );
  assertFalse(connection.url.href.includes(server.apiKey));
});

Deno.test("deepgram reports speech start, interim text and a final that ends the turn", async () => {
  await using server = await FakeSttServer.start("deepgram");
  const session = await deepgram(server).open({
    sampleRate: 8000,
    language: "en-IN",
  });
  const drained = drain(session);
  pushInChunks(session, pcmMs(1200), 320);
  const connection = await server.connection();
  await connection.until((c) =>
    c.sent.some((message) => message.type === "UtteranceEnd")
  );
  await session.close();

  assertEquals((await drained).events, [
    { type: "speech_started" },
    { type: "partial", text: "Hello, I would like to book" },
    { type: "final", text: HELLO_TRANSCRIPT, endOfTurn: true },
  ]);
});

Deno.test("deepgram reports an utterance end after finals without speech_final as the end of the turn", async () => {
  await using server = await FakeSttServer.start("deepgram");
  server.script({ kind: "transcribe", deepgramEndpoint: "utterance_end" });
  const session = await deepgram(server).open({
    sampleRate: 8000,
    language: "en-IN",
  });
  const drained = drain(session);
  pushInChunks(session, pcmMs(1200), 3200);
  const connection = await server.connection();
  await connection.until((c) =>
    c.sent.some((message) => message.type === "UtteranceEnd")
  );
  await session.close();

  const { events } = await drained;
  assertEquals(events.slice(-2), [
    { type: "final", text: HELLO_TRANSCRIPT, endOfTurn: false },
    { type: "end_of_turn" },
  ]);
});

Deno.test("deepgram transcribes the two-turn fixture as two turns", async () => {
  await using server = await FakeSttServer.start("deepgram", {
    script: TWO_TURNS_SCRIPT,
  });
  const session = await deepgram(server).open({
    sampleRate: 8000,
    language: "en-IN",
  });
  const drained = drain(session);
  pushInChunks(session, await fixture("two_turns_8000"), 3200);
  await session.close();

  assertEquals((await drained).events, [
    { type: "speech_started" },
    { type: "partial", text: "Hello, I would like to book" },
    { type: "final", text: HELLO_TRANSCRIPT, endOfTurn: true },
    { type: "speech_started" },
    { type: "partial", text: "What are your opening" },
    { type: "final", text: QUESTION_TRANSCRIPT, endOfTurn: true },
  ]);
});

Deno.test("deepgram holds only the newest maxPendingMs of audio while connecting", async () => {
  await using server = await FakeSttServer.start("deepgram");
  const release = server.holdHandshakes();
  const session = await deepgram(server, { maxPendingMs: 100 }).open({
    sampleRate: 8000,
    language: "en-IN",
  });
  pushInChunks(session, pcmMs(500), 320);
  release();
  const connection = await server.connection();
  await session.close();
  await connection.closed;

  assertEquals(connection.audio, pcmMs(500).slice(-1600));
});

Deno.test("deepgram sends KeepAlive while no audio flows", async () => {
  await using server = await FakeSttServer.start("deepgram");
  const session = await deepgram(server, { keepAliveMs: 20 }).open({
    sampleRate: 8000,
    language: "en-IN",
  });
  const connection = await server.connection();
  await connection.until((c) =>
    c.messages.some((message) => message.type === "KeepAlive")
  );
  await session.close();

  assertEquals(connection.audioBytes, 0);
});

/** Fake time to let pass, or audio to send at that point. */
type KeepAliveStep = number | "audio";

const KEEP_ALIVE_RULES: {
  rule: string;
  steps: KeepAliveStep[];
  expected: string[];
}[] = [
  {
    rule: "not before keepAliveMs of silence",
    steps: [4999],
    expected: ["CloseStream"],
  },
  {
    rule: "once keepAliveMs passed with nothing sent",
    steps: [5000],
    expected: ["KeepAlive", "CloseStream"],
  },
  {
    rule: "again every keepAliveMs while silence lasts",
    steps: [15_000],
    expected: ["KeepAlive", "KeepAlive", "KeepAlive", "CloseStream"],
  },
  {
    rule: "counting from the last audio sent, not before",
    steps: [3000, "audio", 4999],
    expected: ["CloseStream"],
  },
  {
    rule: "counting from the last audio sent",
    steps: [3000, "audio", 5000],
    expected: ["KeepAlive", "CloseStream"],
  },
];

for (const { rule, steps, expected } of KEEP_ALIVE_RULES) {
  Deno.test(`deepgram sends KeepAlive on its clock ${rule}`, async () => {
    await using server = await FakeSttServer.start("deepgram");
    const clock = new FakeClock();
    const session = await deepgram(server, { keepAliveMs: 5000 }).open({
      sampleRate: 8000,
      language: "en-IN",
      clock,
    });
    const connection = await server.connection();
    // Audio held until the socket opens is sent on open: once it arrived,
    // the session is open and its keepalive counts from fake time 0.
    session.push(new Uint8Array(320));
    await connection.until((c) => c.audioBytes === 320);
    for (const step of steps) {
      if (step === "audio") session.push(new Uint8Array(320));
      else await clock.advance(step);
    }
    // Text frames arrive in the order sent: any KeepAlive precedes this.
    await session.close();

    assertEquals(
      connection.messages.map((message) => message.type),
      expected,
    );
  });
}

Deno.test("deepgram close sends CloseStream and delivers the flushed final before ending", async () => {
  await using server = await FakeSttServer.start("deepgram");
  const session = await deepgram(server).open({
    sampleRate: 8000,
    language: "en-IN",
  });
  const drained = drain(session);
  pushInChunks(session, pcmMs(700), 320);
  await session.close();
  const connection = await server.connection();

  assertEquals(connection.messages.map((message) => message.type), [
    "CloseStream",
  ]);
  assertEquals((await drained).events, [
    { type: "speech_started" },
    { type: "partial", text: "Hello, I would like to book" },
    { type: "final", text: HELLO_TRANSCRIPT, endOfTurn: false },
  ]);
});

Deno.test("deepgram close gives up waiting for a server that never finishes", async () => {
  await using server = await FakeSttServer.start("deepgram");
  server.script({ kind: "silent" });
  const session = await deepgram(server, { closeTimeoutMs: 50 }).open({
    sampleRate: 8000,
    language: "en-IN",
  });
  const drained = drain(session);
  const connection = await server.connection();
  await session.close();

  assertEquals(await drained, { events: [] });
  assertEquals(connection.messages.map((message) => message.type), [
    "CloseStream",
  ]);
});

Deno.test("deepgram open rejects an already aborted signal", async () => {
  await using server = await FakeSttServer.start("deepgram");
  const error = await assertRejects(
    () =>
      deepgram(server).open({
        sampleRate: 8000,
        language: "en",
        signal: AbortSignal.abort(),
      }),
    ProviderError,
  );
  assertEquals(error.kind, "aborted");
  assertEquals(server.requests.length, 0);
});

Deno.test("sarvam opens /speech-to-text/ws with the documented query and key header", async () => {
  await using server = await FakeSttServer.start("sarvam");
  const session = await sarvam(server).open({
    sampleRate: 8000,
    language: "hi-IN",
  });
  const connection = await server.connection();
  await session.close();

  assertEquals(connection.url.pathname, "/speech-to-text/ws");
  assertEquals(Object.fromEntries(connection.url.searchParams), {
    "language-code": "hi-IN",
    model: "saaras:v3",
    mode: "transcribe",
    sample_rate: "8000",
    input_audio_codec: "wav",
    vad_signals: "true",
    flush_signal: "true",
  });
  assertEquals(connection.headers.get("api-subscription-key"), server.apiKey);
  assertFalse(connection.url.href.includes(server.apiKey));
});

Deno.test("sarvam reports speech start and a final transcript that ends the turn", async () => {
  await using server = await FakeSttServer.start("sarvam");
  const session = await sarvam(server).open({
    sampleRate: 16000,
    language: "en-IN",
  });
  const drained = drain(session);
  session.push(new Uint8Array(32 * 1200));
  const connection = await server.connection();
  await connection.until((c) =>
    c.sent.some((message) => message.type === "data")
  );
  await session.close();

  assertEquals((await drained).events, [
    { type: "speech_started" },
    { type: "final", text: HELLO_TRANSCRIPT, endOfTurn: true },
  ]);
});

Deno.test("sarvam transcribes the hello fixture at 16 kHz", async () => {
  await using server = await FakeSttServer.start("sarvam", {
    script: HELLO_SCRIPT,
  });
  const session = await sarvam(server).open({
    sampleRate: 16000,
    language: "en-IN",
  });
  const drained = drain(session);
  const pcm = await fixture("hello_16000");
  pushInChunks(session, pcm, 6400);
  await session.close();

  assertEquals((await drained).events, [
    { type: "speech_started" },
    { type: "final", text: HELLO_TRANSCRIPT, endOfTurn: true },
  ]);
  assertEquals((await server.connection()).audioBytes, pcm.length);
});

Deno.test("sarvam close flushes and waits for the transcript of speech in progress", async () => {
  await using server = await FakeSttServer.start("sarvam");
  const session = await sarvam(server).open({
    sampleRate: 8000,
    language: "en-IN",
  });
  pushInChunks(session, pcmMs(650), 320);
  const events: SpeechEvent[] = [];
  let closed: Promise<void> | undefined;
  for await (const event of session.events()) {
    events.push(event);
    if (event.type === "speech_started") closed = session.close();
  }
  await closed;
  const connection = await server.connection();

  assertEquals(connection.messages.map((message) => message.type), ["flush"]);
  assertEquals(connection.audio, pcmMs(650));
  assertEquals(events, [
    { type: "speech_started" },
    { type: "final", text: HELLO_TRANSCRIPT, endOfTurn: true },
  ]);
});

Deno.test("sarvam keeps an idle stream open with silence when keepAliveMs is set", async () => {
  await using server = await FakeSttServer.start("sarvam");
  const session = await sarvam(server, { keepAliveMs: 20 }).open({
    sampleRate: 8000,
    language: "en-IN",
  });
  const connection = await server.connection();
  await connection.until((c) => c.audioBytes > 0);
  await session.close();

  assert(connection.audio.every((byte) => byte === 0));
});

Deno.test("sarvam surfaces a vendor error message as a protocol error", async () => {
  await using server = await FakeSttServer.start("sarvam");
  server.script({ kind: "error", afterBytes: 3200 });
  const session = await sarvam(server).open({
    sampleRate: 8000,
    language: "hi-IN",
  });
  pushInChunks(session, pcmMs(400), 320);
  const error = await failure(session);

  assertEquals(error.kind, "protocol");
  assertStringIncludes(error.message, "Audio could not be processed");
  await (await server.connection()).closed;
});

Deno.test("sarvam rejects a sample rate its streaming endpoint does not take", async () => {
  await using server = await FakeSttServer.start("sarvam");
  const error = await assertRejects(
    () => sarvam(server).open({ sampleRate: 24000, language: "hi-IN" }),
    ProviderError,
  );
  assertEquals(error.kind, "protocol");
  assertStringIncludes(error.message, '"24000"');
  assertEquals(server.requests.length, 0);
});

const VENDORS = [
  {
    vendor: "deepgram",
    open: deepgram,
    language: "en-IN",
    chunkBytes: 3200,
    refusedStatus: 401,
    dropReason: "NET-0000",
  },
  {
    vendor: "sarvam",
    open: sarvam,
    language: "hi-IN",
    // Odd sizes: Sarvam's adapter holds an odd byte for the next frame.
    chunkBytes: 333,
    refusedStatus: 403,
    dropReason: "Internal server error",
  },
] as const;

for (const vendorCase of VENDORS) {
  const { vendor, open, language, chunkBytes, refusedStatus, dropReason } =
    vendorCase;
  Deno.test(`${vendor} delivers pushed audio, in ${chunkBytes}-byte pieces, to the server byte for byte`, async () => {
    await using server = await FakeSttServer.start(vendor);
    const session = await open(server).open({ sampleRate: 8000, language });
    const drained = drain(session);
    pushInChunks(session, HELLO_PCM, chunkBytes);
    await session.close();
    const connection = await server.connection();
    await connection.closed;

    assertEquals(connection.audioBytes, HELLO_PCM.length);
    assertEquals(connection.audio, HELLO_PCM);
    assertEquals((await drained).error, undefined);
  });

  Deno.test(`${vendor} sends audio pushed before the socket opened`, async () => {
    await using server = await FakeSttServer.start(vendor);
    const release = server.holdHandshakes();
    const session = await open(server).open({ sampleRate: 8000, language });
    pushInChunks(session, pcmMs(500), 320);
    release();
    const connection = await server.connection();
    await session.close();
    await connection.closed;

    assertEquals(connection.audio, pcmMs(500));
  });

  Deno.test(`${vendor} turns a refused handshake into an http ProviderError without the key`, async () => {
    await using server = await FakeSttServer.start(vendor);
    server.script({ kind: "unauthorized" });
    const session = await open(server).open({ sampleRate: 8000, language });
    const error = await failure(session);
    await session.close();

    assertEquals([error.provider, error.kind, error.status], [
      vendor,
      "http",
      refusedStatus,
    ]);
    assertFalse(error.message.includes(server.apiKey));
    assertEquals(server.requests.map((request) => request.status), [
      refusedStatus,
    ]);
  });

  Deno.test(`${vendor} surfaces the server closing mid-stream as a network error with its code`, async () => {
    await using server = await FakeSttServer.start(vendor);
    server.script({ kind: "drop", afterBytes: 3200 });
    const session = await open(server).open({ sampleRate: 8000, language });
    // Exactly what the server takes before closing: Deno's server side drops
    // the connection without a close frame when data follows its close.
    pushInChunks(session, pcmMs(200), 320);
    const error = await failure(session);
    await session.close();

    assertEquals(error.kind, "network");
    assertStringIncludes(error.message, "1011");
    assertStringIncludes(error.message, dropReason);
  });

  Deno.test(`${vendor} fails with a timeout when the handshake is never answered`, async () => {
    await using server = await FakeSttServer.start(vendor);
    server.script({ kind: "hang" });
    const session = await open(server, { connectTimeoutMs: 50 }).open({
      sampleRate: 8000,
      language,
    });

    assertEquals((await failure(session)).kind, "timeout");
  });

  Deno.test(`${vendor} cuts off a session still connecting when the call ends`, async () => {
    await using server = await FakeSttServer.start(vendor);
    const release = server.holdHandshakes();
    const controller = new AbortController();
    const session = await open(server).open({
      sampleRate: 8000,
      language,
      signal: controller.signal,
    });
    controller.abort();
    release();

    assertEquals((await failure(session)).kind, "aborted");
    await session.close();
  });
}

const HANGUPS = [
  {
    vendor: "deepgram",
    open: deepgram,
    farewell: "CloseStream",
    // Deepgram finalizes the words it holds; the turn's end was not heard.
    owed: { type: "final", text: HELLO_TRANSCRIPT, endOfTurn: false },
  },
  {
    vendor: "sarvam",
    open: sarvam,
    farewell: "flush",
    owed: { type: "final", text: HELLO_TRANSCRIPT, endOfTurn: true },
  },
] as const;

for (const { vendor, open, farewell, owed } of HANGUPS) {
  Deno.test(`${vendor} says ${farewell} when the call ends and still reports the final transcript it owes`, async () => {
    await using server = await FakeSttServer.start(vendor);
    const controller = new AbortController();
    const session = await open(server).open({
      sampleRate: 8000,
      language: "en-IN",
      signal: controller.signal,
    });
    // Speech started, but the caller hung up before the turn's end.
    pushInChunks(session, pcmMs(650), 320);
    const events: SpeechEvent[] = [];
    for await (const event of session.events()) {
      events.push(event);
      if (event.type === "speech_started") controller.abort();
    }
    const connection = await server.connection();

    assertEquals(connection.messages.map((message) => message.type), [
      farewell,
    ]);
    assertEquals(events.at(-1), owed);
    assertEquals((await connection.closed).code, 1000);
    await session.close();
  });
  Deno.test(`${vendor} waits hangupWaitMs on its clock for a ${farewell} never answered, then closes`, async () => {
    await using server = await FakeSttServer.start(vendor, {
      script: { answersFarewell: false },
    });
    const clock = new FakeClock();
    const controller = new AbortController();
    const session = await open(server, { hangupWaitMs: 500 }).open({
      sampleRate: 8000,
      language: "en-IN",
      signal: controller.signal,
      clock,
    });
    pushInChunks(session, pcmMs(650), 320);
    const events: SpeechEvent[] = [];
    const connection = await server.connection();
    for await (const event of session.events()) {
      events.push(event);
      if (event.type !== "speech_started") continue;
      controller.abort();
      await connection.until((c) => c.messages.length > 0);
      await clock.advance(499);
      assertFalse(connection.isClosed, "closed before hangupWaitMs");
      await clock.advance(1);
    }

    assertEquals((await connection.closed).code, 1000);
    assertEquals(connection.messages.map((message) => message.type), [
      farewell,
    ]);
    assertFalse(events.some((event) => event.type === "final"));
    await session.close();
  });
}
