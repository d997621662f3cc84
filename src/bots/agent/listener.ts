/**
 * The caller's ear: one streaming speech-to-text session for the call,
 * fed with the caller's audio as it arrives (resampled when the vendor
 * cannot take the call's rate), reopened when the vendor drops it. While
 * the caller has long been quiet the audio goes in 100 ms messages rather
 * than 20 ms ones, while the caller speaks in 60 ms ones
 * ({@linkcode SttUplink}); the detector's verdicts,
 * {@linkcode Listener.voiced} and {@linkcode Listener.unvoiced}, switch
 * between them, and windows without speech past a short tail (within a
 * third of the vendor's endpointing) send it frame by frame.
 *
 * @module
 */

import { Resampler } from "../../audio/resample.ts";
import type { Clock } from "../../call/clock.ts";
import { speechTailFor, SttUplink } from "./stt_uplink.ts";
import { ProviderError } from "../../providers/provider_error.ts";
import type {
  SpeechEvent,
  SpeechToText,
  SpeechToTextSession,
} from "../../providers/stt/speech_to_text.ts";

/** Options of a {@linkcode Listener}. */
export interface ListenerOptions {
  /** The vendor. */
  stt: SpeechToText;
  /** The rate of the caller's audio. */
  callRate: number;
  /** The rate to send the vendor. */
  sttRate: number;
  /** BCP 47 language. */
  language: string;
  /** The languages the caller may switch to (`AGENT_LANGUAGES`): more than one makes the vendor detect it. */
  languages?: string[];
  /** Time and timers, for the retry back-off and the vendor's wait at hang-up. */
  clock: Clock;
  /**
   * Every event the vendor reports; once {@linkcode Listener.close} is
   * called, only the final transcripts the vendor still owes for what the
   * caller said last.
   */
  onEvent(event: SpeechEvent): void;
  /** A session failed (it is reopened after a back-off). */
  onError(error: ProviderError): void;
  /** Most audio per message while the caller is long quiet, ms (see `stt_uplink.ts`); 0 = every frame. Default 100. */
  coalesceMs?: number;
  /** Most audio per message while the caller speaks, ms (see `stt_uplink.ts`); 0 = every frame. Default 60. */
  speechCoalesceMs?: number;
}

/** Caller audio held while no session is open, in ms. */
export const MAX_HELD_MS = 2000;

/** Waits between reopening attempts, in ms; the last repeats. */
const RETRY_DELAYS_MS = [0, 500, 1000, 2000, 5000];

/**
 * Keeps a speech-to-text session open for the whole call.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { systemClock } from "../../call/clock.ts";
 * import type {
 *   SpeechEvent,
 *   SpeechToText,
 * } from "../../providers/stt/speech_to_text.ts";
 *
 * // An in-memory vendor: one final transcript per piece of audio, and the
 * // stream ends when the call does (the session's signal).
 * const stt: SpeechToText = {
 *   name: "example",
 *   open({ sampleRate, signal }) {
 *     const pending: SpeechEvent[] = [];
 *     let wake = () => {};
 *     signal?.addEventListener("abort", () => wake());
 *     return Promise.resolve({
 *       push(pcm) {
 *         const ms = pcm.length / 2 / (sampleRate / 1000);
 *         pending.push({ type: "final", text: `${ms} ms of speech`, endOfTurn: true });
 *         wake();
 *       },
 *       async *events() {
 *         while (!signal?.aborted) {
 *           const event = pending.shift();
 *           if (event) yield event;
 *           else await new Promise<void>((resolve) => wake = resolve);
 *         }
 *       },
 *       close: () => Promise.resolve(),
 *     });
 *   },
 * };
 *
 * const heard = Promise.withResolvers<string>();
 * const listener = new Listener({
 *   stt,
 *   callRate: 8000,
 *   sttRate: 8000, // a vendor at another rate gets the audio resampled
 *   language: "en-IN",
 *   clock: systemClock,
 *   onEvent: (event) => {
 *     if (event.type === "final") heard.resolve(event.text);
 *   },
 *   onError: (error) => heard.reject(error),
 * });
 * listener.start();
 * listener.push(new Uint8Array(3200)); // held until the session is open
 * assertEquals(await heard.promise, "200 ms of speech");
 * await listener.close();
 * ```
 */
export class Listener {
  #options: ListenerOptions;
  #resampler: Resampler | undefined;
  #session: SpeechToTextSession | undefined;
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  #abort = new AbortController();
  #closed = false;
  #failures = 0;
  #cancelRetry: (() => void) | undefined;
  #loop: Promise<void> = Promise.resolve();
  #started = false;
  #uplink: SttUplink;

