/**
 * Cost of converting TTS audio to the call's rate, one 100 ms chunk at a time
 * on a long-lived stream (the steady state of a call).
 *
 * @module
 */
import { Resampler } from "../src/audio/resample.ts";

/** 100 ms of a speech-like signal (two tones and a little noise) at `rate`. */
function chunk100ms(rate: number): Uint8Array {
  const samples = rate / 10;
  const bytes = new Uint8Array(samples * 2);
  const view = new Int16Array(bytes.buffer);
  let seed = 1;
  for (let i = 0; i < samples; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const noise = (seed / 0x7fffffff - 0.5) * 2000;
    view[i] = Math.round(
      8000 * Math.sin(2 * Math.PI * 220 * i / rate) +
        4000 * Math.sin(2 * Math.PI * 1800 * i / rate) + noise,
    );
  }
  return bytes;
}

for (
  const [fromRate, toRate] of [
    [24000, 8000],
    [22050, 8000],
    [48000, 8000],
    [44100, 8000],
    [24000, 16000],
    [8000, 24000],
  ]
) {
  const chunk = chunk100ms(fromRate);
  const resampler = new Resampler(fromRate, toRate);
  Deno.bench({
    name: `${fromRate} Hz → ${toRate} Hz, one 100 ms chunk`,
    group: "resample 100 ms chunk",
    baseline: fromRate === 24000 && toRate === 8000,
    fn() {
      resampler.push(chunk);
    },
  });
}

Deno.bench({
  name: "new Resampler(22050, 8000) with its filter bank cached",
  group: "setup",
  fn() {
    new Resampler(22050, 8000);
  },
});
