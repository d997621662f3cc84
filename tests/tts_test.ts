import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { encodeWav } from "../src/audio/wav.ts";
import { ProviderError } from "../src/providers/provider_error.ts";
import { DeepgramTts } from "../src/providers/tts/deepgram.ts";
import { ElevenLabsTts } from "../src/providers/tts/elevenlabs.ts";
import { evenPieces } from "../src/providers/tts/even_pieces.ts";
import { vendorMessage } from "../src/providers/tts/http_stream.ts";
import {
  chooseSampleRate,
  InvalidSampleRateError,
} from "../src/providers/tts/sample_rate.ts";
import { sarvamLanguage, SarvamTts } from "../src/providers/tts/sarvam.ts";
import type { TextToSpeech } from "../src/providers/tts/text_to_speech.ts";
import {
  fakeSpeech,
  FakeTtsServer,
  type TtsVendor,
} from "./fakes/tts_servers.ts";
import { concat } from "@std/bytes";
import type { Clock } from "../src/call/clock.ts";
import { FakeClock, settle } from "./fakes/clock.ts";

const TIMEOUT_MS = 2000;

interface Received {
  pcm: Uint8Array;
  pieces: number[];
}

async function receive(audio: AsyncIterable<Uint8Array>): Promise<Received> {
  const parts: Uint8Array[] = [];
  for await (const piece of audio) parts.push(piece);
  return { pcm: concat(parts), pieces: parts.map((part) => part.length) };
}

async function providerError(
  work: () => Promise<unknown>,
): Promise<ProviderError> {
  const error = await assertRejects(work);
  assertInstanceOf(error, ProviderError);
  return error;
}

interface AdapterOptions {
  apiKey?: string;
  timeoutMs?: number;
  mode?: "stream" | "rest";
  clock?: Clock;
}

/** What every adapter under test is created with. */
function connectionTo(server: FakeTtsServer, options: AdapterOptions) {
  return {
    apiKey: options.apiKey ?? server.apiKey,
    baseUrl: server.baseUrl,
    timeoutMs: options.timeoutMs ?? TIMEOUT_MS,
    clock: options.clock,
  };
}

function deepgram(server: FakeTtsServer, options: AdapterOptions = {}) {
  const voice = "aura-2-thalia-en";
  return new DeepgramTts({ ...connectionTo(server, options), voice });
}

function elevenlabs(server: FakeTtsServer, options: AdapterOptions = {}) {
  const voice = "JBFqnCBsd6RMkjVDRZzb";
  return new ElevenLabsTts({ ...connectionTo(server, options), voice });
}

function sarvam(server: FakeTtsServer, options: AdapterOptions = {}) {
  const { mode } = options;
  return new SarvamTts({
    ...connectionTo(server, options),
    voice: "shubh",
    mode,
  });
}

const adapters: Record<
  TtsVendor,
  (server: FakeTtsServer, options?: AdapterOptions) => TextToSpeech
> = { deepgram, elevenlabs, sarvam };

// --- Deepgram -------------------------------------------------------------

Deno.test("deepgram posts the text to /v1/speak with its token and asks for raw linear16 at the call's rate", async () => {
  await using server = await FakeTtsServer.start("deepgram");
  const synthesis = await deepgram(server).synthesize("Hello there", {
    sampleRate: 8000,
  });
  const { pcm } = await receive(synthesis.audio);

  assertEquals(synthesis.sampleRate, 8000);
  assertEquals(pcm, fakeSpeech("Hello there", 8000));
  const [request] = server.requests;
  assertEquals(request.method, "POST");
  assertEquals(request.path, "/v1/speak");
  assertEquals(request.headers["authorization"], `Token ${server.apiKey}`);
  assertEquals(request.headers["content-type"], "application/json");
  assertEquals(request.query, {
    model: "aura-2-thalia-en",
    encoding: "linear16",
    sample_rate: "8000",
    container: "none",
  });
  assertEquals(request.body, { text: "Hello there" });
});

