/**
 * The agent's configuration from environment variables into a typed
 * {@linkcode AgentConfig}. Every missing or bad value is a
 * {@linkcode ConfigError} naming the variable and what it accepts, so a
 * misconfigured agent stops at startup, not on the first call.
 *
 * @module
 */

import {
  ConfigError,
  type Env,
  integer,
  type IntegerOptions,
  oneOf,
  type Read,
  reader,
} from "../../env_values.ts";
import { DEFAULT_BACKCHANNELS } from "./barge_in.ts";
import { isTimeZone, unknownPlaceholders } from "./template.ts";
import type { RunnableTool } from "./tool_runner.ts";
import { SPOKEN_FORMS_MODES, type SpokenFormsMode } from "./spoken_forms.ts";
import type { SilenceConfig } from "./silence.ts";
import {
  SPEECH_DETECTOR_KINDS,
  type SpeechDetectorKind,
} from "../../audio/speech_detector.ts";
import {
  SILERO_RUNTIMES,
  type SileroRuntimeChoice,
} from "../../audio/silero_vad.ts";
import type { BreakerSettings } from "../../providers/fallback/circuit_breaker.ts";
import { alignedList, providerList, urlCheck } from "./provider_lists.ts";

/** Speech-to-text vendors `STT_PROVIDER` may name. */
export const STT_PROVIDERS = ["deepgram", "sarvam"] as const;

/** Text-to-speech vendors `TTS_PROVIDER` may name. */
export const TTS_PROVIDERS = ["deepgram", "elevenlabs", "sarvam"] as const;

/** A speech-to-text vendor. */
export type SttProvider = typeof STT_PROVIDERS[number];

/** A text-to-speech vendor. */
export type TtsProvider = typeof TTS_PROVIDERS[number];

/** The default system prompt: a polite, brief phone assistant. */
export const DEFAULT_PROMPT =
  "You are a friendly, efficient phone assistant. Keep every answer short: one to three sentences. Ask one question at a time.";

/** Where `LLM_BASE_URL` points by default. */
export const DEFAULT_LLM_BASE_URL = "https://api.openai.com/v1";

/** Voices used when `TTS_VOICE` is not set. */
export const DEFAULT_VOICES: Record<TtsProvider, string> = {
  deepgram: "aura-2-thalia-en",
  // ElevenLabs' premade "George", available on every account.
  elevenlabs: "JBFqnCBsd6RMkjVDRZzb",
  sarvam: "shubh",
};

/** The environment variable holding each vendor's key. */
export const API_KEY_VARIABLES: Record<SttProvider | TtsProvider, string> = {
  deepgram: "DEEPGRAM_API_KEY",
  elevenlabs: "ELEVENLABS_API_KEY",
  sarvam: "SARVAM_API_KEY",
};

/** Speech-to-text settings. */
export interface SttConfig {
  /** `STT_PROVIDER`. */
  provider: SttProvider;
  /** `DEEPGRAM_API_KEY` or `SARVAM_API_KEY`. Never log it. */
  apiKey: string;
  /** `STT_MODEL`; the adapter's default when absent. */
  model?: string;
  /** `STT_BASE_URL` (`ws://` or `wss://`); the vendor's when absent. */
  baseUrl?: string;
  /** `STT_ENDPOINTING_MS`: silence after which Deepgram ends the caller's turn. */
  endpointingMs: number;
  /** `STT_TIMEOUT_MS`: how long connecting may take. */
  timeoutMs: number;
}

/** Language-model settings. */
export interface LlmConfig {
  /** `LLM_BASE_URL`: any OpenAI-compatible API root. */
  baseUrl: string;
  /** `LLM_API_KEY`; absent for servers without auth. Never log it. */
  apiKey?: string;
  /** `LLM_API_KEY_HEADER`: `authorization` (Bearer) or a header name such as Azure's `api-key`. */
  apiKeyHeader: string;
  /** `LLM_MODEL`. */
  model: string;
  /** `LLM_TEMPERATURE`. */
  temperature?: number;
  /** `LLM_MAX_TOKENS`. */
  maxTokens?: number;
  /** `LLM_TIMEOUT_MS`: longest wait for the first token, and between tokens. */
  timeoutMs: number;
}

