import {
  assert,
  assertEquals,
  assertGreater,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import {
  VAD_FRAME_MS,
  VadConfigError,
  type VadEvent,
  type VadFrame,
  type VadOptions,
  VoiceActivityDetector,
} from "../src/audio/vad.ts";
import { decodeWav, type Wav } from "../src/audio/wav.ts";

const FIXTURES = new URL("./fixtures/audio/", import.meta.url);

function fixture(name: string): Wav {
  return decodeWav(Deno.readFileSync(new URL(name, FIXTURES)));
}

interface Segment {
  startMs: number;
  endMs: number;
  durationMs: number;
  voicedMs: number;
}

function detect(
  wav: Wav,
  options: VadOptions & { chunkBytes?: number } = {},
): { events: VadEvent[]; frames: VadFrame[] } {
  const frames: VadFrame[] = [];
  const vad = new VoiceActivityDetector(wav.sampleRate, {
    ...options,
    onFrame: (frame) => frames.push(frame),
  });
  const events: VadEvent[] = [];
  const step = options.chunkBytes ?? wav.pcm.length;
  for (let at = 0; at < wav.pcm.length; at += step) {
    events.push(...vad.push(wav.pcm.subarray(at, at + step)));
  }
  events.push(...vad.flush());
  return { events, frames };
}

function segments(events: VadEvent[]): Segment[] {
  const out: Segment[] = [];
  let startMs = -1;
  for (const event of events) {
    if (event.type === "speech_start") {
      assertStrictEquals(startMs, -1, "speech_start while in speech");
      startMs = event.atMs;
    } else {
      assert(startMs >= 0, "speech_end without speech_start");
      assertEquals(event.durationMs, event.atMs - startMs);
      out.push({
        startMs,
        endMs: event.atMs,
        durationMs: event.durationMs,
        voicedMs: event.voicedMs,
      });
      startMs = -1;
    }
  }
  assertStrictEquals(startMs, -1, "flush ends the last segment");
  return out;
}

/** Where the utterance really is: first and last sample above ±64 in the clean file. */
function utterance(name: string): { startMs: number; endMs: number } {
  const wav = fixture(name);
  const samples = new Int16Array(wav.pcm.slice().buffer);
  let first = -1;
  let last = -1;
  for (let i = 0; i < samples.length; i++) {
    if (Math.abs(samples[i]) > 64) {
      if (first < 0) first = i;
      last = i;
    }
  }
  return {
    startMs: first / wav.sampleRate * 1000,
    endMs: last / wav.sampleRate * 1000,
  };
}

/** How far a detected start or end may be from the true one. */
const TOLERANCE_MS = 80;

function assertNear(actual: number, expected: number) {
  assert(
    Math.abs(actual - expected) <= TOLERANCE_MS,
    `${actual} ms is not within ${TOLERANCE_MS} ms of ${
      expected.toFixed(1)
    } ms`,
  );
}

/** Dual-tone PCM at 8 kHz, e.g. a DTMF key. */
function tones(hz: [number, number], seconds: number): Wav {
  const count = 8000 * seconds;
  const pcm = new Uint8Array(count * 2);
  const view = new Int16Array(pcm.buffer);
  for (let i = 0; i < count; i++) {
    view[i] = Math.round(
      6000 * Math.sin(2 * Math.PI * hz[0] * i / 8000) +
        6000 * Math.sin(2 * Math.PI * hz[1] * i / 8000),
    );
  }
  return { sampleRate: 8000, pcm };
}

Deno.test("vad hears no speech in 3 s of pink noise", () => {
  const { events, frames } = detect(fixture("noise_only_3s_8000.wav"));
  assertEquals(events, []);
  assertEquals(frames.length, 150);
  assertEquals(frames.filter((frame) => frame.isSpeech), []);
  // Measured peak periodicity of the noise: 0.30, against 0.45 for a speech frame.
  assert(frames.every((frame) => frame.probability < 0.2));
});

Deno.test("vad hears no speech in 3 s of silence", () => {
  const { events, frames } = detect(fixture("silence_3s_8000.wav"));
  assertEquals(events, []);
  assert(frames.every((frame) => frame.probability === 0));
});

// Measured against the utterance in the clean file (513–4288 ms): start 500 ms
// at every rate, end 4300 ms; with pink noise start 560 ms, end 4260 ms.
// Tolerance: 80 ms each way.
for (
  const name of [
    "hello_8000.wav",
    "hello_16000.wav",
    "hello_24000.wav",
    "hello_noisy_8000.wav",
  ]
) {
  Deno.test(`vad finds one utterance in ${name} starting and ending within 80 ms of the speech`, () => {
    const truth = utterance(name.replace("_noisy", ""));
    const found = segments(detect(fixture(name)).events);
    assertEquals(found.length, 1, JSON.stringify(found));
    assertNear(found[0].startMs, truth.startMs);
    assertNear(found[0].endMs, truth.endMs);
  });
}

// Measured first start / last end (ms), identical at 8, 16 and 24 kHz:
// question 500/2600 (utterance 500–2600), interrupt 500/4000 (500–3997),
// hindi_en 500/4060 (500–4053).
for (const phrase of ["question", "interrupt", "hindi_en"]) {
  Deno.test(`vad brackets the ${phrase} fixtures within 80 ms at 8, 16 and 24 kHz`, () => {
    const truth = utterance(`${phrase}_8000.wav`);
    for (const rate of [8000, 16000, 24000]) {
      const found = segments(detect(fixture(`${phrase}_${rate}.wav`)).events);
      assertGreater(found.length, 0, `${phrase} at ${rate}`);
      assertNear(found[0].startMs, truth.startMs);
      assertNear(found[found.length - 1].endMs, truth.endMs);
    }
  });
}

Deno.test("vad splits two caller turns separated by 1.9 s of silence", () => {
  const found = segments(detect(fixture("two_turns_8000.wav")).events);
  // Measured: 500–4300 and 6160–8280.
  assertEquals(found.length, 2);
  assertNear(found[0].endMs, 4288);
  assertNear(found[1].startMs, 6179);
});

Deno.test("vad reports the backchannel as two short bursts a duration guard can ignore", () => {
  const found = segments(detect(fixture("backchannel_8000.wav")).events);
  // Measured: "Hmm" 300–720 ms (420 ms, 340 ms voiced), "Okay" 1080–1600 ms
  // (520 ms, 340 ms voiced), against 3800 ms (2580 ms voiced) for "hello".
  assertEquals(found.length, 2, JSON.stringify(found));
  for (const segment of found) {
    assert(segment.durationMs <= 600, JSON.stringify(segment));
    assert(segment.voicedMs <= 400, JSON.stringify(segment));
  }
  const long = detect(fixture("backchannel_8000.wav"), { minSpeechMs: 500 });
  assertEquals(long.events, [], "a 500 ms onset debounce ignores it");
  assertEquals(
    segments(detect(fixture("hello_8000.wav"), { minSpeechMs: 500 }).events)
      .length,
    1,
  );
});

Deno.test("vad bridges pauses shorter than minSilenceMs", () => {
  const wav = fixture("interrupt_8000.wav");
  // "Wait, stop. Actually I meant next Monday.": pauses of about 0.3 and 0.5 s.
  assertEquals(segments(detect(wav).events).length, 3);
  const merged = segments(detect(wav, { minSilenceMs: 600 }).events);
  assertEquals(merged.length, 1);
  assertNear(merged[0].startMs, 500);
  assertNear(merged[0].endMs, 3997);
});

Deno.test("vad events for any chunking, odd byte counts included, equal the whole stream's", () => {
  for (const name of ["hello_noisy_8000.wav", "hello_24000.wav"]) {
    const wav = fixture(name);
    const whole = detect(wav);
    for (const chunkBytes of [1, 321, 640, 4801]) {
      const chunked = detect(wav, { chunkBytes });
      assertEquals(chunked.events, whole.events, `${name} in ${chunkBytes}`);
      assertEquals(chunked.frames, whole.frames, `${name} in ${chunkBytes}`);
    }
  }
});

Deno.test("vad reports speech_start after minSpeechMs and speech_end after minSilenceMs of audio", () => {
  const wav = fixture("hello_8000.wav");
  const vad = new VoiceActivityDetector(8000, {
    minSpeechMs: 100,
    minSilenceMs: 300,
  });
  const chunk = 320; // 20 ms
  const seen: { event: VadEvent; pushedMs: number }[] = [];
  for (let at = 0; at < wav.pcm.length; at += chunk) {
    for (const event of vad.push(wav.pcm.subarray(at, at + chunk))) {
      seen.push({ event, pushedMs: (at + chunk) / 16 });
    }
  }
  assertEquals(seen.map(({ event }) => event.type), [
    "speech_start",
    "speech_end",
  ]);
  const [start, end] = seen;
  assert(start.pushedMs >= start.event.atMs + 100, JSON.stringify(start));
  assert(start.pushedMs <= start.event.atMs + 300, JSON.stringify(start));
  assert(end.pushedMs >= end.event.atMs + 300, JSON.stringify(end));
  assert(end.pushedMs <= end.event.atMs + 400, JSON.stringify(end));
});

Deno.test("vad exposes per-frame speech and the voiced time of the current segment", () => {
  const wav = fixture("hello_8000.wav");
  const vad = new VoiceActivityDetector(8000);
  assertEquals(vad.lastFrame, undefined);
  vad.push(wav.pcm.subarray(0, 400 * 16));
  assertEquals(vad.audioMs, 400);
  assertStrictEquals(vad.isSpeech, false);
  assertStrictEquals(vad.probability, 0);
  assertStrictEquals(vad.speechMs, 0);
  vad.push(wav.pcm.subarray(400 * 16, 1000 * 16));
  assertEquals(vad.audioMs, 1000);
  assertEquals(vad.lastFrame?.atMs, 1000 - VAD_FRAME_MS);
  assert(vad.inSpeech);
  assert(vad.isSpeech, "a vowel at 980 ms");
  assertGreater(vad.probability, 0.5);
  // 500–1000 ms holds "Hello" with about 360 ms of voicing.
  assertGreater(vad.speechMs, 300);
  assert(vad.speechMs <= 500);
});

Deno.test("vad flush ends speech cut off by the end of the stream and resets", () => {
  const wav = fixture("hello_8000.wav");
  const vad = new VoiceActivityDetector(8000);
  const events = vad.push(wav.pcm.subarray(0, 2000 * 16));
  assertEquals(events.map((event) => event.type), ["speech_start"]);
  const [end] = vad.flush();
  assertEquals(end.type, "speech_end");
  assert(end.atMs <= 2000 && end.atMs > 1500, JSON.stringify(end));
  assertStrictEquals(vad.inSpeech, false);
  assertEquals(vad.audioMs, 0);
  assertEquals(
    [...vad.push(wav.pcm), ...vad.flush()],
    detect(wav).events,
    "a flushed detector starts afresh",
  );
});

Deno.test("vad rejects steady tones: a 440 Hz sine and DTMF keys are not speech", () => {
  for (
    const wav of [
      fixture("tone_440hz_1s_8000.wav"),
      tones([697, 1209], 1),
      tones([941, 1336], 1),
      tones([350, 440], 1),
    ]
  ) {
    const { events, frames } = detect(wav);
    assertEquals(events, []);
    assert(frames.some((frame) => frame.tonal), "rejected as a tone");
  }
});

Deno.test("vad rejects unsupported rates and options with a message quoting the value", () => {
  const error = assertThrows(
    () => new VoiceActivityDetector(11025),
    VadConfigError,
    'Invalid sample rate "11025": expected 8000, 16000 or 24000',
  );
  assertStrictEquals(error.code, "sample_rate");
  assertThrows(
    () => new VoiceActivityDetector(8000, { minSilenceMs: -1 }),
    VadConfigError,
    'Invalid minSilenceMs "-1"',
  );
  assertThrows(
    () => new VoiceActivityDetector(8000, { threshold: 1.5 }),
    VadConfigError,
    'Invalid threshold "1.5"',
  );
});
