/**
 * Cost of a μ-law call's conversions: decoding one 100 ms caller frame
 * (800 bytes at 8 kHz) and encoding one 200 ms outbound chunk (3200 bytes of
 * PCM), next to the base64 work every frame does anyway.
 *
 * @module
 */
import { decodeMulaw, encodeMulaw } from "../src/audio/mulaw.ts";

const frame = Uint8Array.from({ length: 800 }, (_, i) => (i * 73) & 0xff);
const chunk = decodeMulaw(
  Uint8Array.from({ length: 1600 }, (_, i) => (i * 31) & 0xff),
);
const base64 = frame.toBase64();
const encoded = encodeMulaw(chunk);

Deno.bench("μ-law decode, 100 ms caller frame (800 B)", { group: "in" }, () => {
  decodeMulaw(frame);
});
Deno.bench(
  "base64 decode of the same frame",
  { group: "in", baseline: true },
  () => {
    Uint8Array.fromBase64(base64);
  },
);
Deno.bench("μ-law encode, 200 ms chunk (3200 B PCM)", { group: "out" }, () => {
  encodeMulaw(chunk);
});
Deno.bench("base64 encode of the encoded chunk", {
  group: "out",
  baseline: true,
}, () => {
  encoded.toBase64();
});
