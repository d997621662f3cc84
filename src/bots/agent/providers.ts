/**
 * Builds the speech-to-text, language-model and text-to-speech adapters an
 * {@linkcode AgentConfig} names. Makes no request.
 *
 * @module
 */

import type { LanguageModel } from "../../providers/llm/language_model.ts";
import { OpenAiCompatibleModel } from "../../providers/llm/openai_compatible.ts";
import { DeepgramStt } from "../../providers/stt/deepgram.ts";
import { SarvamStt } from "../../providers/stt/sarvam.ts";
import type { SpeechToText } from "../../providers/stt/speech_to_text.ts";
import { DeepgramTts } from "../../providers/tts/deepgram.ts";
import { ElevenLabsTts } from "../../providers/tts/elevenlabs.ts";
import { SarvamTts } from "../../providers/tts/sarvam.ts";
import type { TextToSpeech } from "../../providers/tts/text_to_speech.ts";
import type { AgentConfig, SttConfig, TtsConfig } from "./config.ts";
import { type Clock, systemClock } from "../../call/clock.ts";
import { FallbackLlm } from "../../providers/fallback/fallback_llm.ts";
import { FallbackStt } from "../../providers/fallback/fallback_stt.ts";
import { FallbackTts } from "../../providers/fallback/fallback_tts.ts";
import {
  type ChainEntry,
  ProviderChain,
} from "../../providers/fallback/provider_chain.ts";
import { ProviderHealth } from "../../providers/fallback/provider_health.ts";

/** The three stages of an agent, plus what the speech-to-text vendor can take. */
export interface AgentProviders {
  /** Speech-to-text. */
  stt: SpeechToText;
  /** The rate to send the STT vendor for a call at `callRate` (the caller's audio is resampled when they differ). */
  sttSampleRate(callRate: number): number;
  /** Language model. */
  llm: LanguageModel;
  /** Text-to-speech. */
  tts: TextToSpeech;
  /**
   * Fresh adapters for one call, when the stages list fallback providers:
   * once a provider fails, the next serves the rest of that call only.
   */
  forCall?(): AgentProviders;
}

/** Options of {@linkcode createProviders}. */
export interface CreateProvidersOptions {
  /** The circuit breakers shared by every call; a fresh board on the system clock by default. */
  health?: ProviderHealth;
  /** The clock of the model's and the voice's timeouts; the system clock by default. */
  clock?: Clock;
}

/** Sarvam's streaming endpoint takes 8 and 16 kHz only. */
function sarvamRate(callRate: number): number {
  return callRate <= 8000 ? 8000 : 16000;
}

/**
 * Creates the adapters for `config`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { loadAgentConfig } from "./config.ts";
 * const config = loadAgentConfig({
 *   DEEPGRAM_API_KEY: "dg-key",
 *   LLM_API_KEY: "sk-key",
 * });
 * // Nothing connects yet: sessions open per call.
 * const providers = createProviders(config);
 * assertEquals(providers.stt.name, "deepgram");
 * ```
 */