/** Text-to-speech settings. */
export interface TtsConfig {
  /** `TTS_PROVIDER`. */
  provider: TtsProvider;
  /** `DEEPGRAM_API_KEY`, `ELEVENLABS_API_KEY` or `SARVAM_API_KEY`. Never log it. */
  apiKey: string;
  /** `TTS_VOICE`. */
  voice: string;
  /** `TTS_MODEL` (ElevenLabs and Sarvam); the adapter's default when absent. */
  model?: string;
  /** `TTS_BASE_URL`; the vendor's when absent. */
  baseUrl?: string;
  /** `TTS_TIMEOUT_MS`: longest wait for the first byte, and between bytes. */
  timeoutMs: number;
}

/** Barge-in settings; see `barge_in.ts`. */
export interface BargeInConfig {
  /** `AGENT_BARGE_IN`: whether the caller may interrupt. */
  enabled: boolean;
  /** `AGENT_BARGE_IN_MIN_SPEECH_MS`: voiced speech that interrupts. */
  minSpeechMs: number;
  /** `AGENT_BARGE_IN_PAUSE_MS`: voiced speech that pauses the bot until it is clear whether it interrupts; 0 never pauses. */
  pauseMs: number;
  /** `AGENT_BARGE_IN_RESUME_MS`: caller audio without voice after which a pause that did not interrupt resumes. */
  resumeMs: number;
  /** `AGENT_BARGE_IN_MIN_WORDS`: transcribed words (not backchannels) that interrupt; 0 disables. */
  minWords: number;
  /** `AGENT_BARGE_IN_IGNORE_WORDS`: words that never interrupt. */
  backchannels: string[];
  /** `AGENT_BARGE_IN_AFTER_MS`: the greeting's first ms, from its first audio, that caller voice and words can neither pause nor cut; 0 off. */
  afterMs: number;
}

/** The call-control tools built into the agent; each can be turned off. */
export interface BuiltinTools {
  /** `end_call`: the model may hang up. */
  endCall: boolean;
  /** `transfer`: the model may hand the call to the flow's next applet. */
  transfer: boolean;
}

/** `AGENT_SETUP_URL`: the webhook asked about each call at `start`. */
export interface SetupConfig {
  /** `AGENT_SETUP_URL`. */
  url: string;
  /** `AGENT_SETUP_TIMEOUT_MS`: longest wait; the greeting never waits longer. */
  timeoutMs: number;
}

