/**
 * How the caller's audio is cut into speech-to-text messages: one message
 * per 20 ms frame while anything may depend on it, fewer and larger ones
 * while the caller has long been quiet.
 *
 * Every message costs the server a socket write (a profile of 100 agent
 * calls put a third of its busy time there), while the caller is silent
 * most of a call: the bot is talking, or the line is idle. Deepgram
 * recommends "sending between 20ms and 250ms of data at once"
 * (https://github.com/orgs/deepgram/discussions/224), Gladia "≃ 100ms"
 * chunks (https://docs.gladia.io/api-reference/v2/live/action/audio-chunk),
 * and Sarvam's adapter already sends its own larger chunks. So once the
 * voice-activity detector has heard nothing for {@linkcode SttUplinkOptions.quietAfterMs}
 * and the vendor has no turn open, up to
 * {@linkcode SttUplinkOptions.coalesceMs} are sent at a time. Speech onset
 * (the detector, or the vendor's own `speech_started`/partial) sends what is
 * held at once and goes back to frame by frame; so does the vendor opening
 * a turn, and the first `quietAfterMs` after speech ends stay frame by frame
 * because endpointing needs that audio promptly.
 *
 * Time here is audio time (milliseconds of audio pushed), so the module is
 * pure: no clock, no timers.
 *
 * @module
 */

import type { SpeechEvent } from "../../providers/stt/speech_to_text.ts";

/** Options of an {@linkcode SttUplink}. */
export interface SttUplinkOptions {
  /** The rate of the audio pushed, Hz (16-bit mono PCM). */
  sampleRate: number;
  /** Most audio per message while quiet, ms; 0 sends every frame as it comes. Default 100. */
  coalesceMs?: number;
  /** Audio without detected speech before messages are coalesced, ms. Default 1000. */
  quietAfterMs?: number;
}

/** Default {@linkcode SttUplinkOptions.coalesceMs}. */
export const DEFAULT_COALESCE_MS = 100;

/** Default {@linkcode SttUplinkOptions.quietAfterMs}. */
export const DEFAULT_QUIET_AFTER_MS = 1000;

/**
 * Decides, frame by frame, what to send the speech-to-text vendor. Each
 * method returns the audio to send now, or `undefined` when there is none;
 * nothing pushed is lost or reordered.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const uplink = new SttUplink({ sampleRate: 8000 });
 * const frame = () => new Uint8Array(320); // 20 ms at 8 kHz
 * // The first second is sent frame by frame.
 * for (let i = 0; i < 50; i++) assertEquals(uplink.push(frame())?.length, 320);
 * // Quiet for a second: 100 ms go in one message.
 * for (let i = 0; i < 4; i++) assertEquals(uplink.push(frame()), undefined);
 * assertEquals(uplink.push(frame())?.length, 1600);
 * // Speech: what is held goes at once, then frame by frame again.
 * uplink.push(frame());
 * assertEquals(uplink.voiced()?.length, 320);
 * assertEquals(uplink.push(frame())?.length, 320);
 * ```
 */
export class SttUplink {
  #bytesPerMs: number;
  #coalesceBytes: number;
  #quietAfterMs: number;
  /** Audio pushed so far, ms. */
  #audioMs = 0;
  /** When speech was last detected, in audio ms. */
  #voicedAtMs = 0;
  /** The vendor has heard speech and not yet ended the turn. */
  #turnOpen = false;
  #held: Uint8Array[] = [];
  #heldBytes = 0;

  /**
   * Checks `options`.
   *
   * @throws {RangeError} quoting a bad value.
   */
  constructor(options: SttUplinkOptions) {
    const { sampleRate } = options;
    const coalesceMs = options.coalesceMs ?? DEFAULT_COALESCE_MS;
    const quietAfterMs = options.quietAfterMs ?? DEFAULT_QUIET_AFTER_MS;
    for (
      const [name, value] of [
        ["sampleRate", sampleRate],
        ["coalesceMs", coalesceMs],
        ["quietAfterMs", quietAfterMs],
      ] as const
    ) {
      if (!Number.isFinite(value) || value < (name === "sampleRate" ? 1 : 0)) {
        throw new RangeError(
          `Invalid ${name} "${value}": expected a ${
            name === "sampleRate" ? "positive" : "non-negative"
          } number`,
        );
      }
    }
    this.#bytesPerMs = sampleRate * 2 / 1000;
    // Whole samples, so a message never splits one.
    this.#coalesceBytes = 2 * Math.round(coalesceMs * this.#bytesPerMs / 2);
    this.#quietAfterMs = quietAfterMs;
  }

  /** Whether audio is being held back (the caller has long been quiet). */
  get coalescing(): boolean {
    return this.#coalesceBytes > 0 && !this.#turnOpen &&
      this.#audioMs - this.#voicedAtMs >= this.#quietAfterMs;
  }

  /**
   * One frame of caller audio. Returns it (or it after what was held) to
   * send now, or `undefined` when it is held. `pcm` may be reused by the
   * caller once this returns: held audio is copied.
   */
  push(pcm: Uint8Array): Uint8Array | undefined {
    if (pcm.length === 0) return undefined;
    // Whether to hold this frame depends on the audio before it.
    const coalescing = this.coalescing;
    this.#audioMs += pcm.length / this.#bytesPerMs;
    if (!coalescing) {
      if (this.#heldBytes === 0) return pcm;
      this.#hold(pcm);
      return this.take();
    }
    this.#hold(pcm);
    return this.#heldBytes >= this.#coalesceBytes ? this.take() : undefined;
  }

  /** The voice-activity detector heard speech just now: returns what is held. */
  voiced(): Uint8Array | undefined {
    this.#voicedAtMs = this.#audioMs;
    return this.take();
  }

  /** An event from the vendor: a turn it opens sends what is held. */
  heard(event: SpeechEvent): Uint8Array | undefined {
    switch (event.type) {
      case "speech_started":
      case "partial":
        this.#turnOpen = true;
        return this.take();
      case "final":
        if (!event.endOfTurn) {
          this.#turnOpen = true;
          return this.take();
        }
        return this.#endTurn();
      case "end_of_turn":
        return this.#endTurn();
      default:
        return undefined;
    }
  }

  /** Everything held, in one piece (`undefined` when nothing is); the uplink keeps none. */
  take(): Uint8Array | undefined {
    if (this.#heldBytes === 0) return undefined;
    const held = this.#held;
    this.#held = [];
    const bytes = this.#heldBytes;
    this.#heldBytes = 0;
    if (held.length === 1) return held[0];
    const all = new Uint8Array(bytes);
    let offset = 0;
    for (const piece of held) {
      all.set(piece, offset);
      offset += piece.length;
    }
    return all;
  }

  #endTurn(): undefined {
    this.#turnOpen = false;
    // The quiet counts from the end of the turn.
    this.#voicedAtMs = Math.max(this.#voicedAtMs, this.#audioMs);
    return undefined;
  }

  #hold(pcm: Uint8Array): void {
    this.#held.push(pcm.slice());
    this.#heldBytes += pcm.length;
  }
}