Deno.test("deepgram asks for the lowest supported rate above one it lacks and reports it", async () => {
  await using server = await FakeTtsServer.start("deepgram");
  const synthesis = await deepgram(server).synthesize("Hi", {
    sampleRate: 22050,
  });
  const { pcm } = await receive(synthesis.audio);

  assertEquals(synthesis.sampleRate, 24000);
  assertEquals(server.requests[0].query["sample_rate"], "24000");
  assertEquals(pcm, fakeSpeech("Hi", 24000));
});

Deno.test("deepgram re-cuts pieces split mid-sample into whole samples", async () => {
  await using server = await FakeTtsServer.start("deepgram");
  server.script({ kind: "speak", pieces: 5, oddCuts: true });
  const synthesis = await deepgram(server).synthesize("Odd pieces", {
    sampleRate: 16000,
  });
  const { pcm, pieces } = await receive(synthesis.audio);

  assert(pieces.length > 1);
  assert(pieces.every((length) => length % 2 === 0), `pieces ${pieces}`);
  assertEquals(pcm, fakeSpeech("Odd pieces", 16000));
});

// --- ElevenLabs -----------------------------------------------------------

Deno.test("elevenlabs posts to the voice's stream endpoint with xi-api-key and asks for pcm at the call's rate", async () => {
  await using server = await FakeTtsServer.start("elevenlabs");
  const tts = new ElevenLabsTts({
    apiKey: server.apiKey,
    voice: "JBFqnCBsd6RMkjVDRZzb",
    model: "eleven_multilingual_v2",
    baseUrl: server.baseUrl,
    timeoutMs: TIMEOUT_MS,
    voiceSettings: { stability: 0.5, similarityBoost: 0.75, speed: 1.1 },
    enforceLanguage: true,
  });
  const synthesis = await tts.synthesize("Namaste", {
    sampleRate: 16000,
    language: "hi-IN",
  });
  const { pcm } = await receive(synthesis.audio);

  assertEquals(synthesis.sampleRate, 16000);
  assertEquals(pcm, fakeSpeech("Namaste", 16000));
  const [request] = server.requests;
  assertEquals(request.path, "/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb/stream");
  assertEquals(request.headers["xi-api-key"], server.apiKey);
  assertFalse("authorization" in request.headers);
  assertEquals(request.query, { output_format: "pcm_16000" });
  assertEquals(request.body, {
    text: "Namaste",
    model_id: "eleven_multilingual_v2",
    voice_settings: { stability: 0.5, similarity_boost: 0.75, speed: 1.1 },
    language_code: "hi",
  });
});

Deno.test("elevenlabs sends only text and its default model unless told more", async () => {
  await using server = await FakeTtsServer.start("elevenlabs");
  const synthesis = await elevenlabs(server).synthesize("Hello", {
    sampleRate: 8000,
    language: "en-IN",
  });
  await receive(synthesis.audio);

  assertEquals(server.requests[0].body, {
    text: "Hello",
    model_id: "eleven_flash_v2_5",
  });
  assertEquals(server.requests[0].query, { output_format: "pcm_8000" });
});

Deno.test("elevenlabs asks for the lowest pcm format above a rate it lacks and reports it", async () => {
  await using server = await FakeTtsServer.start("elevenlabs");
  const synthesis = await elevenlabs(server).synthesize("Hello", {
    sampleRate: 11025,
  });
  const { pcm } = await receive(synthesis.audio);

  assertEquals(synthesis.sampleRate, 16000);
  assertEquals(server.requests[0].query, { output_format: "pcm_16000" });
  assertEquals(pcm, fakeSpeech("Hello", 16000));
});

