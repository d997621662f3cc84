/**
 * G.711 μ-law, the 8-bit telephone codec Exotel can stream instead of 16-bit
 * PCM: conversion both ways by table lookup. Pure: no I/O, no clocks.
 *
 * Every one of the 256 codes survives a round trip (decode, then encode gives
 * the same byte), so audio that is only passed along, such as the echo's,
 * leaves exactly as it came. To make that true for code `0x7F`, μ-law's
 * "negative zero", it decodes to -1 rather than to 0 (which encodes as
 * `0xFF`, positive zero): one step in 32768, inaudible.
 *
 * @module
 */

/** μ-law bytes per sample. */
export const MULAW_BYTES_PER_SAMPLE = 1;

/** The μ-law code of silence (positive zero). */
export const MULAW_SILENCE = 0xff;

/** Largest magnitude the encoder represents; louder samples clip to it. */
const CLIP = 32635;
/** Added before the segment search so that every segment starts at a power of two. */
const BIAS = 0x84;

/** Linear value of each code, indexed by the code. */
const DECODE_TABLE: Int16Array = buildDecodeTable();
/** Code of each 16-bit sample, indexed by the sample as an unsigned 16-bit number; built on first use. */
let encodeTable: Uint8Array | undefined;

function buildDecodeTable(): Int16Array {
  const table = new Int16Array(256);
  for (let code = 0; code < 256; code++) {
    const inverted = ~code & 0xff;
    const exponent = (inverted >> 4) & 0x07;
    const mantissa = inverted & 0x0f;
    const magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    table[code] = inverted & 0x80 ? -magnitude : magnitude;
  }
  // Negative zero: -1 encodes back to 0x7F, where 0 would become 0xFF.
  table[0x7f] = -1;
  return table;
}

/** Encodes one sample (the classic Sun/CCITT reference algorithm, on 16 bits). */
function encodeSample(sample: number): number {
  const sign = sample < 0 ? 0x80 : 0;
  let magnitude = sign ? -sample : sample;
  if (magnitude > CLIP) magnitude = CLIP;
  magnitude += BIAS;
  let exponent = 7;
  for (
    let mask = 0x4000;
    (magnitude & mask) === 0 && exponent > 0;
    mask >>= 1
  ) {
    exponent--;
  }
  const mantissa = (magnitude >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

function buildEncodeTable(): Uint8Array {
  const table = new Uint8Array(65536);
  for (let index = 0; index < 65536; index++) {
    table[index] = encodeSample(index >= 32768 ? index - 65536 : index);
  }
  return table;
}

/**
 * The linear 16-bit value of one μ-law code.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(mulawToLinear(0xff), 0);
 * assertEquals(mulawToLinear(0x80), 32124);
 * assertEquals(mulawToLinear(0x00), -32124);
 * ```
 */
export function mulawToLinear(code: number): number {
  return DECODE_TABLE[code & 0xff];
}

/**
 * The μ-law code of one 16-bit sample (clipped to ±32635, as G.711 does).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(linearToMulaw(0), 0xff);
 * assertEquals(linearToMulaw(32767), 0x80);
 * assertEquals(linearToMulaw(-32768), 0x00);
 * ```
 */
export function linearToMulaw(sample: number): number {
  encodeTable ??= buildEncodeTable();
  return encodeTable[sample & 0xffff];
}

/**
 * Decodes μ-law bytes to 16-bit little-endian PCM, two bytes per code.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const pcm = decodeMulaw(new Uint8Array([0xff, 0x80]));
 * assertEquals(pcm.length, 4);
 * assertEquals(new DataView(pcm.buffer).getInt16(2, true), 32124);
 * ```
 */
export function decodeMulaw(mulaw: Uint8Array): Uint8Array {
  // 16-bit PCM is little-endian, as is every platform Deno runs on; the
  // rest of the audio code reads it through Int16Array views too.
  const samples = new Int16Array(mulaw.length);
  const table = DECODE_TABLE;
  for (let i = 0; i < mulaw.length; i++) samples[i] = table[mulaw[i]];
  return new Uint8Array(samples.buffer);
}

/**
 * Encodes 16-bit little-endian PCM to μ-law, one byte per sample. A trailing
 * odd byte (half a sample) is ignored.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const mulaw = new Uint8Array([0x00, 0x7f, 0x80, 0xff]);
 * assertEquals(encodeMulaw(decodeMulaw(mulaw)), mulaw);
 * assertEquals(encodeMulaw(new Uint8Array(320)), new Uint8Array(160).fill(0xff));
 * ```
 */
export function encodeMulaw(pcm: Uint8Array): Uint8Array {
  encodeTable ??= buildEncodeTable();
  const table = encodeTable;
  const mulaw = new Uint8Array(pcm.length >> 1);
  if (pcm.byteOffset % 2 === 0) {
    const samples = new Uint16Array(pcm.buffer, pcm.byteOffset, mulaw.length);
    for (let i = 0; i < mulaw.length; i++) mulaw[i] = table[samples[i]];
  } else {
    // A view at an odd offset cannot be read as 16-bit words.
    for (let i = 0, o = 0; o < mulaw.length; i += 2, o++) {
      mulaw[o] = table[pcm[i] | (pcm[i + 1] << 8)];
    }
  }
  return mulaw;
}
