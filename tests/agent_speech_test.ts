/**
 * Text to call-rate audio, and the caller's ear, with the real adapters on
 * fake vendor servers.
 */
import {
  assert,
  assertEquals,
  assertGreater,
  assertInstanceOf,
  assertRejects,
} from "@std/assert";
import { resampleAll } from "../src/audio/resample.ts";
import { AudioTrack } from "../src/bots/agent/audio_track.ts";
import { fallbackTone, synthesizeInto } from "../src/bots/agent/speech.ts";
import { ProviderError } from "../src/providers/provider_error.ts";
import { DeepgramStt } from "../src/providers/stt/deepgram.ts";
import { SarvamStt } from "../src/providers/stt/sarvam.ts";
import { DeepgramTts } from "../src/providers/tts/deepgram.ts";
import { ElevenLabsTts } from "../src/providers/tts/elevenlabs.ts";
import type {
  Synthesis,
  SynthesisOptions,
  TextToSpeech,
} from "../src/providers/tts/text_to_speech.ts";
import { fixturePcm, listenerOn, until } from "./fakes/agent_call.ts";
import {
  FakeSttServer,
  HELLO_SCRIPT,
  HELLO_TRANSCRIPT,
} from "./fakes/stt_servers.ts";
import { fakeSpeech, FakeTtsServer } from "./fakes/tts_servers.ts";

/** ElevenLabs asked for 22.05 kHz whatever the call's rate, as a vendor without the call's rate answers. */
class ElevenLabsAt22050 implements TextToSpeech {
  readonly name = "elevenlabs";
  readonly voice: string;
  #inner: ElevenLabsTts;

  constructor(inner: ElevenLabsTts) {
    this.#inner = inner;
    this.voice = inner.voice;
  }

  synthesize(text: string, options: SynthesisOptions): Promise<Synthesis> {
    return this.#inner.synthesize(text, { ...options, sampleRate: 22050 });
  }
}

/** The real Deepgram adapter pointed at `server`. */
function deepgramTts(server: FakeTtsServer, timeoutMs = 2000): DeepgramTts {
  return new DeepgramTts({
    apiKey: server.apiKey,
    voice: "aura-2-thalia-en",
    baseUrl: server.baseUrl,
    timeoutMs,
  });
}

Deno.test("synthesizeInto streams the vendor's audio into the track at the call's rate", async () => {
  await using server = await FakeTtsServer.start("deepgram", { pieces: 5 });
  const tts = deepgramTts(server);
  const track = new AudioTrack();
  let firstBytes = 0;
  await synthesizeInto(track, "Hello there.", {
    tts,
    sampleRate: 16000,
    language: "en-IN",
    onFirstByte: () => firstBytes++,
  });
  assert(track.ended);
  assertEquals(firstBytes, 1);
  assertEquals(track.pcm(), fakeSpeech("Hello there.", 16000));
  assertEquals(server.requests[0].query.sample_rate, "16000");
});

Deno.test("synthesizeInto resamples a vendor's 22.05 kHz audio to an 8 kHz call, as one stream", async () => {
  await using server = await FakeTtsServer.start("elevenlabs", {
    pieces: 7,
  });
  const tts = new ElevenLabsAt22050(
    new ElevenLabsTts({
      apiKey: server.apiKey,
      voice: "voice-1",
      baseUrl: server.baseUrl,
      timeoutMs: 2000,
    }),
  );
  const track = new AudioTrack();
  await synthesizeInto(track, "Resample me, please.", {
    tts,
    sampleRate: 8000,
    language: "en-IN",
  });
  assertEquals(server.requests[0].query.output_format, "pcm_22050");
  // Identical to converting the whole file at once: no seams between pieces.
  assertEquals(
    track.pcm(),
    resampleAll(fakeSpeech("Resample me, please.", 22050), {
      fromRate: 22050,
      toRate: 8000,
    }),
  );
});

