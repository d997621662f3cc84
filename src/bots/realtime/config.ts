/**
 * `BOT=realtime` settings from the environment: which speech-to-speech API,
 * its key, model, voice and turn detection, and what happens when it fails.
 * What the bot says and its tools are the agent's (`AGENT_*` or
 * `AGENT_FILE`), as for the cascaded agent.
 *
 * @module
 */

import {
  ConfigError,
  type Env,
  integer,
  oneOf,
  type Read,
  reader,
} from "../../env_values.ts";
import {
  GEMINI_LIVE_URL,
  type GeminiLiveConfig,
} from "../../providers/realtime/gemini_live.ts";
import {
  type NarrowbandFormat,
  OPENAI_REALTIME_URL,
  type OpenAiRealtimeConfig,
  type TurnDetection,
} from "../../providers/realtime/openai_realtime.ts";

/** Speech-to-speech APIs `REALTIME_PROVIDER` may name. */
export const REALTIME_PROVIDERS = ["openai", "gemini"] as const;

/** A speech-to-speech API. */
export type RealtimeProvider = typeof REALTIME_PROVIDERS[number];

/** Default model of each API: OpenAI's GA model, Gemini's native-audio Live model. */
export const DEFAULT_REALTIME_MODELS: Record<RealtimeProvider, string> = {
  openai: "gpt-realtime",
  gemini: "gemini-2.5-flash-native-audio-preview-12-2025",
};

/** Default voice of each API. */
export const DEFAULT_REALTIME_VOICES: Record<RealtimeProvider, string> = {
  openai: "marin",
  gemini: "Puck",
};

/** Everything `BOT=realtime` needs besides the agent. */
export type RealtimeConfig =
  & {
    /** After a failure and the fallback line: end the call, or transfer it. */
    onFailure: "hangup" | "transfer";
  }
  & (
    | { provider: "openai"; openai: OpenAiRealtimeConfig }
    | { provider: "gemini"; gemini: GeminiLiveConfig }
  );

/**
 * Reads the realtime bot's settings.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const config = loadRealtimeConfig({ REALTIME_PROVIDER: "gemini", GEMINI_API_KEY: "k" });
 * assertEquals(config.provider, "gemini");
 * ```
 *
 * @throws {ConfigError} naming the variable for a missing key or a bad value.
 */
export function loadRealtimeConfig(env: Env): RealtimeConfig {
  const read = reader(env);
  const provider = oneOf(
    read,
    "REALTIME_PROVIDER",
    { accepted: REALTIME_PROVIDERS, fallback: "openai" },
  );
  const common = {
    baseUrl: wsUrl(read, provider),
    model: read("REALTIME_MODEL") ?? DEFAULT_REALTIME_MODELS[provider],
    voice: read("REALTIME_VOICE") ?? DEFAULT_REALTIME_VOICES[provider],
    connectTimeoutMs: integer(read, "REALTIME_TIMEOUT_MS", {
      fallback: 5000,
      range: [100, 60_000],
    }),
  };
  const onFailure = oneOf(
    read,
    "REALTIME_ON_FAILURE",
    { accepted: ["hangup", "transfer"], fallback: "hangup" },
  );
  if (provider === "gemini") {
    return {
      provider,
      onFailure,
      gemini: {
        ...common,
        apiKey: apiKey(read, "GEMINI_API_KEY"),
      },
    };
  }
  return {
    provider,
    onFailure,
    openai: {
      ...common,
      apiKey: apiKey(read, "OPENAI_API_KEY"),
      apiKeyHeader: read("REALTIME_API_KEY_HEADER") ?? "authorization",
      turnDetection: oneOf<TurnDetection>(
        read,
        "REALTIME_TURN_DETECTION",
        { accepted: ["server_vad", "semantic_vad"], fallback: "server_vad" },
      ),
      transcriptionModel: read("REALTIME_TRANSCRIPTION_MODEL") ??
        "gpt-4o-mini-transcribe",
      narrowbandFormat: oneOf<NarrowbandFormat>(
        read,
        "REALTIME_8K_FORMAT",
        { accepted: ["pcmu", "pcm"], fallback: "pcmu" },
      ),
    },
  };
}

function apiKey(read: Read, name: string): string {
  const key = read(name);
  if (key === undefined) {
    throw new ConfigError(
      name,
      `Missing ${name}: BOT=realtime with this REALTIME_PROVIDER needs it`,
    );
  }
  return key;
}

function wsUrl(read: Read, provider: RealtimeProvider): string {
  const text = read("REALTIME_BASE_URL");
  if (text === undefined) {
    return provider === "openai" ? OPENAI_REALTIME_URL : GEMINI_LIVE_URL;
  }
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    // Reported below.
  }
  if (!url || (url.protocol !== "ws:" && url.protocol !== "wss:")) {
    throw new ConfigError(
      "REALTIME_BASE_URL",
      `Invalid REALTIME_BASE_URL "${text}": expected a ws:// or wss:// URL`,
    );
  }
  return text;
}
