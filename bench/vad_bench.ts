/**
 * Cost of voice-activity detection on caller audio, one 100 ms chunk at a
 * time on a long-lived stream, at each call rate.
 *
 * @module
 */
import { VoiceActivityDetector } from "../src/audio/vad.ts";
import { decodeWav } from "../src/audio/wav.ts";

for (const rate of [8000, 16000, 24000]) {
  const { pcm } = decodeWav(
    Deno.readFileSync(
      new URL(`../tests/fixtures/audio/hello_${rate}.wav`, import.meta.url),
    ),
  );
  const chunkBytes = rate / 10 * 2;
  const chunks: Uint8Array[] = [];
  for (let at = 0; at + chunkBytes <= pcm.length; at += chunkBytes) {
    chunks.push(pcm.subarray(at, at + chunkBytes));
  }
  const vad = new VoiceActivityDetector(rate);
  let next = 0;
  Deno.bench({
    name: `${rate} Hz speech and silence, one 100 ms chunk`,
    group: "vad 100 ms chunk",
    baseline: rate === 8000,
    fn() {
      vad.push(chunks[next]);
      next = (next + 1) % chunks.length;
    },
  });
}
