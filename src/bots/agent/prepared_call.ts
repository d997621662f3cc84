/**
 * What an agent readies for a call at Exotel's `connected` event, before
 * `start`: the call's own view of the providers and an open speech-to-text
 * session at the rate the socket URL asked for, so the vendor's handshake
 * (DNS, TLS, WebSocket upgrade) is done by the time the caller's first audio
 * arrives, instead of after `start` and the setup webhook.
 *
 * @module
 */

import type { Clock } from "../../call/clock.ts";
import type { ProviderError } from "../../providers/provider_error.ts";
import type { SpeechEvent } from "../../providers/stt/speech_to_text.ts";
import type { AgentProviders } from "./providers.ts";
import { Listener } from "./listener.ts";

/** Where a taken {@linkcode PreparedCall}'s speech-to-text reports go. */
export interface ListenerHandlers {
  /** Every event the vendor reports. */
  onEvent(event: SpeechEvent): void;
  /** A session failed (it is reopened after a back-off). */
  onError(error: ProviderError): void;
}

/** Options of a {@linkcode PreparedCall}. */
export interface PreparedCallOptions {
  /** The agent's providers; the call gets its own view (`forCall`) of them. */
  providers: AgentProviders;
  /** The rate the socket URL asked for. */
  sampleRate: number;
  /** The agent's language. */
  language: string;
  /** The languages the caller may switch to. */
  languages?: string[];
  /** Time and timers. */
  clock: Clock;
}

/**
 * A call readied at `connected`. The bot created at `start` takes it with
 * {@linkcode PreparedCall.take}; a call that ends first cancels it.
 *
 * @example
 * ```ts ignore
 * const prepared = new PreparedCall({ providers, sampleRate: 8000, language: "en-IN", clock });
 * // …Exotel's start arrives:
 * const listener = prepared.take(8000, { onEvent, onError });
 * if (listener === undefined) await prepared.cancel(); // another rate: open a new one
 * ```
 */
export class PreparedCall {
  /** The call's view of the providers: a provider that fails is skipped for the rest of it. */
  readonly providers: AgentProviders;
  #listener: Listener;
  #handlers: ListenerHandlers | undefined;
  /** Failures reported before a bot took the session: handed over with it. */
  #earlyErrors: ProviderError[] = [];
  #done = false;

  /** Opens speech-to-text for the call at once. */
  constructor(options: PreparedCallOptions) {
    const { providers, sampleRate, clock } = options;
    this.providers = providers.forCall?.() ?? providers;
    this.#listener = new Listener({
      stt: this.providers.stt,
      callRate: sampleRate,
      sttRate: this.providers.sttSampleRate(sampleRate),
      language: options.language,
      languages: options.languages,
      clock,
      // No caller audio reaches the session before `start`, so there are
      // no transcripts to hold; only failures.
      onEvent: (event) => this.#handlers?.onEvent(event),
      onError: (error) => {
        if (this.#handlers) this.#handlers.onError(error);
        else this.#earlyErrors.push(error);
      },
    });
    this.#listener.start();
  }

  /**
   * Hands the open session to the call's bot, when the call's rate is the
   * one it was opened at; otherwise returns undefined, and the bot cancels
   * this and opens its own. Once only.
   */
  take(sampleRate: number, handlers: ListenerHandlers): Listener | undefined {
    if (this.#done || sampleRate !== this.#listener.callRate) return undefined;
    this.#done = true;
    this.#handlers = handlers;
    for (const error of this.#earlyErrors.splice(0)) handlers.onError(error);
    return this.#listener;
  }

  /** The call ended before a bot took the session, or the bot cannot use it: closes it (not once a bot took it). */
  cancel(): Promise<void> {
    this.#done = true;
    if (this.#handlers) return Promise.resolve();
    return this.#listener.close();
  }
}