/** The whole agent configuration. */
export interface AgentConfig {
  /** The agent's name: its file's name without extension, or `default`. */
  name: string;
  /** `AGENT_TIMEZONE`: the zone of `{{date}}` and `{{time}}`. */
  timezone: string;
  /** The setup webhook, when `AGENT_SETUP_URL` is set. */
  setup?: SetupConfig;
  /** Template variables the prompt and greeting may use, with their defaults (`AGENT_VARIABLES`, agent file `variables:`). */
  variables: Record<string, string>;
  /** Tools besides `end_call` and `transfer` (agent file `tools:`, or code tools). */
  tools: RunnableTool[];
  /** Which built-in tools the model is offered. */
  builtinTools: BuiltinTools;
  /** `AGENT_PROMPT` or the contents of `AGENT_PROMPT_FILE`. */
  prompt: string;
  /** `AGENT_GREETING`: said right after the call starts. */
  greeting: string;
  /** `AGENT_LANGUAGE`: BCP 47, for speech-to-text and text-to-speech. */
  language: string;
  /**
   * `AGENT_LANGUAGES`: the languages callers may switch to, `language`
   * first. With more than one, speech-to-text detects the language and the
   * bot answers in the one the caller spoke. Absent: only `language`.
   */
  languages?: string[];
  /** `TTS_VOICES`: the voice for each language that needs its own (`hi-IN` → `abhilash`); others use `tts.voice`. */
  voices?: Record<string, string>;
  /** `AGENT_SPOKEN_FORMS`: whether amounts, numbers, dates and the like are rewritten for the voice (`auto`: for en-IN and hi-IN). */
  spokenForms: SpokenFormsMode;
  /** `VAD`: the voice-activity detector for barge-in and end of turn. */
  vad: SpeechDetectorKind;
  /** `VAD_RUNTIME`: where Silero runs. */
  vadRuntime: SileroRuntimeChoice;
  /** `AGENT_FALLBACK_TEXT`: said when a provider fails. */
  fallbackText: string;
  /** `AGENT_GOODBYE_TEXT`: said by `end_call` when the model gave no goodbye. */
  goodbyeText: string;
  /** `AGENT_TRANSFER_TEXT`: said by `transfer` when the model gave no line. */
  transferText: string;
  /** `AGENT_TURN_TIMEOUT_MS`: after the voice-activity detector hears the caller stop, how long to wait for the vendor's end of turn. */
  turnTimeoutMs: number;
  /** `AGENT_DTMF_TIMEOUT_MS`: keypad digits are sent to the model after this pause (or on `#`). */
  dtmfTimeoutMs: number;
  /** `AGENT_MAX_HISTORY`: messages kept besides the system prompt. */
  maxHistory: number;
  /** Barge-in. */
  bargeIn: BargeInConfig;
  /** Re-prompts and the hang-up when the caller goes quiet. */
  silence: SilenceConfig;
  /** Speech-to-text. */
  stt: SttConfig;
  /** Language model. */
  llm: LlmConfig;
  /** Text-to-speech. */
  tts: TtsConfig;
  /** The providers after the first of each list (`STT_PROVIDER=deepgram,sarvam`, …), tried in order when the one before fails. */
  fallbacks: ProviderFallbacks;
  /** `PROVIDER_BREAKER_FAILURES` and `PROVIDER_BREAKER_COOLDOWN_MS`: when a failing provider is kept out, across calls. */
  breaker: BreakerSettings;
  /** `AGENT_MAX_FAILED_TURNS`: consecutive turns that got the fallback line before the call ends or is transferred. */
  maxFailedTurns: number;
  /** `AGENT_ON_FAILURE`: what ends a call after `maxFailedTurns` failed turns. */
  onFailure: "hangup" | "transfer";
}

/** The fallback providers of each stage, in order; empty when one is listed. */
export interface ProviderFallbacks {
  /** Speech-to-text vendors after the first. */
  stt: SttConfig[];
  /** Model endpoints after the first. */
  llm: LlmConfig[];
  /** Text-to-speech vendors after the first. */
  tts: TtsConfig[];
}

/** How {@linkcode loadAgentConfig} reads `AGENT_PROMPT_FILE`. */
export interface LoadAgentConfigOptions {
  /** Reads a text file; `Deno.readTextFileSync` by default. */
  readTextFile?: (path: string) => string;
  /** Template variables the prompt and greeting may use (an agent file's `variables:`). */
  variables?: Record<string, string>;
  /**
   * Whether calls run the cascade (speech-to-text, model, text-to-speech),
   * whose keys are then required. A speech-to-speech bot (`BOT=realtime`)
   * uses only the shared settings: prompt, greeting, lines, tools. Default
   * true.
   */
  cascade?: boolean;
}

/**
 * The whole-number variables read here: each one's value when unset and the
 * range it accepts (both ends included).
 */
