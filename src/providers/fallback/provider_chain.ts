/**
 * An ordered list of providers for one stage, with a circuit breaker per
 * provider shared across calls, and per call a cursor: once a provider fails
 * the next one serves the rest of the call.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { ProviderError } from "../provider_error.ts";
import type { BreakerSettings, CircuitBreaker } from "./circuit_breaker.ts";
import type { ProviderHealth, ProviderStage } from "./provider_health.ts";

const log = getLogger(["exovoice", "providers"]);

/** One provider of a list and the label its breaker and metrics use. */
export interface ChainEntry<T> {
  /** The adapter. */
  provider: T;
  /** Unique in its list: the vendor's name, or its host for a model endpoint. */
  label: string;
}

/** Options of a {@linkcode ProviderChain}. */
export interface ProviderChainOptions {
  /** The breakers, shared by every call. */
  health: ProviderHealth;
  /** Settings of breakers created for this list. */
  breaker?: BreakerSettings;
}

/**
 * Whether `error` is the provider's fault, so the next one should be tried:
 * a connection failure, a timeout, a broken answer, 401/403 (a key revoked
 * or out of credit), 408, 429 or any 5xx. An abort or another 4xx (our
 * request) is not.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ProviderError } from "../provider_error.ts";
 * const down = new ProviderError("deepgram", {
 *   kind: "http",
 *   message: "Down",
 *   status: 503,
 * });
 * const ours = new ProviderError("deepgram", {
 *   kind: "http",
 *   message: "Bad",
 *   status: 400,
 * });
 * assertEquals(isFallbackError(down), true);
 * assertEquals(isFallbackError(ours), false);
 * ```
 */
export function isFallbackError(error: unknown): boolean {
  if (!(error instanceof ProviderError)) return false;
  switch (error.kind) {
    case "network":
    case "timeout":
    case "protocol":
      return true;
    case "aborted":
      return false;
    case "http": {
      const status = error.status ?? 0;
      return status === 401 || status === 403 || status === 408 ||
        status === 429 || status >= 500;
    }
  }
}

/** One try of one provider; report how it went exactly once. */
export interface ChainAttempt<T> {
  /** The adapter to use. */
  provider: T;
  /** Its label. */
  label: string;
  /** Whether a later provider in the list is left to try. */
  hasNext: boolean;
  /** It served the request. */
  succeeded(): void;
  /**
   * It failed (a session may fail after it succeeded in opening): when the error is the provider's fault, the breaker counts
   * it and the call moves on to the next provider. Returns whether to try
   * the next one.
   */
  failed(error: unknown): boolean;
  /** It ended without telling anything (aborted). */
  released(): void;
}

/**
 * A stage's providers in order, with their shared breakers.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ProviderError } from "../provider_error.ts";
 * import { ProviderHealth } from "./provider_health.ts";
 *
 * const chain = new ProviderChain("tts", [
 *   { provider: "deepgram", label: "deepgram" },
 *   { provider: "elevenlabs", label: "elevenlabs" },
 * ], { health: new ProviderHealth({ now: () => 0 }) });
 * const call = chain.forCall();
 * const tried: string[] = [];
 * for (const attempt of call.attempts()) {
 *   tried.push(attempt.label);
 *   if (attempt.provider === "deepgram") {
 *     const error = new ProviderError("deepgram", {
 *       kind: "network",
 *       message: "Reset",
 *     });
 *     if (attempt.failed(error)) continue; // its fault: try the next
 *     break;
 *   }
 *   attempt.succeeded();
 *   break;
 * }
 * assertEquals(tried, ["deepgram", "elevenlabs"]);
 * assertEquals(call.current, "elevenlabs"); // serves the rest of this call
 * assertEquals(chain.forCall().current, "deepgram"); // a new call starts over
 * ```
 */
export class ProviderChain<T> {
  /** The stage served. */
  readonly stage: ProviderStage;
  /** The providers, in order of preference. */
  readonly entries: readonly ChainEntry<T>[];
  /** The shared breakers. */
  readonly health: ProviderHealth;
  #breakers: CircuitBreaker[];

