/**
 * The per-frame hot path: parsing an inbound media frame and encoding an
 * outbound one, and native base64 against std's JavaScript codec.
 *
 * Run: deno task bench bench/protocol_bench.ts
 */
import { decodeBase64, encodeBase64 } from "deno-std/encoding/base64.js";
import { encodeMedia, parseInboundFrame } from "../src/exotel/protocol.ts";
import { Chunker } from "../src/audio/pcm.ts";

const pcm = new Uint8Array(3200).map((_, i) => (i * 31) % 256);
const payload = pcm.toBase64();
const mediaFrame = JSON.stringify({
  event: "media",
  sequence_number: "42",
  stream_sid: "MZ0123456789abcdef0123456789abcdef",
  media: { chunk: "41", timestamp: "8200", payload },
});

Deno.bench("parse an inbound 3200-byte media frame", { group: "frame" }, () => {
  parseInboundFrame(mediaFrame);
});

Deno.bench(
  "encode an outbound 3200-byte media frame",
  { group: "frame" },
  () => {
    encodeMedia("MZ0123456789abcdef0123456789abcdef", pcm);
  },
);

Deno.bench(
  "chunk 1600-byte frames into 3200-byte chunks",
  { group: "frame" },
  () => {
    const chunker = new Chunker(3200);
    for (let i = 0; i < 10; i++) chunker.push(pcm.subarray(0, 1600));
  },
);

Deno.bench("native Uint8Array.fromBase64 (3200 bytes)", {
  group: "decode",
  baseline: true,
}, () => {
  Uint8Array.fromBase64(payload);
});

Deno.bench("std decodeBase64 (3200 bytes)", { group: "decode" }, () => {
  decodeBase64(payload);
});

Deno.bench(
  "native toBase64 (3200 bytes)",
  { group: "encode", baseline: true },
  () => {
    pcm.toBase64();
  },
);

Deno.bench("std encodeBase64 (3200 bytes)", { group: "encode" }, () => {
  encodeBase64(pcm);
});
