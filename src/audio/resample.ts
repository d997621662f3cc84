/**
 * Streaming sample-rate conversion of 16-bit little-endian mono PCM, for TTS
 * audio (22.05–48 kHz) that must play on an 8/16/24 kHz call. Pure: no I/O.
 *
 * The converter is a rational polyphase FIR: the rate pair reduces to L/M
 * (e.g. 22050 → 8000 is 160/441), and each output sample is one dot product
 * of a precomputed Kaiser-windowed sinc phase with the input around it. The
 * filter's stopband starts at the lower rate's Nyquist frequency, so nothing
 * above it folds back into the speech band.
 *
 * @module
 */

/** Input rates a {@linkcode Resampler} accepts. */
export const RESAMPLER_INPUT_RATES = [
  8000,
  16000,
  22050,
  24000,
  44100,
  48000,
] as const;

/** Output rates a {@linkcode Resampler} produces: the rates a call plays at. */
export const RESAMPLER_OUTPUT_RATES = [8000, 16000, 24000] as const;

/** A rate a {@linkcode Resampler} accepts as input. */
export type ResamplerInputRate = typeof RESAMPLER_INPUT_RATES[number];

/** A rate a {@linkcode Resampler} produces. */
export type ResamplerOutputRate = typeof RESAMPLER_OUTPUT_RATES[number];

/** Tuning of the anti-aliasing filter. The defaults suit telephone speech. */
export interface ResamplerOptions {
  /**
   * Stopband attenuation in dB, from 40 to 140. Higher costs more taps.
   * Default 80.
   */
  attenuationDb?: number;
  /**
   * Where the flat passband ends, as a fraction of the lower rate's Nyquist
   * frequency, from 0.5 to 0.98; the rest up to Nyquist is the transition
   * band. Default 0.85 (3.4 kHz when converting to 8 kHz). Higher costs more
   * taps.
   */
  passband?: number;
}

/** Error thrown for a sample rate or filter option the resampler does not support. */
export class ResamplerConfigError extends RangeError {
  /** What was wrong, e.g. `input_rate`. */
  readonly code: "input_rate" | "output_rate" | "option";

  /** Creates the error. */
  constructor(code: ResamplerConfigError["code"], message: string) {
    super(message);
    this.name = "ResamplerConfigError";
    this.code = code;
  }
}

const DEFAULT_ATTENUATION_DB = 80;
const DEFAULT_PASSBAND = 0.85;

/** The polyphase filter for one rate pair and tuning; shared by every stream using it. */
interface FilterBank {
  /** Upsampling factor: phases per input sample. */
  up: number;
  /** Downsampling factor: input phase steps per output sample. */
  down: number;
  /** Input samples each side of the output instant the filter reads. */
  halfTaps: number;
  /** Taps per phase (`2 * halfTaps`). */
  taps: number;
  /** `up` phases of `taps` coefficients, phase after phase. */
  coefficients: Float64Array;
}

const banks = new Map<string, FilterBank>();

