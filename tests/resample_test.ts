import {
  assert,
  assertEquals,
  assertGreater,
  assertInstanceOf,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import {
  resampleAll,
  Resampler,
  RESAMPLER_INPUT_RATES,
  RESAMPLER_OUTPUT_RATES,
  ResamplerConfigError,
} from "../src/audio/resample.ts";
import { decodeWav } from "../src/audio/wav.ts";
import { concat } from "@std/bytes";

const FIXTURES = new URL("./fixtures/audio/", import.meta.url);

function fixture(name: string): Uint8Array {
  return decodeWav(Deno.readFileSync(new URL(name, FIXTURES))).pcm;
}

function samples(pcm: Uint8Array): Int16Array {
  return new Int16Array(pcm.slice().buffer);
}

/** A deterministic pseudo-random generator, so failures reproduce. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function sine(
  rate: number,
  options: { hz: number; seconds: number; amplitude: number },
): Uint8Array {
  const count = Math.round(rate * options.seconds);
  const pcm = new Uint8Array(count * 2);
  const view = new Int16Array(pcm.buffer);
  for (let i = 0; i < count; i++) {
    view[i] = Math.round(
      options.amplitude * Math.sin(2 * Math.PI * options.hz * i / rate),
    );
  }
  return pcm;
}

/** Speech-like test signal at any rate: a gliding tone, a harmonic and noise. */
function testSignal(rate: number, seconds: number): Uint8Array {
  const count = Math.round(rate * seconds);
  const pcm = new Uint8Array(count * 2);
  const view = new Int16Array(pcm.buffer);
  const next = random(7);
  for (let i = 0; i < count; i++) {
    const t = i / rate;
    view[i] = Math.round(
      9000 * Math.sin(2 * Math.PI * (150 + 900 * t) * t) +
        5000 * Math.sin(2 * Math.PI * 2700 * t) + (next() - 0.5) * 6000,
    );
  }
  return pcm;
}

/** Cuts `pcm` into pieces of 1 to `max` bytes, odd sizes included, each a view at its own offset. */
function cut(pcm: Uint8Array, options: { seed: number; max: number }) {
  const next = random(options.seed);
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < pcm.length;) {
    const size = 1 + Math.floor(next() * options.max);
    pieces.push(pcm.subarray(at, at + size));
    at += size;
  }
  return pieces;
}

function resampleChunked(
  pieces: Uint8Array[],
  rates: { fromRate: number; toRate: number },
): Uint8Array {
  const resampler = new Resampler(rates.fromRate, rates.toRate);
  const out = pieces.map((piece) => resampler.push(piece));
  out.push(resampler.flush());
  return concat(out);
}

/** SNR in dB of `pcm` against the ideal sine it should be, edges (50 ms each) skipped. */
function snrDb(
  pcm: Uint8Array,
  rate: number,
  options: { hz: number; amplitude: number },
): number {
  const view = samples(pcm);
  const skip = rate / 20;
  let signal = 0;
  let error = 0;
  for (let i = skip; i < view.length - skip; i++) {
    const ideal = options.amplitude *
      Math.sin(2 * Math.PI * options.hz * i / rate);
    signal += ideal * ideal;
    error += (view[i] - ideal) ** 2;
  }
  return 10 * Math.log10(signal / error);
}

/** RMS of `pcm`, edges (50 ms each) skipped. */
function rms(pcm: Uint8Array, rate: number): number {
  const view = samples(pcm);
  const skip = rate / 20;
  let sum = 0;
  for (let i = skip; i < view.length - skip; i++) sum += view[i] ** 2;
  return Math.sqrt(sum / (view.length - 2 * skip));
}

