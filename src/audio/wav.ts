/**
 * Reading and writing 16-bit PCM WAV files. Pure: works on bytes.
 *
 * @module
 */

/** Decoded WAV audio: 16-bit little-endian mono PCM and its rate. */
export interface Wav {
  /** Samples per second. */
  sampleRate: number;
  /** The PCM bytes of the `data` chunk. */
  pcm: Uint8Array;
}

/** Error thrown for a file that is not 16-bit PCM mono WAV. */
export class WavFormatError extends Error {
  /** Creates the error with `message`. */
  constructor(message: string) {
    super(message);
    this.name = "WavFormatError";
  }
}

const RIFF = 0x46464952; // "RIFF" read little-endian
const WAVE = 0x45564157;
const FMT = 0x20746d66;
const DATA = 0x61746164;
const HEADER_BYTES = 44;

/**
 * Parses a RIFF WAV file holding 16-bit linear PCM, mono.
 *
 * @throws {WavFormatError} when the file is another format.
 */
export function decodeWav(bytes: Uint8Array): Wav {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (
    bytes.length < 12 || view.getUint32(0, true) !== RIFF ||
    view.getUint32(8, true) !== WAVE
  ) {
    throw new WavFormatError("Invalid WAV file: no RIFF/WAVE header");
  }
  let sampleRate: number | undefined;
  let offset = 12;
  while (offset + 8 <= bytes.length) {
    const id = view.getUint32(offset, true);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === FMT) {
      const format = view.getUint16(body, true);
      const channels = view.getUint16(body + 2, true);
      const bits = view.getUint16(body + 14, true);
      // 0xfffe is WAVE_FORMAT_EXTENSIBLE, which sox writes for plain PCM too.
      if (
        (format !== 1 && format !== 0xfffe) || channels !== 1 || bits !== 16
      ) {
        throw new WavFormatError(
          `Unsupported WAV format "${format}/${channels}ch/${bits}bit": expected 16-bit PCM mono`,
        );
      }
      sampleRate = view.getUint32(body + 4, true);
    } else if (id === DATA) {
      if (sampleRate === undefined) {
        throw new WavFormatError("Invalid WAV file: data before fmt");
      }
      const end = Math.min(body + size, bytes.length);
      return { sampleRate, pcm: bytes.slice(body, end - ((end - body) % 2)) };
    }
    offset = body + size + (size % 2);
  }
  throw new WavFormatError("Invalid WAV file: no data chunk");
}

/** Encodes 16-bit mono PCM at `sampleRate` as a WAV file. */
export function encodeWav(wav: Wav): Uint8Array {
  const { sampleRate, pcm } = wav;
  const bytes = new Uint8Array(HEADER_BYTES + pcm.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, RIFF, true);
  view.setUint32(4, 36 + pcm.length, true);
  view.setUint32(8, WAVE, true);
  view.setUint32(12, FMT, true);
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true);
  view.setUint16(22, 1, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  view.setUint32(36, DATA, true);
  view.setUint32(40, pcm.length, true);
  bytes.set(pcm, HEADER_BYTES);
  return bytes;
}