const WHOLE_NUMBERS = {
  AGENT_TURN_TIMEOUT_MS: { fallback: 1000, range: [100, 10_000] },
  AGENT_DTMF_TIMEOUT_MS: { fallback: 1500, range: [100, 30_000] },
  AGENT_MAX_HISTORY: { fallback: 40, range: [2, 1000] },
  AGENT_MAX_FAILED_TURNS: { fallback: 3, range: [0, 100] },
  AGENT_BARGE_IN_MIN_SPEECH_MS: { fallback: 400, range: [20, 10_000] },
  AGENT_BARGE_IN_PAUSE_MS: { fallback: 100, range: [0, 10_000] },
  AGENT_BARGE_IN_RESUME_MS: { fallback: 600, range: [0, 10_000] },
  AGENT_BARGE_IN_MIN_WORDS: { fallback: 1, range: [0, 100] },
  AGENT_BARGE_IN_AFTER_MS: { fallback: 600, range: [0, 60_000] },
  AGENT_SILENCE_REPROMPT_S: { fallback: 8, range: [0, 3600] },
  AGENT_SILENCE_REPROMPTS: { fallback: 2, range: [0, 10] },
  PROVIDER_BREAKER_FAILURES: { fallback: 3, range: [1, 1000] },
  PROVIDER_BREAKER_COOLDOWN_MS: { fallback: 30_000, range: [100, 3_600_000] },
  STT_ENDPOINTING_MS: { fallback: 300, range: [10, 10_000] },
  STT_TIMEOUT_MS: { fallback: 5000, range: [100, 60_000] },
  TTS_TIMEOUT_MS: { fallback: 5000, range: [100, 60_000] },
  AGENT_SETUP_TIMEOUT_MS: { fallback: 1500, range: [50, 30_000] },
  // Read only when set: unset means the model's own limit.
  LLM_MAX_TOKENS: { fallback: 0, range: [1, 100_000] },
  LLM_TIMEOUT_MS: { fallback: 8000, range: [100, 120_000] },
} as const satisfies Record<string, IntegerOptions>;

/** Variable `name` from {@linkcode WHOLE_NUMBERS}, checked against its range. */
function wholeNumber(read: Read, name: keyof typeof WHOLE_NUMBERS): number {
  return integer(read, name, WHOLE_NUMBERS[name]);
}

/**
 * Builds the agent configuration from `env`.
 *
 * @throws {ConfigError} for the first missing or bad value.
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const config = loadAgentConfig({
 *   DEEPGRAM_API_KEY: "dg-key",
 *   LLM_API_KEY: "sk-key",
 * });
 * assertEquals(config.stt.provider, "deepgram");
 * assertEquals(config.tts.voice, "aura-2-thalia-en");
 * ```
 */
export function loadAgentConfig(
  env: Env,
  options: LoadAgentConfigOptions = {},
): AgentConfig {
  const read = reader(env);
  const cascade = options.cascade ?? true;
  const key = (provider: SttProvider | TtsProvider, chosenBy: string) =>
    cascade
      ? apiKey(read, provider, chosenBy)
      : read(API_KEY_VARIABLES[provider]) ?? "";
  const sttList = sttConfigs(read, key);
  const ttsList = ttsConfigs(read, key);
  const llmList = llm(read, cascade);
  const variables = { ...variableList(read), ...options.variables };
  const promptText = prompt(read, options);
  const greeting = read("AGENT_GREETING") ?? "Hello! How can I help you today?";
  checkTemplate("AGENT_PROMPT", { text: promptText, variables });
  checkTemplate("AGENT_GREETING", { text: greeting, variables });
  return {
    name: "default",
    timezone: timezone(read),
    setup: setup(read),
    variables,
    tools: [],
    builtinTools: { endCall: true, transfer: true },
    prompt: promptText,
    greeting,
    language: language(read),
    ...languageSwitching(read, language(read)),
    spokenForms: oneOf(read, "AGENT_SPOKEN_FORMS", {
      accepted: SPOKEN_FORMS_MODES,
      fallback: "auto",
    }),
    ...speechDetection(read),
    fallbackText: read("AGENT_FALLBACK_TEXT") ??
      "Sorry, I'm having trouble right now. Could you please say that again?",
    goodbyeText: read("AGENT_GOODBYE_TEXT") ??
      "Thank you for calling. Goodbye!",
    transferText: read("AGENT_TRANSFER_TEXT") ??
      "Please hold while I transfer your call.",
    turnTimeoutMs: wholeNumber(read, "AGENT_TURN_TIMEOUT_MS"),
    dtmfTimeoutMs: wholeNumber(read, "AGENT_DTMF_TIMEOUT_MS"),
    maxHistory: wholeNumber(read, "AGENT_MAX_HISTORY"),
    bargeIn: bargeInSettings(read),
    silence: silenceSettings(read),
    stt: sttList[0],
    llm: llmList[0],
    tts: ttsList[0],
    fallbacks: {
      stt: sttList.slice(1),
      llm: llmList.slice(1),
      tts: ttsList.slice(1),
    },
    breaker: breakerSettings(read),
    maxFailedTurns: wholeNumber(read, "AGENT_MAX_FAILED_TURNS"),
    onFailure: oneOf(
      read,
      "AGENT_ON_FAILURE",
      { accepted: ["hangup", "transfer"], fallback: "hangup" },
    ),
  };
}

