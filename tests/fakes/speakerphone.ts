/**
 * A speakerphone for the simulator: what the bot sends comes back in the
 * caller's audio, as on a real line with the handset's loudspeaker on —
 * late, quieter and band-limited to the telephone band.
 *
 * @module
 */

import type { CallerControl } from "../../tools/simulator.ts";

/** A second-order IIR section (RBJ cookbook), stateful across chunks. */
class Biquad {
  #b: [number, number, number];
  #a: [number, number];
  #x1 = 0;
  #x2 = 0;
  #y1 = 0;
  #y2 = 0;

  constructor(kind: "lowpass" | "highpass", hz: number, sampleRate: number) {
    const w = 2 * Math.PI * hz / sampleRate;
    const alpha = Math.sin(w) / (2 * Math.SQRT1_2);
    const cos = Math.cos(w);
    const a0 = 1 + alpha;
    const b1 = kind === "lowpass" ? 1 - cos : -(1 + cos);
    const b0 = kind === "lowpass" ? (1 - cos) / 2 : (1 + cos) / 2;
    this.#b = [b0 / a0, b1 / a0, b0 / a0];
    this.#a = [-2 * cos / a0, (1 - alpha) / a0];
  }

  next(x: number): number {
    const [b0, b1, b2] = this.#b;
    const [a1, a2] = this.#a;
    const y = b0 * x + b1 * this.#x1 + b2 * this.#x2 - a1 * this.#y1 -
      a2 * this.#y2;
    this.#x2 = this.#x1;
    this.#x1 = x;
    this.#y2 = this.#y1;
    this.#y1 = y;
    return y;
  }
}

/** Options of a {@linkcode SpeakerphoneEcho}. */
export interface SpeakerphoneOptions {
  /** How long after it plays the bot's audio comes back, in ms. */
  delayMs: number;
  /** How much quieter it comes back, in dB. */
  lossDb: number;
}

/**
 * Feeds the bot's audio back into the simulated caller's: give
 * {@linkcode SpeakerphoneEcho.sent} to the simulator's `onReplyAudio`.
 * Playback is modelled as Exotel plays: each chunk after the one before,
 * from when it arrives; its echo is mixed into the caller's audio
 * `delayMs` after it plays, `lossDb` down, through a 300–3400 Hz band-pass.
 */
export class SpeakerphoneEcho implements Disposable {
  /** Bytes of echo fed back so far. */
  echoedBytes = 0;
  #sampleRate: number;
  #options: SpeakerphoneOptions;
  #playEndMs = 0;
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #highPass: Biquad;
  #lowPass: Biquad;

  /** Creates the speakerphone for a call at `sampleRate`. */
  constructor(sampleRate: number, options: SpeakerphoneOptions) {
    this.#sampleRate = sampleRate;
    this.#options = options;
    this.#highPass = new Biquad("highpass", 300, sampleRate);
    this.#lowPass = new Biquad("lowpass", 3400, sampleRate);
  }

  /** The bot sent `pcm`: it plays after what is queued, and comes back later. */
  sent(pcm: Uint8Array, caller: CallerControl): void {
    const now = caller.callMs;
    const playsAt = Math.max(now, this.#playEndMs);
    this.#playEndMs = playsAt + (pcm.length / 2) * 1000 / this.#sampleRate;
    const echo = this.#filter(pcm);
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.echoedBytes += echo.length;
      caller.play(echo);
    }, playsAt + this.#options.delayMs - now);
    this.#timers.add(timer);
  }

  /** Cancels the echoes not yet fed back. */
  [Symbol.dispose](): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  #filter(pcm: Uint8Array): Uint8Array {
    const gain = 10 ** (-this.#options.lossDb / 20);
    const input = new DataView(pcm.buffer, pcm.byteOffset, pcm.byteLength);
    const out = new Uint8Array(pcm.length);
    const output = new DataView(out.buffer);
    for (let i = 0; i + 1 < pcm.length; i += 2) {
      const x = input.getInt16(i, true) * gain;
      const y = this.#lowPass.next(this.#highPass.next(x));
      output.setInt16(
        i,
        Math.max(-32768, Math.min(32767, Math.round(y))),
        true,
      );
    }
    return out;
  }
}
