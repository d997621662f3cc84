/**
 * A language model over a list of endpoints: a turn whose endpoint fails
 * before its first token is asked of the next, which then serves the rest of
 * the call.
 *
 * @module
 */

import type {
  ChatMessage,
  CompletionEvent,
  CompletionOptions,
  LanguageModel,
} from "../llm/language_model.ts";
import { type CallChain, everyProviderOut } from "./provider_chain.ts";

/**
 * One call's model over a {@linkcode CallChain}.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import type { LanguageModel } from "../llm/language_model.ts";
 * import { ProviderError } from "../provider_error.ts";
 * import { ProviderChain } from "./provider_chain.ts";
 * import { ProviderHealth } from "./provider_health.ts";
 *
 * const down: LanguageModel = {
 *   name: "primary",
 *   // deno-lint-ignore require-yield
 *   async *complete() {
 *     throw new ProviderError("primary", {
 *       kind: "http",
 *       message: "Unavailable",
 *       status: 503,
 *     });
 *   },
 * };
 * const backup: LanguageModel = {
 *   name: "backup",
 *   async *complete() {
 *     yield { type: "text", text: "Hello!" };
 *   },
 * };
 * const chain = new ProviderChain("llm", [
 *   { provider: down, label: "primary" },
 *   { provider: backup, label: "backup" },
 * ], { health: new ProviderHealth({ now: () => 0 }) });
 *
 * const llm = new FallbackLlm(chain.forCall());
 * const said: string[] = [];
 * for await (const event of llm.complete([{ role: "user", content: "Hi" }])) {
 *   if (event.type === "text") said.push(event.text);
 * }
 * assertEquals(said, ["Hello!"]);
 * assertEquals(llm.name, "backup"); // it serves the rest of the call
 * ```
 */
export class FallbackLlm implements LanguageModel {
  #chain: CallChain<LanguageModel>;

  /** Wraps one call's view of the list. */
  constructor(chain: CallChain<LanguageModel>) {
    this.#chain = chain;
  }

  /** The endpoint serving the call now. */
  get name(): string {
    return this.#chain.current.name;
  }

  /**
   * Streams the reply from the endpoint serving the call; when it fails
   * before anything was streamed, the same turn goes to the next endpoint.
   * After the first event a failure ends the reply with its error: the
   * caller must not hear the start of an answer twice.
   */
  async *complete(
    messages: ChatMessage[],
    options?: CompletionOptions,
  ): AsyncGenerator<CompletionEvent> {
    let lastError: unknown;
    for (const attempt of this.#chain.attempts()) {
      let streamedAny = false;
      let settled = false;
      try {
        for await (
          const event of attempt.provider.complete(messages, options)
        ) {
          streamedAny = true;
          yield event;
        }
        settled = true;
        attempt.succeeded();
        return;
      } catch (error) {
        settled = true;
        if (options?.signal?.aborted) {
          attempt.released();
          throw error;
        }
        if (!attempt.failed(error) || streamedAny) throw error;
        lastError = error;
      } finally {
        if (!settled) attempt.released();
      }
    }
    throw lastError ?? everyProviderOut(
      "llm",
      this.#chain.providers.map((provider) => provider.name),
    );
  }
}
