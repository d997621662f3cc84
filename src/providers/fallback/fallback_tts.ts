/**
 * Text-to-speech over a list of vendors: a piece whose vendor fails before
 * any audio came is synthesised by the next one, which then serves the rest
 * of the call.
 *
 * @module
 */

import type {
  Synthesis,
  SynthesisOptions,
  TextToSpeech,
} from "../tts/text_to_speech.ts";
import {
  type CallChain,
  type ChainAttempt,
  everyProviderOut,
} from "./provider_chain.ts";

/**
 * One call's voice over a {@linkcode CallChain}. Its `name` and `voice` are
 * those of the vendor serving the call now, so cached lines follow it.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { TextToSpeech } from "../tts/text_to_speech.ts";
 * import { ProviderError } from "../provider_error.ts";
 * import { ProviderChain } from "./provider_chain.ts";
 * import { ProviderHealth } from "./provider_health.ts";
 *
 * const down: TextToSpeech = {
 *   name: "elevenlabs",
 *   voice: "rachel",
 *   synthesize: () =>
 *     Promise.reject(
 *       new ProviderError("elevenlabs", { kind: "timeout", message: "No answer" }),
 *     ),
 * };
 * const backup: TextToSpeech = {
 *   name: "deepgram",
 *   voice: "aura-2-thalia-en",
 *   synthesize: (_text, options) =>
 *     Promise.resolve({
 *       sampleRate: options.sampleRate,
 *       audio: (async function* () {
 *         yield new Uint8Array(320);
 *       })(),
 *     }),
 * };
 * const chain = new ProviderChain("tts", [
 *   { provider: down, label: "elevenlabs" },
 *   { provider: backup, label: "deepgram" },
 * ], { health: new ProviderHealth({ now: () => 0 }) });
 *
 * const tts = new FallbackTts(chain.forCall());
 * const synthesis = await tts.synthesize("Hello", { sampleRate: 8000 });
 * let bytes = 0;
 * for await (const pcm of synthesis.audio) bytes += pcm.length;
 * assertEquals(bytes, 320);
 * // Cached lines follow the vendor that serves the call now.
 * assertEquals([tts.name, tts.voice], ["deepgram", "aura-2-thalia-en"]);
 * ```
 */
export class FallbackTts implements TextToSpeech {
  #chain: CallChain<TextToSpeech>;

  /** Wraps one call's view of the list. */
  constructor(chain: CallChain<TextToSpeech>) {
    this.#chain = chain;
  }

  /** The vendor serving the call now. */
  get name(): string {
    return this.#chain.current.name;
  }

  /** Its voice. */
  get voice(): string {
    return this.#chain.current.voice;
  }

  /** Every vendor of the list, in order. */
  get providers(): TextToSpeech[] {
    return this.#chain.providers;
  }

  /**
   * Synthesises `text` on the vendor serving the call, falling back to the
   * next when it fails before its first audio. Audio is never mixed from two
   * vendors: a vendor that fails mid-piece ends the piece with its error,
   * and the next piece goes to the next vendor.
   */
  async synthesize(
    text: string,
    options: SynthesisOptions,
  ): Promise<Synthesis> {
    let lastError: unknown;
    const labels: string[] = [];
    for (const attempt of this.#chain.attempts()) {
      labels.push(attempt.label);
      try {
        const synthesis = await attempt.provider.synthesize(text, options);
        const iterator = synthesis.audio[Symbol.asyncIterator]();
        const first = await iterator.next();
        return {
          sampleRate: synthesis.sampleRate,
          audio: streamed(first, iterator, {
            attempt,
            signal: options.signal,
          }),
        };
      } catch (error) {
        if (options.signal?.aborted) {
          attempt.released();
          throw error;
        }
        if (!attempt.failed(error)) throw error;
        lastError = error;
      }
    }
    throw lastError ?? everyProviderOut("tts", labelsOf(this.#chain));
  }
}

function labelsOf(chain: CallChain<TextToSpeech>): string[] {
  return chain.providers.map((provider) => provider.name);
}

/** What {@linkcode streamed} reports the stream's outcome to. */
interface StreamedAttempt {
  /** The chain attempt that produced the audio. */
  attempt: ChainAttempt<TextToSpeech>;
  /** The caller's abort signal: a stream it ended is released, not failed. */
  signal: AbortSignal | undefined;
}

async function* streamed(
  first: IteratorResult<Uint8Array>,
  rest: AsyncIterator<Uint8Array>,
  { attempt, signal }: StreamedAttempt,
): AsyncGenerator<Uint8Array> {
  let finished = false;
  try {
    let next = first;
    while (!next.done) {
      yield next.value;
      next = await rest.next();
    }
    finished = true;
    attempt.succeeded();
  } catch (error) {
    finished = true;
    if (signal?.aborted) attempt.released();
    else attempt.failed(error);
    throw error;
  } finally {
    if (!finished) {
      // The reader stopped early (barge-in): nothing learned.
      attempt.released();
      await rest.return?.();
    }
  }
}