Deno.test("synthesizeInto fails the track and throws the vendor's error", async () => {
  await using server = await FakeTtsServer.start("deepgram");
  server.script({ kind: "server_error" });
  const tts = deepgramTts(server);
  const track = new AudioTrack();
  const error = await assertRejects(
    () =>
      synthesizeInto(track, "Hello.", {
        tts,
        sampleRate: 8000,
        language: "en-IN",
      }),
    ProviderError,
  );
  assertEquals(error.status, 500);
  assert(track.ended);
  assertInstanceOf(track.error, ProviderError);
});

Deno.test("synthesizeInto ends the track quietly when aborted mid-stream", async () => {
  await using server = await FakeTtsServer.start("deepgram");
  server.script({ kind: "stall", afterBytes: 640 });
  const tts = deepgramTts(server, 5000);
  const track = new AudioTrack();
  const abort = new AbortController();
  const done = synthesizeInto(track, "A long sentence that stalls.", {
    tts,
    sampleRate: 8000,
    language: "en-IN",
    signal: abort.signal,
    onFirstByte: () => abort.abort(),
  });
  await done;
  assert(track.ended);
  assertEquals(track.error, undefined);
});

Deno.test("fallback tone is 800 ms of quiet notes that start and end in silence", () => {
  for (const rate of [8000, 16000, 24000]) {
    const tone = fallbackTone(rate);
    assertEquals(tone.length, rate * 2 * 0.8);
    const samples = new Int16Array(tone.buffer);
    assertEquals(samples[0], 0);
    assertEquals(samples.at(-1), 0);
    const peak = samples.reduce((max, s) => Math.max(max, Math.abs(s)), 0);
    assert(peak > 2000 && peak <= 3000, `peak ${peak}`);
  }
});

function listen(
  options: { stt: DeepgramStt | SarvamStt; callRate: number; sttRate: number },
) {
  const errors: ProviderError[] = [];
  const { listener, events } = listenerOn(options.stt, {
    ...options,
    onError: (error) => errors.push(error),
  });
  listener.start();
  return { listener, events, errors };
}

Deno.test("listener streams caller audio to Deepgram and reopens the stream when it drops", async () => {
  await using server = await FakeSttServer.start("deepgram", {
    script: HELLO_SCRIPT,
  });
  server.script({ kind: "drop", afterBytes: 3200 });
  const stt = new DeepgramStt({
    apiKey: server.apiKey,
    baseUrl: server.baseUrl,
    connectTimeoutMs: 2000,
  });
  const { listener, events, errors } = listen({
    stt,
    callRate: 8000,
    sttRate: 8000,
  });
  try {
    listener.push(new Uint8Array(6400));
    await until(() => errors.length === 1, "the drop");
    assertEquals(errors[0].kind, "network");
    const second = await server.connection(1);
    await until(() => second.headers.has("authorization"), "the reconnect");
    const hello = await fixturePcm("hello_8000.wav");
    for (let at = 0; at < hello.length; at += 640) {
      listener.push(hello.subarray(at, at + 640));
    }
    await until(
      () => events.some((event) => event.type === "final"),
      "the transcript",
    );
    assertEquals(
      events.find((event) => event.type === "final"),
      { type: "final", text: HELLO_TRANSCRIPT, endOfTurn: true },
    );
    assertEquals(listener.failures, 1);
  } finally {
    await listener.close();
  }
  assertEquals(server.connections.length, 2);
});

Deno.test("listener sends Sarvam 16 kHz audio resampled from a 24 kHz call", async () => {
  await using server = await FakeSttServer.start("sarvam", {
    script: HELLO_SCRIPT,
  });
  const stt = new SarvamStt({
    apiKey: server.apiKey,
    baseUrl: server.baseUrl,
    connectTimeoutMs: 2000,
  });
  const { listener, events } = listen({
    stt,
    callRate: 24000,
    sttRate: 16000,
  });
  try {
    const hello = await fixturePcm("hello_24000.wav");
    for (let at = 0; at < hello.length; at += 1920) {
      listener.push(hello.subarray(at, at + 1920));
    }
    await until(
      () => events.some((event) => event.type === "final"),
      "the transcript",
    );
    const connection = await server.connection();
    assertEquals(connection.url.searchParams.get("sample_rate"), "16000");
    assertGreater(connection.audioBytes, hello.length * 2 / 3 - 4000);
  } finally {
    await listener.close();
  }
});