Deno.test("elevenlabs quotes the messages of a validation error", async () => {
  await using server = await FakeTtsServer.start("elevenlabs");
  server.script({
    kind: "reply",
    status: 422,
    body: {
      detail: [{
        type: "missing",
        loc: ["body", "text"],
        msg: "Field required",
        input: {},
      }],
    },
  });
  const error = await providerError(() =>
    elevenlabs(server).synthesize("Hello", { sampleRate: 8000 })
  );

  assertEquals(error.kind, "http");
  assertEquals(error.status, 422);
  assertStringIncludes(error.message, '"Field required"');
});

// --- Sarvam ---------------------------------------------------------------

Deno.test("sarvam streams linear16 from /text-to-speech/stream with its subscription key", async () => {
  await using server = await FakeTtsServer.start("sarvam");
  const synthesis = await sarvam(server).synthesize("नमस्ते दोस्त", {
    sampleRate: 8000,
    language: "hi",
  });
  const { pcm } = await receive(synthesis.audio);

  assertEquals(synthesis.sampleRate, 8000);
  assertEquals(pcm, fakeSpeech("नमस्ते दोस्त", 8000));
  const [request] = server.requests;
  assertEquals(request.path, "/text-to-speech/stream");
  assertEquals(request.headers["api-subscription-key"], server.apiKey);
  assertEquals(request.body, {
    text: "नमस्ते दोस्त",
    target_language_code: "hi-IN",
    speaker: "shubh",
    model: "bulbul:v3",
    speech_sample_rate: 8000,
    output_audio_codec: "linear16",
  });
});

Deno.test("sarvam falls back to its configured language for one Bulbul lacks", async () => {
  await using server = await FakeTtsServer.start("sarvam");
  const tts = new SarvamTts({
    apiKey: server.apiKey,
    voice: "ritu",
    model: "bulbul:v2",
    baseUrl: server.baseUrl,
    timeoutMs: TIMEOUT_MS,
    language: "ta-IN",
    pace: 1.2,
  });
  const synthesis = await tts.synthesize("Bonjour", {
    sampleRate: 24000,
    language: "fr-FR",
  });
  await receive(synthesis.audio);

  assertEquals(server.requests[0].body, {
    text: "Bonjour",
    target_language_code: "ta-IN",
    speaker: "ritu",
    model: "bulbul:v2",
    speech_sample_rate: 24000,
    output_audio_codec: "linear16",
    pace: 1.2,
  });
});

Deno.test("sarvam maps BCP 47 tags to the language codes Bulbul speaks", () => {
  assertEquals(sarvamLanguage("hi", "en-IN"), "hi-IN");
  assertEquals(sarvamLanguage("en-US", "hi-IN"), "en-IN");
  assertEquals(sarvamLanguage("or-IN", "en-IN"), "od-IN");
  assertEquals(sarvamLanguage("de-DE", "en-IN"), "en-IN");
  assertEquals(sarvamLanguage(undefined, "kn-IN"), "kn-IN");
});

Deno.test("sarvam skips a WAV header in front of streamed audio, even one split mid-sample", async () => {
  await using server = await FakeTtsServer.start("sarvam");
  server.script({ kind: "speak", wavHeader: true, pieces: 7, oddCuts: true });
  const synthesis = await sarvam(server).synthesize("Header first", {
    sampleRate: 16000,
  });
  const { pcm, pieces } = await receive(synthesis.audio);

  assert(pieces.every((length) => length % 2 === 0), `pieces ${pieces}`);
  assertEquals(pcm, fakeSpeech("Header first", 16000));
});

Deno.test("sarvam rest mode decodes the base64 WAV of /text-to-speech and reports its rate", async () => {
  await using server = await FakeTtsServer.start("sarvam");
  const synthesis = await sarvam(server, { mode: "rest" }).synthesize(
    "Hello from REST",
    { sampleRate: 22050, language: "en-IN" },
  );
  const { pcm, pieces } = await receive(synthesis.audio);

  assertEquals(synthesis.sampleRate, 22050);
  assertEquals(pieces.length, 1);
  assertEquals(pcm, fakeSpeech("Hello from REST", 22050));
  const [request] = server.requests;
  assertEquals(request.path, "/text-to-speech");
  assertEquals(request.body, {
    text: "Hello from REST",
    target_language_code: "en-IN",
    speaker: "shubh",
    model: "bulbul:v3",
    speech_sample_rate: 22050,
    output_audio_codec: "wav",
  });
});