Deno.test("resampler output for a stream cut into random odd and even chunks equals the whole stream's", () => {
  const cases: [string | number, number][] = [
    ["hello_24000.wav", 8000],
    ["hello_24000.wav", 16000],
    ["hello_16000.wav", 8000],
    ["hello_8000.wav", 24000],
    ["hello_8000.wav", 16000],
    [22050, 8000],
    [22050, 16000],
    [22050, 24000],
    [44100, 8000],
    [48000, 8000],
    [48000, 24000],
  ];
  for (const [source, toRate] of cases) {
    const fromRate = typeof source === "number"
      ? source
      : Number(source.match(/_(\d+)\.wav$/)![1]);
    const pcm = typeof source === "number"
      ? testSignal(source, 1.5)
      : fixture(source);
    const whole = resampleAll(pcm, { fromRate, toRate });
    for (const [seed, max] of [[1, 7], [2, 333], [3, 4801]]) {
      const chunked = resampleChunked(cut(pcm, { seed, max }), {
        fromRate,
        toRate,
      });
      assertEquals(
        chunked,
        whole,
        `${source} → ${toRate}, chunks of 1..${max} bytes`,
      );
    }
  }
});

Deno.test("resampler output for one-byte pushes equals the whole stream's", () => {
  const pcm = testSignal(22050, 0.2);
  const pieces = Array.from(pcm, (_, i) => pcm.subarray(i, i + 1));
  assertEquals(
    resampleChunked(pieces, { fromRate: 22050, toRate: 8000 }),
    resampleAll(pcm, { fromRate: 22050, toRate: 8000 }),
  );
});

Deno.test("resampler emits ceil(samples × toRate / fromRate) samples for every rate pair", () => {
  for (const fromRate of RESAMPLER_INPUT_RATES) {
    for (const toRate of RESAMPLER_OUTPUT_RATES) {
      for (const count of [0, 1, 2, 441, 1000, 22050, 22051]) {
        const out = resampleAll(new Uint8Array(count * 2), {
          fromRate,
          toRate,
        });
        assertEquals(
          out.length / 2,
          Math.ceil(count * toRate / fromRate),
          `${count} samples ${fromRate} → ${toRate}`,
        );
      }
    }
  }
});

Deno.test("resampler holds back only the filter's half-length until flush", () => {
  const resampler = new Resampler(24000, 8000);
  const pushed = resampler.push(new Uint8Array(4800)).length / 2;
  const expected = Math.ceil((2400 - resampler.halfTaps) / 3);
  assertEquals(pushed, expected);
  assertEquals(resampler.flush().length / 2, 800 - expected);
});

// Measured with the default filter (80 dB, passband 0.85): 24000 → 8000 94.8 dB,
// 48000 → 8000 94.8 dB, 22050 → 16000 93.0 dB, 8000 → 24000 94.1 dB. The 16-bit
// output's own rounding noise caps a half-scale sine near 95 dB.
for (
  const [fromRate, toRate, measured] of [
    [24000, 8000, 94.8],
    [48000, 8000, 94.8],
    [22050, 16000, 93.0],
    [8000, 24000, 94.1],
  ]
) {
  Deno.test(`resampler keeps a 1 kHz sine clean from ${fromRate} to ${toRate} Hz (SNR ≥ 85 dB, measured ${measured} dB)`, () => {
    const tone = { hz: 1000, amplitude: 16000 };
    const out = resampleAll(sine(fromRate, { ...tone, seconds: 1 }), {
      fromRate,
      toRate,
    });
    const snr = snrDb(out, toRate, tone);
    assertGreater(snr, 85, `SNR ${snr.toFixed(1)} dB`);
  });
}

Deno.test("resampler removes a 5 kHz tone going from 48000 to 8000 Hz (≥ 80 dB, measured: every output sample rounds to 0)", () => {
  const amplitude = 16000;
  const out = resampleAll(
    sine(48000, { hz: 5000, seconds: 1, amplitude }),
    { fromRate: 48000, toRate: 8000 },
  );
  const level = rms(out, 8000);
  const attenuationDb = 20 * Math.log10((amplitude / Math.SQRT2) / level);
  assertGreater(attenuationDb, 80, `attenuation ${attenuationDb} dB`);
});

