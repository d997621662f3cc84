/**
 * How the caller's audio is cut into speech-to-text messages: one message
 * per 20 ms frame while the vendor's endpointing may depend on it, a few
 * frames at a time while the caller speaks, and larger messages while the
 * caller has long been quiet.
 *
 * Every message costs the server a socket write (a profile of 100 agent
 * calls put a third of its busy time there; of 200 callers talking back to
 * back, with quiet audio coalesced, still a fifth), and that cost is the
 * write itself, so only fewer messages help. Deepgram recommends "sending
 * between 20ms and 250ms of data at once"
 * (https://github.com/orgs/deepgram/discussions/224), Gladia "≃ 100ms"
 * chunks (https://docs.gladia.io/api-reference/v2/live/action/audio-chunk),
 * and Sarvam's adapter already sends its own larger chunks. So:
 *
 * - While the caller speaks, up to
 *   {@linkcode SttUplinkOptions.speechCoalesceMs} (60 ms, three frames) go
 *   in one message. Latency does not suffer: during speech the vendor only
 *   produces interim results, each at most that much later, and the end of
 *   the turn is decided in the silence that follows, which goes frame by
 *   frame. 60 ms sits at the low end of Deepgram's range, a third of the
 *   messages of 20 ms frames, and well under a syllable. This holds while
 *   the vendor has a turn open too: that turn is the speech.
 * - "Speaks" spans the pauses inside and between words: the hold lasts
 *   through {@linkcode SttUplinkOptions.speechTailMs} (100 ms) of windows
 *   without speech. The vendor's endpointing needs the silence that ends a
 *   turn as it happens, but only from its window's end (300 ms after the
 *   last word by default): everything held is sent at the tail's end, well
 *   before, so no end of turn comes later ({@linkcode speechTailFor} keeps
 *   the tail within a third of the window). Without the tail a pause of a
 *   few windows inside a sentence, common in real speech, went frame by
 *   frame: over a fifth of a talker's messages.
 * - After the tail, what is held goes at once and the audio goes frame by
 *   frame: the vendor's endpointing is timing that silence.
 * - Once the detector has heard nothing for
 *   {@linkcode SttUplinkOptions.quietAfterMs} and the vendor has no turn
 *   open, or as soon as the vendor has ended the turn (nothing it decides
 *   then times the silence), up to {@linkcode SttUplinkOptions.coalesceMs}
 *   (100 ms) go at a time. Speech onset (the detector, or the vendor's own
 *   `speech_started`/partial) sends what is held at once; so does the
 *   vendor opening a turn, and the first `quietAfterMs` after speech ends
 *   stay frame by frame unless the vendor ends the turn.
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
  /** Most audio per message while the detector hears speech, ms; 0 sends every frame as it comes. Default 60. */
  speechCoalesceMs?: number;
  /** Audio without speech that still counts as speaking (pauses inside and between words), ms. Default 100; see {@linkcode speechTailFor}. */
  speechTailMs?: number;
}

/** Default {@linkcode SttUplinkOptions.coalesceMs}. */
export const DEFAULT_COALESCE_MS = 100;

/** Default {@linkcode SttUplinkOptions.quietAfterMs}. */
export const DEFAULT_QUIET_AFTER_MS = 1000;

/** Default {@linkcode SttUplinkOptions.speechCoalesceMs}. */
export const DEFAULT_SPEECH_COALESCE_MS = 60;

/** Default {@linkcode SttUplinkOptions.speechTailMs}. */
export const DEFAULT_SPEECH_TAIL_MS = 100;

/**
 * The speech tail for a vendor that ends turns after `endpointingMs` of
 * silence: at most a third of that, so that everything held has gone well
 * before the vendor's window closes; {@linkcode DEFAULT_SPEECH_TAIL_MS}
 * when the vendor's window is unknown.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(speechTailFor(300), 100);
 * assertEquals(speechTailFor(90), 30);
 * assertEquals(speechTailFor(undefined), 100);
 * ```
 */