Deno.test("sarvam rest mode takes the rate the WAV states over the one asked for", async () => {
  await using server = await FakeTtsServer.start("sarvam");
  const pcm = fakeSpeech("x", 24000);
  server.script({
    kind: "reply",
    status: 200,
    body: {
      request_id: "r1",
      audios: [encodeWav({ sampleRate: 24000, pcm }).toBase64()],
    },
  });
  const synthesis = await sarvam(server, { mode: "rest" }).synthesize("x", {
    sampleRate: 8000,
  });

  assertEquals(synthesis.sampleRate, 24000);
  assertEquals((await receive(synthesis.audio)).pcm, pcm);
});

Deno.test("sarvam rest mode fails as a protocol error when the answer has no audio", async () => {
  await using server = await FakeTtsServer.start("sarvam");
  server.script({ kind: "reply", status: 200, body: { request_id: "r1" } });
  const error = await providerError(() =>
    sarvam(server, { mode: "rest" }).synthesize("x", { sampleRate: 8000 })
  );

  assertEquals(error.kind, "protocol");
  assertStringIncludes(error.message, '"audios"');
});

Deno.test("sarvam rest mode times out when the answer never comes", async () => {
  await using server = await FakeTtsServer.start("sarvam");
  server.script({ kind: "hang" });
  const tts = sarvam(server, { mode: "rest", timeoutMs: 100 });
  const error = await providerError(() =>
    tts.synthesize("x", { sampleRate: 8000 })
  );

  assertEquals(error.kind, "timeout");
});

// --- Every vendor -----------------------------------------------------------

const AUTH_STATUS: Record<TtsVendor, number> = {
  deepgram: 401,
  elevenlabs: 401,
  sarvam: 403,
};
const AUTH_MESSAGE: Record<TtsVendor, string> = {
  deepgram: "Invalid credentials.",
  elevenlabs: "Invalid API key",
  sarvam: "Invalid API key",
};

