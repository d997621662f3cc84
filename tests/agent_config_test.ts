import {
  assertEquals,
  assertFalse,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { ConfigError } from "../src/config.ts";
import {
  DEFAULT_PROMPT,
  describeAgentConfig,
  loadAgentConfig,
} from "../src/bots/agent/config.ts";
import { createProviders } from "../src/bots/agent/providers.ts";

const KEYS = {
  DEEPGRAM_API_KEY: "dg-secret-key",
  LLM_API_KEY: "sk-secret-key",
};

function configError(
  env: Record<string, string>,
  variable: string,
  message: string,
  options = {},
): void {
  const error = assertThrows(
    () => loadAgentConfig(env, options),
    ConfigError,
    message,
  );
  assertStrictEquals(error.variable, variable);
}

Deno.test("agent config defaults to Deepgram, OpenAI and Aura with the built-in prompt", () => {
  const config = loadAgentConfig(KEYS);
  assertEquals(config.prompt, DEFAULT_PROMPT);
  assertEquals(config.language, "en-IN");
  assertEquals(config.stt, {
    provider: "deepgram",
    apiKey: "dg-secret-key",
    model: undefined,
    baseUrl: undefined,
    endpointingMs: 300,
    timeoutMs: 5000,
  });
  assertEquals(config.llm.baseUrl, "https://api.openai.com/v1");
  assertEquals(config.llm.model, "gpt-4o-mini");
  assertEquals(config.tts.provider, "deepgram");
  assertEquals(config.tts.voice, "aura-2-thalia-en");
  assertEquals(config.bargeIn.minSpeechMs, 400);
  assertEquals(config.bargeIn.minWords, 1);
  assertEquals(config.bargeIn.enabled, true);
});

Deno.test("agent config reads every stage's provider, URL and tuning", () => {
  const config = loadAgentConfig({
    SARVAM_API_KEY: "sv-key",
    ELEVENLABS_API_KEY: "el-key",
    STT_PROVIDER: "Sarvam",
    STT_MODEL: "saarika:v2.5",
    STT_BASE_URL: "ws://127.0.0.1:9000/",
    TTS_PROVIDER: "elevenlabs",
    TTS_MODEL: "eleven_turbo_v2_5",
    TTS_BASE_URL: "http://127.0.0.1:9001",
    LLM_BASE_URL: "http://localhost:11434/v1",
    LLM_MODEL: "llama3.2",
    LLM_TEMPERATURE: "0.4",
    LLM_MAX_TOKENS: "200",
    AGENT_PROMPT: "You book tables.",
    AGENT_GREETING: "Namaste!",
    AGENT_LANGUAGE: "hi-IN",
    AGENT_BARGE_IN: "off",
    AGENT_BARGE_IN_IGNORE_WORDS: "Haan, ji ,hmm",
    AGENT_BARGE_IN_PAUSE_MS: "0",
    AGENT_BARGE_IN_RESUME_MS: "900",
    AGENT_TURN_TIMEOUT_MS: "1500",
  });
  assertEquals(config.stt.provider, "sarvam");
  assertEquals(config.stt.apiKey, "sv-key");
  assertEquals(config.stt.baseUrl, "ws://127.0.0.1:9000");
  assertEquals(config.tts.voice, "JBFqnCBsd6RMkjVDRZzb");
  assertEquals(config.tts.apiKey, "el-key");
  assertEquals(config.llm.apiKey, undefined, "a local server needs no key");
  assertEquals(config.llm.temperature, 0.4);
  assertEquals(config.llm.maxTokens, 200);
  assertEquals(config.prompt, "You book tables.");
  assertEquals(config.greeting, "Namaste!");
  assertEquals(config.language, "hi-IN");
  assertEquals(config.spokenForms, "auto");
  assertEquals([config.vad, config.vadRuntime], ["silero", "auto"]);
  assertFalse(config.bargeIn.enabled);
  assertEquals(config.bargeIn.backchannels, ["haan", "ji", "hmm"]);
  assertEquals(config.bargeIn.pauseMs, 0);
  assertEquals(config.bargeIn.resumeMs, 900);
  assertEquals(config.turnTimeoutMs, 1500);
  const providers = createProviders(config);
  assertEquals(
    [providers.stt.name, providers.llm.name, providers.tts.name],
    ["sarvam", "localhost", "elevenlabs"],
  );
  assertEquals(providers.sttSampleRate(24000), 16000);
  assertEquals(providers.sttSampleRate(8000), 8000);
});

Deno.test("agent config reads the prompt from AGENT_PROMPT_FILE", () => {
  const config = loadAgentConfig(
    { ...KEYS, AGENT_PROMPT_FILE: "prompt.txt" },
    { readTextFile: (path) => `  Prompt from ${path}\n` },
  );
  assertEquals(config.prompt, "Prompt from prompt.txt");
});

Deno.test("agent config names the variable of a missing key", () => {
  configError(
    { LLM_API_KEY: "k" },
    "DEEPGRAM_API_KEY",
    "Missing DEEPGRAM_API_KEY: STT_PROVIDER=deepgram needs it",
  );
  configError(
    { ...KEYS, TTS_PROVIDER: "sarvam" },
    "SARVAM_API_KEY",
    "Missing SARVAM_API_KEY: TTS_PROVIDER=sarvam needs it",
  );
  configError(
    { DEEPGRAM_API_KEY: "k" },
    "LLM_API_KEY",
    "Missing LLM_API_KEY",
  );
});

Deno.test("agent config rejects bad values quoting them and what is accepted", () => {
  configError(
    { ...KEYS, STT_PROVIDER: "whisper" },
    "STT_PROVIDER",
    'Invalid STT_PROVIDER "whisper": expected one of deepgram, sarvam',
  );
  configError(
    { ...KEYS, TTS_PROVIDER: "polly" },
    "TTS_PROVIDER",
    'Invalid TTS_PROVIDER "polly": expected one of deepgram, elevenlabs, sarvam',
  );
  configError(
    { ...KEYS, STT_BASE_URL: "https://api.deepgram.com" },
    "STT_BASE_URL",
    'Invalid STT_BASE_URL "https://api.deepgram.com": expected a ws:// or wss:// URL',
  );
  configError(
    { ...KEYS, LLM_BASE_URL: "api.openai.com" },
    "LLM_BASE_URL",
    'Invalid LLM_BASE_URL "api.openai.com"',
  );
  configError(
    { ...KEYS, LLM_TEMPERATURE: "hot" },
    "LLM_TEMPERATURE",
    'Invalid LLM_TEMPERATURE "hot": expected a number from 0 to 2',
  );
  configError(
    { ...KEYS, AGENT_BARGE_IN_MIN_SPEECH_MS: "5" },
    "AGENT_BARGE_IN_MIN_SPEECH_MS",
    'Invalid AGENT_BARGE_IN_MIN_SPEECH_MS "5": expected a whole number from 20 to 10000',
  );
  configError(
    { ...KEYS, AGENT_BARGE_IN: "maybe" },
    "AGENT_BARGE_IN",
    'Invalid AGENT_BARGE_IN "maybe": expected one of on, off',
  );
  configError(
    { ...KEYS, VAD: "neural" },
    "VAD",
    'Invalid VAD "neural": expected one of silero, energy',
  );
  configError(
    { ...KEYS, VAD_RUNTIME: "gpu" },
    "VAD_RUNTIME",
    'Invalid VAD_RUNTIME "gpu": expected one of auto, native, wasm',
  );
  configError(
    { ...KEYS, AGENT_SPOKEN_FORMS: "sometimes" },
    "AGENT_SPOKEN_FORMS",
    'Invalid AGENT_SPOKEN_FORMS "sometimes": expected one of auto, on, off',
  );
  configError(
    { ...KEYS, AGENT_LANGUAGE: "Hindi please" },
    "AGENT_LANGUAGE",
    'Invalid AGENT_LANGUAGE "Hindi please"',
  );
  configError(
    { ...KEYS, AGENT_PROMPT: "a", AGENT_PROMPT_FILE: "b" },
    "AGENT_PROMPT_FILE",
    "not both",
  );
  configError(
    { ...KEYS, AGENT_PROMPT_FILE: "/nowhere/prompt.txt" },
    "AGENT_PROMPT_FILE",
    'Invalid AGENT_PROMPT_FILE "/nowhere/prompt.txt": cannot read it',
  );
  configError(
    { ...KEYS, AGENT_PROMPT_FILE: "empty.txt" },
    "AGENT_PROMPT_FILE",
    "the file is empty",
    { readTextFile: () => " \n" },
  );
});

Deno.test("agent config description names the providers and never the keys", () => {
  const description = JSON.stringify(
    describeAgentConfig(loadAgentConfig(KEYS)),
  );
  assertStringIncludes(description, "deepgram");
  assertStringIncludes(description, "gpt-4o-mini");
  assertFalse(description.includes("secret"));
});