export function speechTailFor(endpointingMs: number | undefined): number {
  if (endpointingMs === undefined) return DEFAULT_SPEECH_TAIL_MS;
  return Math.min(DEFAULT_SPEECH_TAIL_MS, Math.floor(endpointingMs / 3));
}

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
 * // Speech onset: what is held goes at once, then 60 ms at a time.
 * uplink.push(frame());
 * assertEquals(uplink.voiced()?.length, 320);
 * assertEquals(uplink.push(frame()), undefined);
 * uplink.voiced();
 * assertEquals(uplink.push(frame()), undefined);
 * assertEquals(uplink.push(frame())?.length, 960);
 * // Windows without speech are held as speech through a 100 ms tail…
 * assertEquals(uplink.push(frame()), undefined);
 * assertEquals(uplink.unvoiced(), undefined);
 * assertEquals(uplink.push(frame()), undefined);
 * assertEquals(uplink.unvoiced(), undefined);
 * assertEquals(uplink.push(frame())?.length, 960);
 * // …after which the audio goes frame by frame.
 * uplink.unvoiced();
 * assertEquals(uplink.push(frame())?.length, 320);
 * ```
 */
export class SttUplink {
  #bytesPerMs: number;
  #coalesceBytes: number;
  #speechCoalesceBytes: number;
  #quietAfterMs: number;
  #speechTailMs: number;
  /** Audio pushed so far, ms. */
  #audioMs = 0;
  /** When speech was last detected, in audio ms. */
  #voicedAtMs = 0;
  /** From when on, in audio ms, quiet audio is coalesced (when no turn is open). */
  #quietFromMs: number;
  /** The detector heard speech within the tail, and nothing since said the caller stopped. */
  #speaking = false;
  /** The vendor has heard speech and not yet ended the turn. */
  #turnOpen = false;
  /** The next message, gathered in place: one copy per held frame. */
  #message: Uint8Array | undefined;
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
    const speechCoalesceMs = options.speechCoalesceMs ??
      DEFAULT_SPEECH_COALESCE_MS;
    const speechTailMs = options.speechTailMs ?? DEFAULT_SPEECH_TAIL_MS;
    for (
      const [name, value] of [
        ["sampleRate", sampleRate],
        ["coalesceMs", coalesceMs],
        ["quietAfterMs", quietAfterMs],
        ["speechCoalesceMs", speechCoalesceMs],
        ["speechTailMs", speechTailMs],
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
    this.#coalesceBytes = this.#wholeSamples(coalesceMs);
    this.#speechCoalesceBytes = this.#wholeSamples(speechCoalesceMs);
    this.#quietAfterMs = quietAfterMs;
    this.#quietFromMs = quietAfterMs;
    this.#speechTailMs = speechTailMs;
  }

  /** Whether audio pushed now is held back: the caller has long been quiet, or is speaking. */
  get coalescing(): boolean {
    return this.#holdBytes() > 0;
  }

  /**
   * One frame of caller audio. Returns it (or it after what was held) to
   * send now, or `undefined` when it is held. `pcm` may be reused by the
   * caller once this returns: held audio is copied.
   */
  push(pcm: Uint8Array): Uint8Array | undefined {
    if (pcm.length === 0) return undefined;
    // Whether to hold this frame depends on the audio before it.
    const holdBytes = this.#holdBytes();
    this.#audioMs += pcm.length / this.#bytesPerMs;
    if (holdBytes === 0) {
      if (this.#heldBytes === 0) return pcm;
      this.#hold(pcm, 0);
      return this.take();
    }
    this.#hold(pcm, holdBytes);
    return this.#heldBytes >= holdBytes ? this.take() : undefined;
  }

  /**
   * The voice-activity detector's latest window is speech. At speech onset
   * this returns what is held (the quiet audio before it); while the caller
   * goes on speaking, audio is held up to
   * {@linkcode SttUplinkOptions.speechCoalesceMs}.
   */
  voiced(): Uint8Array | undefined {
    // What is held before onset (or after a detector that fell silent for
    // the quiet span) is quiet audio, which the vendor should have now.
    const onset = !this.#speaking || this.#quiet();
    this.#speaking = true;
    this.#voicedAtMs = this.#audioMs;
    this.#quietFromMs = this.#audioMs + this.#quietAfterMs;
    return onset ? this.take() : undefined;
  }

  /**
   * The voice-activity detector's latest window is not speech. Once that
   * has lasted past {@linkcode SttUplinkOptions.speechTailMs} since the last
   * speech, this returns what is held, and audio goes frame by frame: the
   * vendor's endpointing is timing this silence.
   */
  unvoiced(): Uint8Array | undefined {
    if (!this.#speaking) return undefined;
    if (this.#audioMs - this.#voicedAtMs < this.#speechTailMs) return undefined;
    this.#speaking = false;
    return this.take();
  }

  /**
   * An event from the vendor. A turn it opens sends what is held; a turn it
   * ends does too, and quiet audio is coalesced from then on, until the
   * detector hears speech again.
   */
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
    const message = this.#message;
    if (!message) return undefined;
    // Handed out: the next message gathers in a buffer of its own.
    this.#message = undefined;
    const bytes = this.#heldBytes;
    this.#heldBytes = 0;
    return message.subarray(0, bytes);
  }

  /** How much audio to gather per message now, in bytes; 0 sends each frame. */
  #holdBytes(): number {
    if (this.#quiet()) return this.#coalesceBytes;
    return this.#speaking ? this.#speechCoalesceBytes : 0;
  }

  /** Whether the caller has long been quiet (or the vendor ended the turn) and the vendor has no turn open. */
  #quiet(): boolean {
    return this.#coalesceBytes > 0 && !this.#turnOpen &&
      this.#audioMs >= this.#quietFromMs;
  }

  #endTurn(): Uint8Array | undefined {
    this.#turnOpen = false;
    // The vendor has decided, so no silence is being timed: quiet audio may
    // be coalesced at once. The detector's next speech sends it all (onset).
    this.#speaking = false;
    this.#quietFromMs = this.#audioMs;
    return this.take();
  }

  /**
   * Copies `pcm` into the message being gathered: a message of
   * `holdBytes`, sized for whole frames like this one, so frames of one
   * size never copy twice.
   */
  #hold(pcm: Uint8Array, holdBytes: number): void {
    const bytes = this.#heldBytes + pcm.length;
    let message = this.#message;
    if (!message || message.length < bytes) {
      const frames = Math.ceil(holdBytes / pcm.length);
      const grown = new Uint8Array(Math.max(bytes, frames * pcm.length));
      if (message) grown.set(message.subarray(0, this.#heldBytes));
      message = this.#message = grown;
    }
    message.set(pcm, this.#heldBytes);
    this.#heldBytes = bytes;
  }

  #wholeSamples(ms: number): number {
    return 2 * Math.round(ms * this.#bytesPerMs / 2);
  }
}