for (const vendor of ["deepgram", "elevenlabs", "sarvam"] as const) {
  Deno.test(`${vendor} turns a rejected key into an http error with the vendor's message and no key`, async () => {
    await using server = await FakeTtsServer.start(vendor);
    const wrongKey = "sk-wrong-0123456789";
    const error = await providerError(() =>
      adapters[vendor](server, { apiKey: wrongKey }).synthesize("Hello", {
        sampleRate: 8000,
      })
    );

    assertEquals(error.provider, vendor);
    assertEquals(error.kind, "http");
    assertEquals(error.status, AUTH_STATUS[vendor]);
    assertStringIncludes(error.message, AUTH_MESSAGE[vendor]);
    assertFalse(error.message.includes(wrongKey));
  });

  Deno.test(`${vendor} turns a 500 into an http error with status 500`, async () => {
    await using server = await FakeTtsServer.start(vendor);
    server.script({ kind: "server_error" });
    const error = await providerError(() =>
      adapters[vendor](server).synthesize("Hello", { sampleRate: 8000 })
    );

    assertEquals(error.kind, "http");
    assertEquals(error.status, 500);
    assertStringIncludes(error.message, "Internal server error");
  });

  Deno.test(`${vendor} times out when the vendor never answers`, async () => {
    await using server = await FakeTtsServer.start(vendor);
    server.script({ kind: "hang" });
    // A short deadline keeps the test quick; its value is not asserted.
    const tts = adapters[vendor](server, { timeoutMs: 100 });
    const error = await providerError(() =>
      tts.synthesize("Hello", { sampleRate: 8000 })
    );

    assertEquals(error.kind, "timeout");
    assertStringIncludes(error.message, "timed out");
  });

  Deno.test(`${vendor}'s deadline is timeoutMs on its clock`, async () => {
    await using server = await FakeTtsServer.start(vendor);
    server.script({ kind: "hang" });
    const clock = new FakeClock();
    const tts = adapters[vendor](server, { timeoutMs: 5000, clock });
    let settled = false;
    const pending = providerError(() =>
      tts.synthesize("Hello", { sampleRate: 8000 })
    ).finally(() => settled = true);
    while (server.requests.length === 0) await settle();
    await clock.advance(4999);
    assertFalse(settled, "gave up before timeoutMs");
    await clock.advance(1);
    assertEquals((await pending).kind, "timeout");
  });

  Deno.test(`${vendor} times out when the audio stalls midway`, async () => {
    await using server = await FakeTtsServer.start(vendor);
    server.script({ kind: "stall", afterBytes: 100 });
    const synthesis = await adapters[vendor](server, { timeoutMs: 100 })
      .synthesize("Hello there", { sampleRate: 8000 });
    const received: Uint8Array[] = [];
    const error = await providerError(async () => {
      for await (const piece of synthesis.audio) received.push(piece);
    });

    assertEquals(error.kind, "timeout");
    assertEquals(
      concat(received),
      fakeSpeech("Hello there", 8000).slice(0, 100),
    );
  });

  Deno.test(`${vendor} fails as a network error when the vendor drops the connection midway`, async () => {
    await using server = await FakeTtsServer.start(vendor);
    server.script({ kind: "disconnect", afterBytes: 64 });
    const synthesis = await adapters[vendor](server).synthesize("Hello", {
      sampleRate: 8000,
    });
    const error = await providerError(() => receive(synthesis.audio));

    assertEquals(error.kind, "network");
  });

  Deno.test(`${vendor} stops the download when aborted mid-stream and ends the audio quietly`, async () => {
    await using server = await FakeTtsServer.start(vendor);
    server.script({ kind: "speak", pieces: 8, delayMs: 20 });
    const controller = new AbortController();
    const synthesis = await adapters[vendor](server).synthesize(
      "A long answer the caller interrupts",
      { sampleRate: 8000, signal: controller.signal },
    );
    const received: Uint8Array[] = [];
    for await (const piece of synthesis.audio) {
      received.push(piece);
      controller.abort();
    }

    const full = fakeSpeech("A long answer the caller interrupts", 8000);
    assertEquals(received.length, 1);
    assertEquals(concat(received), full.slice(0, received[0].length));
    assert(received[0].length < full.length);
  });

  Deno.test(`${vendor} rejects as aborted when barged in before audio arrives`, async () => {
    await using server = await FakeTtsServer.start(vendor);
    server.script({ kind: "hang" });
    const controller = new AbortController();
    const pending = adapters[vendor](server).synthesize("Hello", {
      sampleRate: 8000,
      signal: controller.signal,
    });
    while (server.requests.length === 0) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    controller.abort();
    const error = await providerError(() => pending);

    assertEquals(error.kind, "aborted");
  });

  Deno.test(`${vendor} sends nothing for blank text or an aborted signal`, async () => {
    await using server = await FakeTtsServer.start(vendor);
    const tts = adapters[vendor](server);
    const blank = await tts.synthesize("  ", { sampleRate: 8000 });
    const error = await providerError(() =>
      tts.synthesize("Hello", {
        sampleRate: 8000,
        signal: AbortSignal.abort(),
      })
    );

    assertEquals((await receive(blank.audio)).pcm.length, 0);
    assertEquals(error.kind, "aborted");
    assertEquals(server.requests.length, 0);
  });

  Deno.test(`${vendor} releases the connection when the consumer stops reading early`, async () => {
    await using server = await FakeTtsServer.start(vendor);
    server.script({ kind: "speak", pieces: 6, delayMs: 10 });
    const synthesis = await adapters[vendor](server).synthesize("Hello there", {
      sampleRate: 8000,
    });
    for await (const piece of synthesis.audio) {
      assert(piece.length > 0);
      break;
    }
    const next = await adapters[vendor](server).synthesize("Again", {
      sampleRate: 8000,
    });

    assertEquals((await receive(next.audio)).pcm, fakeSpeech("Again", 8000));
  });
}