export function createProviders(
  config: AgentConfig,
  options: CreateProvidersOptions = {},
): AgentProviders {
  const clock = options.clock ?? systemClock;
  const fallbacks = config.fallbacks ?? { stt: [], llm: [], tts: [] };
  const sttList = [config.stt, ...fallbacks.stt];
  const llmList = [config, ...fallbacks.llm.map((llm) => ({ ...config, llm }))];
  const ttsList = [config.tts, ...fallbacks.tts];
  // Sarvam takes 8 and 16 kHz only: every vendor of a list gets what all take.
  const sttSampleRate = sttList.some((stt) => stt.provider === "sarvam")
    ? sarvamRate
    : (callRate: number) => callRate;
  if (sttList.length + llmList.length + ttsList.length === 3) {
    return {
      stt: createStt(config.stt),
      sttSampleRate,
      llm: createLlm(config, clock),
      tts: createTts(config.tts, clock),
    };
  }
  const health = options.health ?? new ProviderHealth(clock);
  const chainOptions = { health, breaker: config.breaker };
  const stt = new ProviderChain(
    "stt",
    labelled(
      sttList.map(createStt),
      sttList.map((entry) => `${entry.provider}@${hostOf(entry.baseUrl)}`),
    ),
    chainOptions,
  );
  const llm = new ProviderChain(
    "llm",
    labelled(
      llmList.map((entry) => createLlm(entry, clock)),
      llmList.map(({ llm }) => `${llm.model}@${new URL(llm.baseUrl).host}`),
    ),
    chainOptions,
  );
  const tts = new ProviderChain(
    "tts",
    labelled(
      ttsList.map((entry) => createTts(entry, clock)),
      ttsList.map((entry) => `${entry.provider}@${hostOf(entry.baseUrl)}`),
    ),
    chainOptions,
  );
  const forCall = (): AgentProviders => ({
    stt: new FallbackStt(stt.forCall()),
    sttSampleRate,
    llm: new FallbackLlm(llm.forCall()),
    tts: new FallbackTts(tts.forCall()),
    forCall,
  });
  return forCall();
}

function hostOf(baseUrl: string | undefined): string {
  return baseUrl === undefined ? "default" : new URL(baseUrl).host;
}

/**
 * Labels for breakers and metrics: the vendor's name (a model endpoint's
 * host), or the longer `precise` label when a name appears twice in the list.
 */
function labelled<T extends { name: string }>(
  providers: T[],
  precise: string[],
): ChainEntry<T>[] {
  return providers.map((provider, index) => {
    const twice = providers.filter((other) => other.name === provider.name)
      .length > 1;
    return {
      provider,
      label: twice ? precise[index] : provider.name,
    };
  });
}

function createStt(stt: SttConfig): SpeechToText {
  switch (stt.provider) {
    case "deepgram":
      return new DeepgramStt({
        apiKey: stt.apiKey,
        model: stt.model,
        baseUrl: stt.baseUrl,
        endpointingMs: stt.endpointingMs,
        connectTimeoutMs: stt.timeoutMs,
      });
    case "sarvam":
      return new SarvamStt({
        apiKey: stt.apiKey,
        model: stt.model,
        baseUrl: stt.baseUrl,
        connectTimeoutMs: stt.timeoutMs,
      });
  }
}

function createLlm(config: AgentConfig, clock: Clock): LanguageModel {
  const { llm } = config;
  const bearer = llm.apiKeyHeader === "authorization";
  return new OpenAiCompatibleModel({
    baseUrl: llm.baseUrl,
    apiKey: bearer ? llm.apiKey : undefined,
    headers: !bearer && llm.apiKey !== undefined
      ? { [llm.apiKeyHeader]: llm.apiKey }
      : undefined,
    model: llm.model,
    temperature: llm.temperature,
    maxTokens: llm.maxTokens,
    timeoutMs: llm.timeoutMs,
    name: new URL(llm.baseUrl).hostname,
    clock,
  });
}

function createTts(tts: TtsConfig, clock: Clock): TextToSpeech {
  switch (tts.provider) {
    case "deepgram":
      return new DeepgramTts({
        apiKey: tts.apiKey,
        voice: tts.voice,
        baseUrl: tts.baseUrl,
        timeoutMs: tts.timeoutMs,
        clock,
      });
    case "elevenlabs":
      return new ElevenLabsTts({
        apiKey: tts.apiKey,
        voice: tts.voice,
        model: tts.model,
        baseUrl: tts.baseUrl,
        timeoutMs: tts.timeoutMs,
        clock,
      });
    case "sarvam":
      return new SarvamTts({
        apiKey: tts.apiKey,
        voice: tts.voice,
        model: tts.model,
        baseUrl: tts.baseUrl,
        timeoutMs: tts.timeoutMs,
        clock,
      });
  }
}