/** The speech detector the agent uses, and the runtime Silero runs on. */
function speechDetection(read: Read): Pick<AgentConfig, "vad" | "vadRuntime"> {
  return {
    vad: oneOf(read, "VAD", {
      accepted: SPEECH_DETECTOR_KINDS,
      fallback: "silero",
    }),
    vadRuntime: oneOf(read, "VAD_RUNTIME", {
      accepted: SILERO_RUNTIMES,
      fallback: "auto",
    }),
  };
}

/** When and how the caller may talk over the agent. */
function bargeInSettings(read: Read): AgentConfig["bargeIn"] {
  return {
    enabled: oneOf(read, "AGENT_BARGE_IN", {
      accepted: ["on", "off"],
      fallback: "on",
    }) === "on",
    minSpeechMs: wholeNumber(read, "AGENT_BARGE_IN_MIN_SPEECH_MS"),
    pauseMs: wholeNumber(read, "AGENT_BARGE_IN_PAUSE_MS"),
    resumeMs: wholeNumber(read, "AGENT_BARGE_IN_RESUME_MS"),
    minWords: wholeNumber(read, "AGENT_BARGE_IN_MIN_WORDS"),
    backchannels: wordList(read("AGENT_BARGE_IN_IGNORE_WORDS")) ??
      [...DEFAULT_BACKCHANNELS],
    afterMs: wholeNumber(read, "AGENT_BARGE_IN_AFTER_MS"),
  };
}

/** What the agent does when the caller says nothing. */
function silenceSettings(read: Read): AgentConfig["silence"] {
  return {
    repromptS: wholeNumber(read, "AGENT_SILENCE_REPROMPT_S"),
    reprompts: wholeNumber(read, "AGENT_SILENCE_REPROMPTS"),
    repromptText: read("AGENT_REPROMPT_TEXT"),
    goodbyeText: read("AGENT_SILENCE_GOODBYE_TEXT"),
  };
}

/** When a failing provider is set aside, and for how long. */
function breakerSettings(read: Read): AgentConfig["breaker"] {
  return {
    failures: wholeNumber(read, "PROVIDER_BREAKER_FAILURES"),
    cooldownMs: wholeNumber(read, "PROVIDER_BREAKER_COOLDOWN_MS"),
  };
}

type KeyOf = (provider: SttProvider | TtsProvider, chosenBy: string) => string;

function sttConfigs(read: Read, key: KeyOf): SttConfig[] {
  const providers = providerList(read, "STT_PROVIDER", {
    accepted: STT_PROVIDERS,
    fallback: "deepgram",
  });
  const alignedWith = `STT_PROVIDER (${providers.join(",")})`;
  const count = providers.length;
  const models = alignedList(read, "STT_MODEL", { count, alignedWith });
  const urls = alignedList(read, "STT_BASE_URL", {
    count,
    alignedWith,
    check: urlCheck(["ws:", "wss:"]),
  });
  const endpointingMs = wholeNumber(read, "STT_ENDPOINTING_MS");
  const timeoutMs = wholeNumber(read, "STT_TIMEOUT_MS");
  return providers.map((provider, index) => ({
    provider,
    apiKey: key(provider, "STT_PROVIDER"),
    model: models[index],
    baseUrl: urls[index]?.replace(/\/+$/, ""),
    endpointingMs,
    timeoutMs,
  }));
}

function ttsConfigs(read: Read, key: KeyOf): TtsConfig[] {
  const providers = providerList(read, "TTS_PROVIDER", {
    accepted: TTS_PROVIDERS,
    fallback: "deepgram",
  });
  const alignedWith = `TTS_PROVIDER (${providers.join(",")})`;
  const count = providers.length;
  const voices = alignedList(read, "TTS_VOICE", { count, alignedWith });
  const models = alignedList(read, "TTS_MODEL", { count, alignedWith });
  const urls = alignedList(read, "TTS_BASE_URL", {
    count,
    alignedWith,
    check: urlCheck(["http:", "https:"]),
  });
  const timeoutMs = wholeNumber(read, "TTS_TIMEOUT_MS");
  return providers.map((provider, index) => ({
    provider,
    apiKey: key(provider, "TTS_PROVIDER"),
    voice: voices[index] ?? DEFAULT_VOICES[provider],
    model: models[index],
    baseUrl: urls[index]?.replace(/\/+$/, ""),
    timeoutMs,
  }));
}