// --- Shared plumbing ----------------------------------------------------------

Deno.test("a vendor that cannot be reached fails as a network error", async () => {
  const server = await FakeTtsServer.start("deepgram");
  const tts = deepgram(server);
  await server.close();
  const error = await providerError(() =>
    tts.synthesize("Hello", { sampleRate: 8000 })
  );

  assertEquals(error.kind, "network");
});

Deno.test("a JSON answer where audio was expected fails as a protocol error", async () => {
  await using server = await FakeTtsServer.start("deepgram");
  server.script({
    kind: "reply",
    status: 200,
    body: { err_msg: "Text is too long." },
  });
  const error = await providerError(() =>
    deepgram(server).synthesize("Hello", { sampleRate: 8000 })
  );

  assertEquals(error.kind, "protocol");
  assertStringIncludes(error.message, "Text is too long.");
});

Deno.test("an API key the vendor echoes back is scrubbed from the error message", async () => {
  await using server = await FakeTtsServer.start("elevenlabs");
  server.script({
    kind: "reply",
    status: 401,
    body: {
      detail: {
        status: "invalid_api_key",
        message: `Invalid API key: '${server.apiKey}'`,
      },
    },
  });
  const error = await providerError(() =>
    elevenlabs(server).synthesize("Hello", { sampleRate: 8000 })
  );

  assertFalse(error.message.includes(server.apiKey));
  assertStringIncludes(error.message, "[redacted]");
});

Deno.test("vendor error messages are found in each vendor's error shape", () => {
  assertEquals(
    vendorMessage(
      '{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials."}',
    ),
    "Invalid credentials.",
  );
  assertEquals(
    vendorMessage(
      '{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}',
    ),
    "Invalid API key",
  );
  assertEquals(
    vendorMessage(
      '{"detail":[{"loc":["body","text"],"msg":"Field required"}]}',
    ),
    "Field required",
  );
  assertEquals(
    vendorMessage(
      '{"error":{"message":"Bad speaker","code":"invalid_request_error"}}',
    ),
    "Bad speaker",
  );
  assertEquals(vendorMessage("Bad Gateway\n"), "Bad Gateway");
});

Deno.test("even pieces carry a dangling byte into the next piece and drop a lone last byte", async () => {
  async function* source() {
    yield new Uint8Array([1, 2, 3]);
    yield new Uint8Array([]);
    yield new Uint8Array([4]);
    yield new Uint8Array([5, 6, 7]);
  }
  const pieces: number[][] = [];
  for await (const piece of evenPieces(source())) pieces.push([...piece]);

  assertEquals(pieces, [[1, 2], [3, 4], [5, 6]]);
});

Deno.test("the requested rate is kept when supported, else the lowest above, else the highest", () => {
  assertEquals(chooseSampleRate(16000, [8000, 16000, 24000]), 16000);
  assertEquals(chooseSampleRate(8000, [24000, 16000, 22050]), 16000);
  assertEquals(chooseSampleRate(48000, [8000, 16000, 24000]), 24000);
  assertThrows(
    () => chooseSampleRate(0, [8000]),
    InvalidSampleRateError,
    '"0"',
  );
});

Deno.test("an injected fetch that ignores its signal still cannot outlast the deadline", async () => {
  const tts = new DeepgramTts({
    apiKey: "key",
    voice: "aura-2-thalia-en",
    timeoutMs: 50,
    fetch: () => new Promise<Response>(() => {}),
  });
  const error = await providerError(() =>
    tts.synthesize("Hello", { sampleRate: 8000 })
  );

  assertEquals(error.kind, "timeout");
});