  /** Creates the listener; {@linkcode Listener.start} opens the session. */
  constructor(options: ListenerOptions) {
    this.#options = options;
    if (options.sttRate !== options.callRate) {
      this.#resampler = new Resampler(options.callRate, options.sttRate);
    }
    this.#uplink = new SttUplink({
      sampleRate: options.sttRate,
      coalesceMs: options.coalesceMs,
      speechCoalesceMs: options.speechCoalesceMs,
      speechTailMs: speechTailFor(options.stt.endpointingMs),
    });
  }

  /** Sessions that failed so far. */
  get failures(): number {
    return this.#failures;
  }

  /** The language sessions open with; a change applies from the next session. */
  get language(): string {
    return this.#options.language;
  }

  set language(language: string) {
    this.#options = { ...this.#options, language };
  }

  /** The rate of the caller's audio it takes. */
  get callRate(): number {
    return this.#options.callRate;
  }

  /** Whether {@linkcode Listener.start} has opened (or is opening) a session. */
  get started(): boolean {
    return this.#started;
  }

  /** Opens the first session; once only. */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#loop = this.#run();
  }

  /**
   * Sends caller audio. While no session is open (opening, or reopening
   * after a failure) the last {@linkcode MAX_HELD_MS} are held for the next.
   */
  push(pcm: Uint8Array): void {
    if (this.#closed) return;
    const audio = this.#resampler ? this.#resampler.push(pcm) : pcm;
    if (audio.length === 0) return;
    if (this.#session) {
      const message = this.#uplink.push(audio);
      if (message) this.#session.push(message);
      return;
    }
    this.#held.push(audio.slice());
    this.#heldBytes += audio.length;
    const limit = this.#options.sttRate * 2 * MAX_HELD_MS / 1000;
    while (this.#heldBytes > limit && this.#held.length > 1) {
      this.#heldBytes -= (this.#held.shift() as Uint8Array).length;
    }
  }

  /**
   * The voice-activity detector's latest window is speech: at onset held
   * audio goes out at once, then a few frames per message.
   */
  voiced(): void {
    this.#send(this.#uplink.voiced());
  }

  /**
   * The voice-activity detector's latest window is not speech: past the
   * speech's tail, held audio goes out at once, then frame by frame.
   */
  unvoiced(): void {
    this.#send(this.#uplink.unvoiced());
  }

  /**
   * Ends the session (the call is over): the vendor is told, its last final
   * transcripts still reach `onEvent` for the adapter's bounded wait
   * (`hangupWaitMs`, on the listener's clock), and this resolves once its
   * socket is closed. A session still connecting, or a reopening back-off,
   * stops at once.
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      // The vendor gets all the call's audio before its farewell.
      const held = this.#uplink.take();
      if (held) this.#session?.push(held);
      this.#cancelRetry?.();
      this.#abort.abort();
    }
    await this.#loop;
  }

  /** Sends what the uplink released, or keeps it for the next session. */
  #send(message: Uint8Array | undefined): void {
    if (!message) return;
    if (this.#session) this.#session.push(message);
    else {
      this.#held.push(message);
      this.#heldBytes += message.length;
    }
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      const failure = await this.#runSession();
      if (this.#closed) return;
      this.#failures++;
      this.#options.onError(failure);
      const delay = RETRY_DELAYS_MS[
        Math.min(this.#failures - 1, RETRY_DELAYS_MS.length - 1)
      ];
      await new Promise<void>((resolve) => {
        const cancel = this.#options.clock.schedule(resolve, delay);
        this.#cancelRetry = () => {
          cancel();
          resolve();
        };
      });
      this.#cancelRetry = undefined;
    }
  }

  /** Runs one session to its end; returns why it ended when that was not the call ending. */
  async #runSession(): Promise<ProviderError> {
    const { stt, sttRate, language, languages, onEvent } = this.#options;
    this.#resampler?.reset();
    try {
      const session = await stt.open({
        sampleRate: sttRate,
        language,
        ...(languages && languages.length > 1 ? { languages } : {}),
        signal: this.#abort.signal,
        clock: this.#options.clock,
      });
      this.#session = session;
      for (const audio of this.#held.splice(0)) session.push(audio);
      this.#heldBytes = 0;
      // Read to the end even once closing: the vendor's last finals come
      // after the farewell, and the stream ends only after its socket has
      // closed, so nothing is left open behind the call.
      for await (const event of session.events()) {
        const message = this.#uplink.heard(event);
        if (message) session.push(message);
        if (!this.#closed || event.type === "final") onEvent(event);
      }
      if (!this.#closed) {
        await session.close();
        return new ProviderError(stt.name, {
          kind: "network",
          message:
            `Speech-to-text stream from ${stt.name} ended before the call did`,
        });
      }
      return new ProviderError(stt.name, {
        kind: "aborted",
        message: "Call ended",
      });
    } catch (error) {
      return error instanceof ProviderError
        ? error
        : new ProviderError(stt.name, {
          kind: "protocol",
          message: `Speech-to-text session with ${stt.name} failed`,
          cause: error,
        });
    } finally {
      this.#session = undefined;
      // Audio held back for this session is the next one's.
      const held = this.#uplink.take();
      if (held) {
        this.#held.push(held);
        this.#heldBytes += held.length;
      }
    }
  }
}