/**
 * What the agent runs on, without secrets: safe to log at startup.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const config = loadAgentConfig({
 *   DEEPGRAM_API_KEY: "dg-key",
 *   LLM_API_KEY: "sk-key",
 *   STT_MODEL: "nova-3",
 * });
 * const described = describeAgentConfig(config);
 * assertEquals(described.stt, "deepgram nova-3");
 * assertEquals(described.llm, "gpt-4o-mini at https://api.openai.com/v1");
 * assertEquals(JSON.stringify(described).includes("sk-key"), false);
 * ```
 */
export function describeAgentConfig(
  config: AgentConfig,
): Record<string, string> {
  const { stt, llm, tts, bargeIn } = config;
  const fallbacks = config.fallbacks ?? { stt: [], llm: [], tts: [] };
  const then = <T>(first: T, rest: T[], describe: (entry: T) => string) =>
    [first, ...rest].map(describe).join(", then ");
  return {
    language: config.language,
    stt: then(
      stt,
      fallbacks.stt,
      (entry) => `${entry.provider} ${entry.model ?? "default model"}`,
    ),
    llm: then(llm, fallbacks.llm, (entry) => {
      const base = new URL(entry.baseUrl);
      return `${entry.model} at ${base.origin}${base.pathname}`;
    }),
    tts: then(
      tts,
      fallbacks.tts,
      (entry) => `${entry.provider} ${entry.voice}`,
    ),
    bargeIn: bargeIn.enabled
      ? `on: pause at ${bargeIn.pauseMs} ms, interrupt at ${bargeIn.minSpeechMs} ms or ${bargeIn.minWords} word(s)`
      : "off",
  };
}

function prompt(read: Read, options: LoadAgentConfigOptions): string {
  const text = read("AGENT_PROMPT");
  const file = read("AGENT_PROMPT_FILE");
  if (text !== undefined && file !== undefined) {
    throw new ConfigError(
      "AGENT_PROMPT_FILE",
      "Invalid AGENT_PROMPT_FILE: set either AGENT_PROMPT or AGENT_PROMPT_FILE, not both",
    );
  }
  if (file === undefined) return text ?? DEFAULT_PROMPT;
  let contents: string;
  try {
    contents = (options.readTextFile ?? Deno.readTextFileSync)(file);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(
      "AGENT_PROMPT_FILE",
      `Invalid AGENT_PROMPT_FILE "${file}": cannot read it (${reason})`,
    );
  }
  if (contents.trim() === "") {
    throw new ConfigError(
      "AGENT_PROMPT_FILE",
      `Invalid AGENT_PROMPT_FILE "${file}": the file is empty`,
    );
  }
  return contents.trim();
}

/** `AGENT_VARIABLES`: `name` or `name=default`, comma-separated. */
function variableList(read: Read): Record<string, string> {
  const text = read("AGENT_VARIABLES");
  if (text === undefined) return {};
  const variables: Record<string, string> = {};
  for (
    const item of text.split(",").map((part) => part.trim()).filter(Boolean)
  ) {
    const [name, ...rest] = item.split("=");
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name.trim())) {
      throw new ConfigError(
        "AGENT_VARIABLES",
        `Invalid AGENT_VARIABLES "${text}": "${name.trim()}" is not a variable name; expected names or name=default, comma-separated, such as name,plan=basic`,
      );
    }
    variables[name.trim()] = rest.join("=").trim();
  }
  return variables;
}

