/**
 * The circuit breakers of every provider endpoint and the count of
 * fallbacks, shared by all calls of a server so a failing vendor is kept out
 * across calls, and read by `/metrics`.
 *
 * @module
 */

import {
  type BreakerSettings,
  type BreakerState,
  CircuitBreaker,
  DEFAULT_BREAKER_SETTINGS,
} from "./circuit_breaker.ts";

/** The pipeline stage a provider serves. */
export type ProviderStage = "stt" | "llm" | "tts";

/** One endpoint's health, as `/metrics` shows it. */
export interface ProviderHealthEntry {
  /** Its stage. */
  stage: ProviderStage;
  /** Its label: the vendor's name (the host for a model endpoint). */
  provider: string;
  /** The breaker's state now. */
  state: BreakerState;
  /** How many times the breaker opened. */
  opened: number;
  /** How many times this endpoint failed and the next one in the list was tried. */
  fallbacks: number;
}

interface Endpoint {
  stage: ProviderStage;
  provider: string;
  breaker: CircuitBreaker;
  fallbacks: number;
}

/**
 * Breakers by endpoint, created on first use.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * let now = 0;
 * const health = new ProviderHealth({ now: () => now });
 * const breaker = health.breaker("tts", "deepgram", { failures: 1, cooldownMs: 30_000 });
 * assertEquals(breaker.tryAcquire(), true);
 * assertEquals(health.entries()[0].state, "closed");
 * breaker.failed();
 * assertEquals(health.entries()[0].state, "open");
 * now = 30_000;
 * assertEquals(breaker.tryAcquire(), true); // the probe after the cool-down
 * ```
 */
export class ProviderHealth {
  #clock: { now(): number };
  #endpoints = new Map<string, Endpoint>();

  /** Creates an empty board on `clock`. */
  constructor(clock: { now(): number }) {
    this.#clock = clock;
  }

  /** The breaker of `provider` at `stage`; the settings apply when it is created. */
  breaker(
    stage: ProviderStage,
    provider: string,
    settings: BreakerSettings = DEFAULT_BREAKER_SETTINGS,
  ): CircuitBreaker {
    return this.#endpoint(stage, provider, settings).breaker;
  }

  /** Counts that `provider` failed and the next one was tried. */
  fellBack(stage: ProviderStage, provider: string): void {
    this.#endpoint(stage, provider).fallbacks++;
  }

  /** Every endpoint seen so far. */
  entries(): ProviderHealthEntry[] {
    return [...this.#endpoints.values()].map((endpoint) => ({
      stage: endpoint.stage,
      provider: endpoint.provider,
      state: endpoint.breaker.state,
      opened: endpoint.breaker.timesOpened,
      fallbacks: endpoint.fallbacks,
    }));
  }

  #endpoint(
    stage: ProviderStage,
    provider: string,
    settings: BreakerSettings = DEFAULT_BREAKER_SETTINGS,
  ): Endpoint {
    const key = `${stage}\u0000${provider}`;
    let endpoint = this.#endpoints.get(key);
    if (!endpoint) {
      endpoint = {
        stage,
        provider,
        breaker: new CircuitBreaker(settings, this.#clock),
        fallbacks: 0,
      };
      this.#endpoints.set(key, endpoint);
    }
    return endpoint;
  }
}