function formatList(values: readonly number[]): string {
  return `${values.slice(0, -1).join(", ")} or ${values[values.length - 1]}`;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Modified Bessel function of the first kind, order 0 (power series). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const quarter = x * x / 4;
  for (let k = 1; k < 64; k++) {
    term *= quarter / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

function validate(
  fromRate: number,
  toRate: number,
  options: ResamplerOptions,
): { attenuationDb: number; passband: number } {
  if (!(RESAMPLER_INPUT_RATES as readonly number[]).includes(fromRate)) {
    throw new ResamplerConfigError(
      "input_rate",
      `Invalid input sample rate "${fromRate}": expected ${
        formatList(RESAMPLER_INPUT_RATES)
      }`,
    );
  }
  if (!(RESAMPLER_OUTPUT_RATES as readonly number[]).includes(toRate)) {
    throw new ResamplerConfigError(
      "output_rate",
      `Invalid output sample rate "${toRate}": expected ${
        formatList(RESAMPLER_OUTPUT_RATES)
      }`,
    );
  }
  const attenuationDb = options.attenuationDb ?? DEFAULT_ATTENUATION_DB;
  if (!(attenuationDb >= 40 && attenuationDb <= 140)) {
    throw new ResamplerConfigError(
      "option",
      `Invalid attenuation "${attenuationDb}": expected 40 to 140 dB`,
    );
  }
  const passband = options.passband ?? DEFAULT_PASSBAND;
  if (!(passband >= 0.5 && passband <= 0.98)) {
    throw new ResamplerConfigError(
      "option",
      `Invalid passband "${passband}": expected 0.5 to 0.98`,
    );
  }
  return { attenuationDb, passband };
}

/**
 * Designs (or fetches from the cache) the Kaiser-windowed sinc filter bank
 * for a rate pair. Times are in input samples throughout.
 */
function filterBank(
  fromRate: number,
  toRate: number,
  tuning: { attenuationDb: number; passband: number },
): FilterBank {
  const key =
    `${fromRate}>${toRate}/${tuning.attenuationDb}/${tuning.passband}`;
  const cached = banks.get(key);
  if (cached) return cached;

  const divisor = gcd(fromRate, toRate);
  const up = toRate / divisor;
  const down = fromRate / divisor;
  const { attenuationDb, passband } = tuning;
  // Both frequencies are in cycles per input sample.
  const nyquist = Math.min(fromRate, toRate) / 2 / fromRate;
  const transition = nyquist * (1 - passband);
  const cutoff = nyquist * (1 + passband) / 2;
  // Kaiser's estimates of window shape and length for this ripple and transition.
  const beta = attenuationDb > 50
    ? 0.1102 * (attenuationDb - 8.7)
    : 0.5842 * (attenuationDb - 21) ** 0.4 + 0.07886 * (attenuationDb - 21);
  const length = (attenuationDb - 7.95) / (14.36 * transition);
  const halfTaps = Math.ceil(length / 2);
  const taps = 2 * halfTaps;
  const coefficients = new Float64Array(up * taps);
  const windowNorm = besselI0(beta);
  for (let phase = 0; phase < up; phase++) {
    const offset = phase / up;
    let sum = 0;
    const row = new Float64Array(taps);
    for (let k = 0; k < taps; k++) {
      // Distance from the output instant to input sample `i - halfTaps + 1 + k`.
      const t = offset + halfTaps - 1 - k;
      const u = t / halfTaps;
      const window = Math.abs(u) >= 1
        ? 0
        : besselI0(beta * Math.sqrt(1 - u * u)) / windowNorm;
      const x = 2 * Math.PI * cutoff * t;
      const sinc = x === 0 ? 1 : Math.sin(x) / x;
      row[k] = 2 * cutoff * sinc * window;
      sum += row[k];
    }
    // Unit DC gain for every phase; unequal gains would modulate the signal at the phase rate.
    for (let k = 0; k < taps; k++) {
      coefficients[phase * taps + k] = row[k] / sum;
    }
  }
  const bank = { up, down, halfTaps, taps, coefficients };
  banks.set(key, bank);
  return bank;
}

const EMPTY = new Uint8Array(0);

/**
 * Converts a stream of 16-bit little-endian mono PCM from one rate to another,
 * in pieces of any size. The state carried between pushes (filter history, the
 * output phase, an odd trailing byte) makes the concatenated output of any
 * chunking identical to converting the whole stream at once.
 *
 * Output lags input by the filter's half-length (about 4 ms for 24 kHz → 8 kHz);
 * {@linkcode Resampler.flush} returns that tail at the end of a stream. The
 * output holds `ceil(inputSamples * toRate / fromRate)` samples in all.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * // 30 ms of 24 kHz speech arriving from a TTS vendor in uneven pieces.
 * const pieces = [new Uint8Array(480), new Uint8Array(7), new Uint8Array(953)];
 * const resampler = new Resampler(24000, 8000);
 * const out = pieces.map((piece) => resampler.push(piece));
 * out.push(resampler.flush());
 * // 720 input samples become 240 at 8 kHz, whatever the piece sizes.
 * assertEquals(out.reduce((bytes, pcm) => bytes + pcm.length, 0), 480);
 * ```
 */
export class Resampler {
  #fromRate: number;
  #toRate: number;
  #bank: FilterBank | undefined;
  /**
   * Input samples as doubles (measured faster than Float32Array here: no
   * widening per multiply); `#buffer[0]` is input sample `#bufferStart`.
   */
  #buffer: Float64Array;
  #bufferStart = 0;
  #bufferLength = 0;
  /** Input samples received so far. */
  #received = 0;
  /** The next output instant: input sample `#position` plus `#phase / up`. */
  #position = 0;
  #phase = 0;
  #danglingByte = -1;

  /**
   * Creates a resampler from `fromRate` to `toRate`.
   *
   * @throws {ResamplerConfigError} for a rate or option outside the accepted ones.
   */
  constructor(
    fromRate: number,
    toRate: number,
    options: ResamplerOptions = {},
  ) {
    const tuning = validate(fromRate, toRate, options);
    this.#fromRate = fromRate;
    this.#toRate = toRate;
    this.#bank = fromRate === toRate
      ? undefined
      : filterBank(fromRate, toRate, tuning);
    this.#buffer = new Float64Array(2048);
    this.reset();
  }

  /** The input rate. */
  get fromRate(): number {
    return this.#fromRate;
  }

  /** The output rate. */
  get toRate(): number {
    return this.#toRate;
  }

  /** Input samples each side of an output instant the filter reads (0 when passing through). */
  get halfTaps(): number {
    return this.#bank?.halfTaps ?? 0;
  }

  /**
   * Adds `pcm` (any length, odd ones included) and returns the output it
   * completes, a fresh array of whole samples (possibly empty).
   */
  push(pcm: Uint8Array): Uint8Array {
    if (pcm.length === 0) return EMPTY;
    if (!this.#bank) return this.#passThrough(pcm);
    this.#append(pcm);
    return this.#render(this.#bank, this.#received);
  }

  /**
   * Ends the stream: returns the output still held back (the input after the
   * last output instant, filtered against silence) and resets the resampler
   * for a new stream. An odd trailing byte is dropped.
   */
  flush(): Uint8Array {
    if (!this.#bank) {
      this.reset();
      return EMPTY;
    }
    const bank = this.#bank;
    const end = this.#received;
    // The filter reads `halfTaps` samples past the last output instant; silence follows the stream.
    const padding = bank.halfTaps;
    this.#reserve(padding);
    this.#buffer.fill(0, this.#bufferLength, this.#bufferLength + padding);
    this.#bufferLength += padding;
    this.#received += padding;
    const out = this.#render(bank, end);
    this.reset();
    return out;
  }

  /** Drops everything held back (on barge-in) and starts a new stream. */
  reset(): void {
    const history = this.#bank ? this.#bank.halfTaps - 1 : 0;
    // Silence before the stream, so the first output instants have history to read.
    this.#buffer.fill(0, 0, history);
    this.#bufferStart = -history;
    this.#bufferLength = history;
    this.#received = 0;
    this.#position = 0;
    this.#phase = 0;
    this.#danglingByte = -1;
  }

  #passThrough(pcm: Uint8Array): Uint8Array {
    const carried = this.#danglingByte >= 0 ? 1 : 0;
    const total = carried + pcm.length;
    const out = new Uint8Array(total - (total % 2));
    if (carried) out[0] = this.#danglingByte;
    out.set(pcm.subarray(0, out.length - carried), carried);
    this.#danglingByte = total % 2 ? pcm[pcm.length - 1] : -1;
    return out;
  }

  #reserve(samples: number): void {
    const needed = this.#bufferLength + samples;
    if (needed <= this.#buffer.length) return;
    let size = this.#buffer.length * 2;
    while (size < needed) size *= 2;
    const grown = new Float64Array(size);
    grown.set(this.#buffer.subarray(0, this.#bufferLength));
    this.#buffer = grown;
  }

  #append(pcm: Uint8Array): void {
    let offset = 0;
    let total = pcm.length;
    const maxSamples = (total + 1) >> 1;
    this.#reserve(maxSamples);
    const buffer = this.#buffer;
    let at = this.#bufferLength;
    if (this.#danglingByte >= 0) {
      buffer[at++] = ((pcm[0] << 8 | this.#danglingByte) << 16) >> 16;
      this.#danglingByte = -1;
      offset = 1;
    }
    total -= offset;
    const count = total >> 1;
    const byteOffset = pcm.byteOffset + offset;
    if (byteOffset % 2 === 0) {
      // Deno runs on little-endian machines only, so a view reads the PCM as is.
      buffer.set(new Int16Array(pcm.buffer, byteOffset, count), at);
    } else {
      for (let i = 0, b = offset; i < count; i++, b += 2) {
        buffer[at + i] = ((pcm[b + 1] << 8 | pcm[b]) << 16) >> 16;
      }
    }
    at += count;
    if (total % 2) this.#danglingByte = pcm[pcm.length - 1];
    this.#received += at - this.#bufferLength;
    this.#bufferLength = at;
  }

  /**
   * Emits every output whose instant lies before input sample `end` and whose
   * filter window is fully buffered, then drops input no later output reads.
   */
  #render(bank: FilterBank, end: number): Uint8Array {
    const { up, down, halfTaps, taps, coefficients } = bank;
    const buffer = this.#buffer;
    const available = this.#received;
    let position = this.#position;
    let phase = this.#phase;
    // Count first, so the output is one allocation.
    let count = 0;
    {
      let p = position;
      let f = phase;
      while (p < end && p + halfTaps < available) {
        count++;
        f += down;
        p += Math.floor(f / up);
        f %= up;
      }
    }
    const bytes = new Uint8Array(count * 2);
    const out = new Int16Array(bytes.buffer);
    for (let n = 0; n < count; n++) {
      const first = position - halfTaps + 1 - this.#bufferStart;
      const base = phase * taps;
      // Four running sums let the CPU overlap the multiply-adds; `taps` is even.
      let acc0 = 0;
      let acc1 = 0;
      let acc2 = 0;
      let acc3 = 0;
      let k = 0;
      for (; k + 3 < taps; k += 4) {
        acc0 += coefficients[base + k] * buffer[first + k];
        acc1 += coefficients[base + k + 1] * buffer[first + k + 1];
        acc2 += coefficients[base + k + 2] * buffer[first + k + 2];
        acc3 += coefficients[base + k + 3] * buffer[first + k + 3];
      }
      for (; k < taps; k += 2) {
        acc0 += coefficients[base + k] * buffer[first + k];
        acc1 += coefficients[base + k + 1] * buffer[first + k + 1];
      }
      const rounded = Math.round((acc0 + acc1) + (acc2 + acc3));
      out[n] = rounded > 32767 ? 32767 : rounded < -32768 ? -32768 : rounded;
      phase += down;
      position += Math.floor(phase / up);
      phase %= up;
    }
    this.#position = position;
    this.#phase = phase;
    // Keep only what the next output reads; `#bufferStart + #bufferLength` stays `#received`.
    const drop = Math.min(
      position - halfTaps + 1 - this.#bufferStart,
      this.#bufferLength,
    );
    if (drop > 0) {
      buffer.copyWithin(0, drop, this.#bufferLength);
      this.#bufferStart += drop;
      this.#bufferLength -= drop;
    }
    return bytes;
  }
}

/** Rates and filter tuning for {@linkcode resampleAll}. */
export interface ResampleAllOptions extends ResamplerOptions {
  /** The rate of the input. */
  fromRate: number;
  /** The rate wanted. */
  toRate: number;
}

/**
 * Converts a whole piece of 16-bit mono PCM from one rate to another: the
 * same output as one {@linkcode Resampler.push} and its
 * {@linkcode Resampler.flush}.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const pcm24k = new Uint8Array(4800); // 100 ms at 24 kHz
 * const pcm8k = resampleAll(pcm24k, { fromRate: 24000, toRate: 8000 });
 * assertEquals(pcm8k.length, 1600); // 100 ms at 8 kHz
 * ```
 *
 * @throws {ResamplerConfigError} for a rate or option outside the accepted ones.
 */
export function resampleAll(
  pcm: Uint8Array,
  options: ResampleAllOptions,
): Uint8Array {
  const { fromRate, toRate, ...tuning } = options;
  const resampler = new Resampler(fromRate, toRate, tuning);
  const head = resampler.push(pcm);
  const tail = resampler.flush();
  if (tail.length === 0) return head;
  const out = new Uint8Array(head.length + tail.length);
  out.set(head);
  out.set(tail, head.length);
  return out;
}
