/**
 * Speech-to-text over a list of vendors: a session that cannot open goes to
 * the next vendor at once, and one that fails mid-call makes the listener's
 * reconnect open the next vendor.
 *
 * @module
 */

import type {
  SpeechEvent,
  SpeechToText,
  SpeechToTextOptions,
  SpeechToTextSession,
} from "../stt/speech_to_text.ts";
import {
  type CallChain,
  type ChainAttempt,
  everyProviderOut,
} from "./provider_chain.ts";

/**
 * One call's speech-to-text over a {@linkcode CallChain}.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { SpeechToText } from "../stt/speech_to_text.ts";
 * import { ProviderError } from "../provider_error.ts";
 * import { ProviderChain } from "./provider_chain.ts";
 * import { ProviderHealth } from "./provider_health.ts";
 *
 * const down: SpeechToText = {
 *   name: "deepgram",
 *   open: () =>
 *     Promise.reject(
 *       new ProviderError("deepgram", { kind: "network", message: "Refused" }),
 *     ),
 * };
 * const backup: SpeechToText = {
 *   name: "sarvam",
 *   open: () =>
 *     Promise.resolve({
 *       push() {},
 *       async *events() {
 *         yield { type: "final", text: "hello", endOfTurn: true } as const;
 *       },
 *       close: () => Promise.resolve(),
 *     }),
 * };
 * const chain = new ProviderChain("stt", [
 *   { provider: down, label: "deepgram" },
 *   { provider: backup, label: "sarvam" },
 * ], { health: new ProviderHealth({ now: () => 0 }) });
 *
 * const stt = new FallbackStt(chain.forCall());
 * const session = await stt.open({ sampleRate: 8000, language: "en-IN" });
 * assertEquals(stt.name, "sarvam");
 * const heard: string[] = [];
 * for await (const event of session.events()) {
 *   if (event.type === "final") heard.push(event.text);
 * }
 * assertEquals(heard, ["hello"]);
 * await session.close();
 * ```
 */
export class FallbackStt implements SpeechToText {
  #chain: CallChain<SpeechToText>;

  /** Wraps one call's view of the list. */
  constructor(chain: CallChain<SpeechToText>) {
    this.#chain = chain;
  }

  /** The vendor serving the call now. */
  get name(): string {
    return this.#chain.current.name;
  }

  /** The shortest endpointing among the listed vendors that set one: any of them may serve the call. */
  get endpointingMs(): number | undefined {
    const set = this.#chain.providers.flatMap((provider) =>
      provider.endpointingMs === undefined ? [] : [provider.endpointingMs]
    );
    return set.length === 0 ? undefined : Math.min(...set);
  }

  /** Opens a session on the vendor serving the call, or the next ones that can. */
  async open(options: SpeechToTextOptions): Promise<SpeechToTextSession> {
    let lastError: unknown;
    for (const attempt of this.#chain.attempts()) {
      try {
        const session = await attempt.provider.open(options);
        attempt.succeeded();
        return new WatchedSession(session, attempt);
      } catch (error) {
        if (options.signal?.aborted) {
          attempt.released();
          throw error;
        }
        if (!attempt.failed(error)) throw error;
        lastError = error;
      }
    }
    throw lastError ?? everyProviderOut(
      "stt",
      this.#chain.providers.map((provider) => provider.name),
    );
  }
}

/** A session whose mid-call failure moves the call to the next vendor. */
class WatchedSession implements SpeechToTextSession {
  #session: SpeechToTextSession;
  #attempt: ChainAttempt<SpeechToText>;

  constructor(
    session: SpeechToTextSession,
    attempt: ChainAttempt<SpeechToText>,
  ) {
    this.#session = session;
    this.#attempt = attempt;
  }

  push(pcm: Uint8Array): void {
    this.#session.push(pcm);
  }

  async *events(): AsyncGenerator<SpeechEvent> {
    try {
      yield* this.#session.events();
    } catch (error) {
      this.#attempt.failed(error);
      throw error;
    }
  }

  close(): Promise<void> {
    return this.#session.close();
  }
}