  /** Creates the list; `entries` must not be empty. */
  constructor(
    stage: ProviderStage,
    entries: ChainEntry<T>[],
    options: ProviderChainOptions,
  ) {
    if (entries.length === 0) {
      throw new RangeError(`Invalid ${stage} provider list: it is empty`);
    }
    this.stage = stage;
    this.entries = entries;
    this.health = options.health;
    this.#breakers = entries.map((entry) =>
      options.health.breaker(stage, entry.label, options.breaker)
    );
  }

  /** A fresh per-call view, starting at the first provider. */
  forCall(): CallChain<T> {
    return new CallChain(this, this.#breakers);
  }
}

/** One call's view of a {@linkcode ProviderChain}: remembers which provider serves it now. */
export class CallChain<T> {
  #chain: ProviderChain<T>;
  #breakers: CircuitBreaker[];
  #cursor = 0;

  /** Created by {@linkcode ProviderChain.forCall}. */
  constructor(chain: ProviderChain<T>, breakers: CircuitBreaker[]) {
    this.#chain = chain;
    this.#breakers = breakers;
  }

  /** The provider serving the call now. */
  get current(): T {
    return this.#chain.entries[this.#cursor].provider;
  }

  /** Every provider, for properties that hold for all of them. */
  get providers(): T[] {
    return this.#chain.entries.map((entry) => entry.provider);
  }

  /**
   * The providers to try for one request, from the one serving the call,
   * each at most once, skipping those whose breaker is open. Stop iterating
   * once an attempt succeeds or should not fall back.
   */
  *attempts(): Generator<ChainAttempt<T>> {
    const count = this.#chain.entries.length;
    const start = this.#cursor;
    for (let step = 0; step < count; step++) {
      const index = (start + step) % count;
      if (!this.#breakers[index].tryAcquire()) continue;
      yield this.#attempt(index, step < count - 1);
    }
  }

  /** The attempt at provider `index`, whose breaker let it through. */
  #attempt(index: number, hasNext: boolean): ChainAttempt<T> {
    const breaker = this.#breakers[index];
    const { provider, label } = this.#chain.entries[index];
    // A long-lived session (speech-to-text) may still fail after it
    // succeeded in opening; nothing counts after a failure or release.
    let state: "pending" | "succeeded" | "over" = "pending";
    return {
      provider,
      label,
      hasNext,
      succeeded: () => {
        if (state !== "pending") return;
        state = "succeeded";
        breaker.succeeded();
      },
      failed: (error) => {
        if (state === "over") return false;
        const pending = state === "pending";
        state = "over";
        if (!isFallbackError(error)) {
          if (pending) breaker.released();
          return false;
        }
        this.#fellOver(index, error as ProviderError, hasNext);
        return true;
      },
      released: () => {
        if (state !== "pending") return;
        state = "over";
        breaker.released();
      },
    };
  }

  /**
   * A failure that falls back: counts it on the provider's breaker, logs
   * it, and hands the rest of the call to the next provider.
   */
  #fellOver(index: number, error: ProviderError, hasNext: boolean): void {
    const { entries, health, stage } = this.#chain;
    const count = entries.length;
    const breaker = this.#breakers[index];
    const { label } = entries[index];
    const openedBefore = breaker.timesOpened;
    breaker.failed();
    const { kind, status, message } = error;
    log.warn(
      "{stage} provider {provider} failed ({kind}){next}: {message}",
      {
        stage,
        provider: label,
        kind,
        status,
        message,
        next: count > 1 ? ", the next one takes over" : "",
      },
    );
    if (breaker.timesOpened > openedBefore) {
      log.warn(
        "{stage} provider {provider} kept out for {cooldownMs} ms (circuit open)",
        { stage, provider: label, cooldownMs: breaker.settings.cooldownMs },
      );
    }
    // The rest of the call goes to the next provider.
    if (this.#cursor === index) this.#cursor = (index + 1) % count;
    if (hasNext) health.fellBack(stage, label);
  }
}

/** The error when every provider of a stage is out (breakers open) and none could be tried. */
export function everyProviderOut(
  stage: ProviderStage,
  labels: string[],
): ProviderError {
  return new ProviderError(labels.join(","), {
    kind: "network",
    message: `Every ${stage} provider is out for now (circuit open): ${
      labels.join(", ")
    }`,
  });
}
