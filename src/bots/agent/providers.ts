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
 * const providers = createProviders(loadAgentConfig(Deno.env.toObject()));
 * providers.stt.name; // "deepgram"
 * ```
 */
export function createProviders(config: AgentConfig): AgentProviders {
  return {
    stt: createStt(config.stt),
    sttSampleRate: config.stt.provider === "sarvam"
      ? sarvamRate
      : (callRate) => callRate,
    llm: createLlm(config),
    tts: createTts(config.tts),
  };
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

function createLlm(config: AgentConfig): LanguageModel {
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
  });
}

function createTts(tts: TtsConfig): TextToSpeech {
  switch (tts.provider) {
    case "deepgram":
      return new DeepgramTts({
        apiKey: tts.apiKey,
        voice: tts.voice,
        baseUrl: tts.baseUrl,
        timeoutMs: tts.timeoutMs,
      });
    case "elevenlabs":
      return new ElevenLabsTts({
        apiKey: tts.apiKey,
        voice: tts.voice,
        model: tts.model,
        baseUrl: tts.baseUrl,
        timeoutMs: tts.timeoutMs,
      });
    case "sarvam":
      return new SarvamTts({
        apiKey: tts.apiKey,
        voice: tts.voice,
        model: tts.model,
        baseUrl: tts.baseUrl,
        timeoutMs: tts.timeoutMs,
      });
  }
}