function checkTemplate(
  variable: string,
  { text, variables }: { text: string; variables: Record<string, string> },
): void {
  const unknown = unknownPlaceholders(text, Object.keys(variables));
  if (unknown.length === 0) return;
  throw new ConfigError(
    variable,
    `Invalid ${variable}: unknown placeholder ${
      unknown.map((name) => `"{{${name}}}"`).join(", ")
    }: expected {{caller}}, {{called}}, {{date}}, {{time}}, {{custom.KEY}} or a declared variable${
      Object.keys(variables).length > 0
        ? ` (${Object.keys(variables).join(", ")})`
        : ""
    }`,
  );
}

function timezone(read: Read): string {
  const text = read("AGENT_TIMEZONE") ?? "Asia/Kolkata";
  if (!isTimeZone(text)) {
    throw new ConfigError(
      "AGENT_TIMEZONE",
      `Invalid AGENT_TIMEZONE "${text}": expected an IANA time zone such as Asia/Kolkata or UTC`,
    );
  }
  return text;
}

function setup(read: Read): SetupConfig | undefined {
  const setupUrl = url(read, "AGENT_SETUP_URL", ["http:", "https:"]);
  const timeoutMs = wholeNumber(read, "AGENT_SETUP_TIMEOUT_MS");
  return setupUrl === undefined ? undefined : { url: setupUrl, timeoutMs };
}

function language(read: Read): string {
  const text = read("AGENT_LANGUAGE");
  if (text === undefined) return "en-IN";
  if (!/^(?:[a-zA-Z]{2,3}(?:-[a-zA-Z0-9]{2,8})*|multi)$/.test(text)) {
    throw new ConfigError(
      "AGENT_LANGUAGE",
      `Invalid AGENT_LANGUAGE "${text}": expected a BCP 47 tag such as en-IN or hi-IN`,
    );
  }
  return text;
}

const LANGUAGE_TAG = /^[a-zA-Z]{2,3}(?:-[a-zA-Z0-9]{2,8})*$/;

/** `AGENT_LANGUAGES` and `TTS_VOICES`. */
function languageSwitching(
  read: Read,
  main: string,
): { languages?: string[]; voices?: Record<string, string> } {
  const list = read("AGENT_LANGUAGES");
  const languages = list === undefined ? [main] : parseLanguages(list, main);
  const voices = parseVoices(read("TTS_VOICES"), languages);
  return {
    ...(languages.length > 1 ? { languages } : {}),
    ...(voices ? { voices } : {}),
  };
}

/**
 * Parses `AGENT_LANGUAGES`: BCP 47 tags, comma-separated, the agent's own
 * language first whether listed there or not.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(parseLanguages("hi-IN, en-IN", "en-IN"), ["en-IN", "hi-IN"]);
 * ```
 */
export function parseLanguages(text: string, main: string): string[] {
  const tags = text.split(",").map((tag) => tag.trim()).filter(Boolean);
  for (const tag of tags) {
    if (!LANGUAGE_TAG.test(tag)) {
      throw new ConfigError(
        "AGENT_LANGUAGES",
        `Invalid AGENT_LANGUAGES entry "${tag}": expected BCP 47 tags such as en-IN,hi-IN`,
      );
    }
  }
  if (main === "multi") {
    throw new ConfigError(
      "AGENT_LANGUAGES",
      'AGENT_LANGUAGES needs AGENT_LANGUAGE to be one language, not "multi": it is the one the call starts in',
    );
  }
  const languages = [main];
  for (const tag of tags) {
    if (!languages.some((known) => sameTag(known, tag))) languages.push(tag);
  }
  return languages;
}

/**
 * Parses `TTS_VOICES`: `language:voice` pairs, comma-separated, each
 * language one of `languages`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(
 *   parseVoices("en-IN:anushka, hi-IN:abhilash", ["en-IN", "hi-IN"]),
 *   { "en-IN": "anushka", "hi-IN": "abhilash" },
 * );
 * ```
 */
export function parseVoices(
  text: string | undefined,
  languages: string[],
): Record<string, string> | undefined {
  if (text === undefined || text.trim() === "") return undefined;
  const voices: Record<string, string> = {};
  for (const pair of text.split(",").map((part) => part.trim())) {
    if (pair === "") continue;
    const colon = pair.indexOf(":");
    const tag = pair.slice(0, Math.max(0, colon)).trim();
    const voice = pair.slice(colon + 1).trim();
    const known = languages.find((language) => sameTag(language, tag));
    if (colon < 1 || voice === "" || known === undefined) {
      throw new ConfigError(
        "TTS_VOICES",
        `Invalid TTS_VOICES entry "${pair}": expected language:voice with a language of AGENT_LANGUAGES (${
          languages.join(", ")
        }), e.g. hi-IN:abhilash`,
      );
    }
    voices[known] = voice;
  }
  return voices;
}

