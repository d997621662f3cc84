import { assert, assertEquals } from "@std/assert";
import {
  decodeMulaw,
  encodeMulaw,
  linearToMulaw,
  MULAW_SILENCE,
  mulawToLinear,
} from "../src/audio/mulaw.ts";

const ALL_CODES = Uint8Array.from({ length: 256 }, (_, code) => code);

/** The first 16 and last 8 entries of the classic μ-law decoding table (Sun, SoX, G.191). */
const TABLE_HEAD = [
  -32124,
  -31100,
  -30076,
  -29052,
  -28028,
  -27004,
  -25980,
  -24956,
  -23932,
  -22908,
  -21884,
  -20860,
  -19836,
  -18812,
  -17788,
  -16764,
];
const TABLE_TAIL = [56, 48, 40, 32, 24, 16, 8, 0];

function pcmOf(samples: number[]): Uint8Array {
  const pcm = new Uint8Array(samples.length * 2);
  const view = new DataView(pcm.buffer);
  samples.forEach((sample, i) => view.setInt16(i * 2, sample, true));
  return pcm;
}

function samplesOf(pcm: Uint8Array): number[] {
  const view = new DataView(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  return Array.from(
    { length: pcm.length / 2 },
    (_, i) => view.getInt16(i * 2, true),
  );
}

Deno.test("μ-law decodes to the classic G.711 table values", () => {
  assertEquals(
    Array.from({ length: 16 }, (_, code) => mulawToLinear(code)),
    TABLE_HEAD,
  );
  assertEquals(
    Array.from({ length: 8 }, (_, i) => mulawToLinear(0xf8 + i)),
    TABLE_TAIL,
  );
  // The positive half mirrors the negative one, but for negative zero.
  for (let code = 0; code < 0x7f; code++) {
    assertEquals(mulawToLinear(code | 0x80), -mulawToLinear(code), `${code}`);
  }
  assertEquals(mulawToLinear(0x80), 32124);
  assertEquals(mulawToLinear(0xef), 132);
  assertEquals(mulawToLinear(0xf0), 120);
});

Deno.test("μ-law's negative zero decodes to -1 so that it survives a round trip", () => {
  assertEquals(mulawToLinear(0x7f), -1);
  assertEquals(mulawToLinear(MULAW_SILENCE), 0);
  assertEquals(linearToMulaw(-1), 0x7f);
  assertEquals(linearToMulaw(0), MULAW_SILENCE);
});

Deno.test("every one of the 256 μ-law codes survives decode then encode", () => {
  for (const code of ALL_CODES) {
    assertEquals(linearToMulaw(mulawToLinear(code)), code, `code ${code}`);
  }
  assertEquals(encodeMulaw(decodeMulaw(ALL_CODES)), ALL_CODES);
  // Decoding is one-to-one, so equal PCM means equal μ-law bytes.
  assertEquals(new Set(Array.from(ALL_CODES, mulawToLinear)).size, 256);
});

Deno.test("μ-law encoding clips, is monotonic, and stays within half a step of every sample", () => {
  assertEquals(linearToMulaw(32767), 0x80);
  assertEquals(linearToMulaw(32635), 0x80);
  assertEquals(linearToMulaw(-32768), 0x00);
  assertEquals(linearToMulaw(100), 0xf2);
  assertEquals(linearToMulaw(-100), 0x72);
  let previous = -Infinity;
  for (let sample = -32768; sample <= 32767; sample++) {
    const decoded = mulawToLinear(linearToMulaw(sample));
    assert(decoded >= previous, `not monotonic at ${sample}`);
    previous = decoded;
    // The segment's step: 8 near zero, 1024 at the loudest; a code decodes
    // to the middle of its interval.
    const clipped = Math.max(-32635, Math.min(32635, sample));
    const exponent = Math.floor(Math.log2((Math.abs(clipped) + 132) / 128));
    assert(
      Math.abs(decoded - clipped) <= (8 << exponent) / 2,
      `sample ${sample} decoded as ${decoded}`,
    );
  }
});

Deno.test("μ-law byte streams: two PCM bytes per code, little-endian, odd tail ignored", () => {
  const pcm = decodeMulaw(new Uint8Array([0xff, 0x80, 0x00, 0x7e]));
  assertEquals(pcm.length, 8);
  assertEquals(samplesOf(pcm), [0, 32124, -32124, -8]);
  assertEquals(
    encodeMulaw(pcmOf([0, 32124, -32124, -8])),
    new Uint8Array([0xff, 0x80, 0x00, 0x7e]),
  );
  assertEquals(encodeMulaw(new Uint8Array([0, 0, 7])), new Uint8Array([0xff]));
  assertEquals(encodeMulaw(new Uint8Array(0)), new Uint8Array(0));
  assertEquals(decodeMulaw(new Uint8Array(0)), new Uint8Array(0));
  // A view into a larger buffer decodes only its own bytes.
  const backing = new Uint8Array([0x00, 0xff, 0x80, 0x00]);
  assertEquals(samplesOf(decodeMulaw(backing.subarray(1, 3))), [0, 32124]);
  assertEquals(
    encodeMulaw(pcmOf([5, 32124, 0]).subarray(2, 4)),
    new Uint8Array([0x80]),
  );
  // 20 ms of PCM silence at 8 kHz is 160 bytes of μ-law silence.
  assertEquals(
    encodeMulaw(new Uint8Array(320)),
    new Uint8Array(160).fill(MULAW_SILENCE),
  );
});

Deno.test("μ-law encoding reads PCM views at odd offsets too", () => {
  const pcm = decodeMulaw(ALL_CODES);
  const shifted = new Uint8Array(pcm.length + 1);
  shifted.set(pcm, 1);
  assertEquals(encodeMulaw(shifted.subarray(1)), ALL_CODES);
  assertEquals(encodeMulaw(shifted.subarray(1, 9)), ALL_CODES.subarray(0, 4));
});