Deno.test("resampler attenuates 4.5 kHz by ≥ 80 dB (measured 90.1 dB) and passes 3.4 kHz within 0.01 dB going to 8000 Hz", () => {
  const amplitude = 16000;
  const inputRms = amplitude / Math.SQRT2;
  const levelDb = (hz: number) =>
    20 * Math.log10(
      rms(
        resampleAll(sine(48000, { hz, seconds: 1, amplitude }), {
          fromRate: 48000,
          toRate: 8000,
        }),
        8000,
      ) / inputRms,
    );
  assertGreater(-levelDb(4500), 80);
  assert(Math.abs(levelDb(3400)) < 0.01, `3.4 kHz at ${levelDb(3400)} dB`);
});

Deno.test("resampler passes audio through unchanged when the rates are equal, odd chunks included", () => {
  const pcm = fixture("hello_8000.wav");
  assertEquals(resampleAll(pcm, { fromRate: 8000, toRate: 8000 }), pcm);
  const pieces = cut(pcm, { seed: 5, max: 99 });
  assertEquals(resampleChunked(pieces, { fromRate: 8000, toRate: 8000 }), pcm);
  const resampler = new Resampler(16000, 16000);
  const copy = resampler.push(pcm.subarray(0, 640));
  assertEquals(copy, pcm.subarray(0, 640));
  assert(copy.buffer !== pcm.buffer, "passthrough returns a copy");
});

Deno.test("resampler clamps filter overshoot on a full-scale square wave instead of wrapping", () => {
  const pcm = new Uint8Array(48000 * 2);
  const view = new Int16Array(pcm.buffer);
  for (let i = 0; i < view.length; i++) {
    view[i] = Math.floor(i / 24) % 2 ? -32768 : 32767;
  }
  const out = samples(resampleAll(pcm, { fromRate: 48000, toRate: 8000 }));
  // 1 kHz square: every output half-period of 4 samples keeps its sign.
  for (let i = 100; i < out.length - 100; i++) {
    const expectedPositive = Math.floor((i + 0.5) / 4) % 2 === 0;
    assertEquals(out[i] > 0, expectedPositive, `sample ${i} is ${out[i]}`);
  }
  assert(out.includes(32767) && out.includes(-32768), "overshoot is clamped");
});

Deno.test("resampler flush resets it for a new stream and reset drops what is held back", () => {
  const pcm = testSignal(24000, 0.3);
  const expected = resampleAll(pcm, { fromRate: 24000, toRate: 8000 });
  const resampler = new Resampler(24000, 8000);
  for (let round = 0; round < 2; round++) {
    assertEquals(concat([resampler.push(pcm), resampler.flush()]), expected);
  }
  resampler.push(testSignal(24000, 0.1).subarray(0, 777));
  resampler.reset();
  assertEquals(concat([resampler.push(pcm), resampler.flush()]), expected);
});

Deno.test("resampler rejects unsupported rates with an error quoting the value and listing accepted ones", () => {
  const input = assertThrows(
    () => new Resampler(11025, 8000),
    ResamplerConfigError,
    'Invalid input sample rate "11025": expected 8000, 16000, 22050, 24000, 44100 or 48000',
  );
  assertStrictEquals(input.code, "input_rate");
  assertInstanceOf(input, RangeError);
  const output = assertThrows(
    () => resampleAll(new Uint8Array(2), { fromRate: 24000, toRate: 22050 }),
    ResamplerConfigError,
    'Invalid output sample rate "22050": expected 8000, 16000 or 24000',
  );
  assertStrictEquals(output.code, "output_rate");
  assertThrows(
    () => new Resampler(24000, 8000, { attenuationDb: 10 }),
    ResamplerConfigError,
    'Invalid attenuation "10"',
  );
  assertThrows(
    () => new Resampler(24000, 8000, { passband: 1 }),
    ResamplerConfigError,
    'Invalid passband "1"',
  );
});