function sameTag(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** The model endpoints: as many as the longest of `LLM_BASE_URL`, `LLM_MODEL` and `LLM_API_KEY`. */
function llm(read: Read, keyRequired: boolean): LlmConfig[] {
  const count = Math.max(
    1,
    ...["LLM_BASE_URL", "LLM_MODEL", "LLM_API_KEY"].map((name) =>
      read(name)?.split(",").length ?? 1
    ),
  );
  const alignedWith = "the longest of LLM_BASE_URL, LLM_MODEL and LLM_API_KEY";
  const baseUrls = alignedList(read, "LLM_BASE_URL", {
    count,
    alignedWith,
    check: urlCheck(["http:", "https:"]),
  });
  const apiKeys = alignedList(read, "LLM_API_KEY", { count, alignedWith });
  const models = alignedList(read, "LLM_MODEL", { count, alignedWith });
  const header = (read("LLM_API_KEY_HEADER") ?? "authorization").toLowerCase();
  if (!/^[a-z0-9-]+$/.test(header)) {
    throw new ConfigError(
      "LLM_API_KEY_HEADER",
      `Invalid LLM_API_KEY_HEADER "${header}": expected a header name such as authorization or api-key`,
    );
  }
  const temperatureText = read("LLM_TEMPERATURE");
  let temperature: number | undefined;
  if (temperatureText !== undefined) {
    temperature = Number(temperatureText);
    if (
      !/^\d+(\.\d+)?$/.test(temperatureText) || temperature < 0 ||
      temperature > 2
    ) {
      throw new ConfigError(
        "LLM_TEMPERATURE",
        `Invalid LLM_TEMPERATURE "${temperatureText}": expected a number from 0 to 2`,
      );
    }
  }
  const maxTokens = read("LLM_MAX_TOKENS") === undefined
    ? undefined
    : wholeNumber(read, "LLM_MAX_TOKENS");
  const timeoutMs = wholeNumber(read, "LLM_TIMEOUT_MS");
  return baseUrls.map((baseUrl, index) => {
    const apiKey = apiKeys[index];
    if (keyRequired && baseUrl === undefined && apiKey === undefined) {
      const where = count === 1 ? "" : ` (endpoint ${index + 1})`;
      throw new ConfigError(
        "LLM_API_KEY",
        `Missing LLM_API_KEY${where}: the default LLM_BASE_URL (${DEFAULT_LLM_BASE_URL}) needs it; set LLM_BASE_URL for a server without keys`,
      );
    }
    return {
      baseUrl: baseUrl?.replace(/\/+$/, "") ?? DEFAULT_LLM_BASE_URL,
      apiKey,
      apiKeyHeader: header,
      model: models[index] ?? "gpt-4o-mini",
      temperature,
      maxTokens,
      timeoutMs,
    };
  });
}

function apiKey(
  read: Read,
  provider: SttProvider | TtsProvider,
  chosenBy: string,
): string {
  const variable = API_KEY_VARIABLES[provider];
  const key = read(variable);
  if (key === undefined) {
    throw new ConfigError(
      variable,
      `Missing ${variable}: ${chosenBy}=${provider} needs it`,
    );
  }
  return key;
}

function wordList(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  return text.split(",").map((word) => word.trim().toLowerCase())
    .filter(Boolean);
}

function url(
  read: Read,
  name: string,
  protocols: string[],
): string | undefined {
  const text = read(name);
  if (text === undefined) return undefined;
  const parsed = URL.parse(text);
  if (!parsed || !protocols.includes(parsed.protocol)) {
    const expected = protocols.map((protocol) => `${protocol}//`).join(" or ");
    throw new ConfigError(
      name,
      `Invalid ${name} "${text}": expected a ${expected} URL`,
    );
  }
  return text.replace(/\/+$/, "");
}
