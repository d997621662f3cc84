/**
 * Provider lists: per-call fallback to the next vendor, circuit breakers
 * shared across calls, the bundled lines when every voice is down, and the
 * end of a call after too many failed turns. Against the fake vendors.
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { concat } from "@std/bytes";
import { createAgentBotFactory } from "../src/bots/agent/mod.ts";
import type { AgentBot } from "../src/bots/agent/agent.ts";
import { type AgentConfig, loadAgentConfig } from "../src/bots/agent/config.ts";
import {
  type AgentProviders,
  createProviders,
} from "../src/bots/agent/providers.ts";
import { RECORDED_LINES } from "../src/bots/agent/recorded_lines.ts";
import { ConfigError } from "../src/env_values.ts";
import { AgentFileError, loadAgentFile } from "../src/bots/agent/agent_file.ts";
import { CircuitBreaker } from "../src/providers/fallback/circuit_breaker.ts";
import { ProviderHealth } from "../src/providers/fallback/provider_health.ts";
import { isFallbackError } from "../src/providers/fallback/provider_chain.ts";
import { ProviderError } from "../src/providers/provider_error.ts";
import { ExovoiceMetrics } from "../src/metrics/exovoice_metrics.ts";
import { serve } from "../src/serve.ts";
import { simulateCall } from "../tools/simulator.ts";
import { padToAlignment } from "../src/audio/pcm.ts";
import type { Clock } from "../src/call/clock.ts";
import {
  FAKE_KEY,
  feed,
  fixturePcm,
  startMemoryCall,
  until,
} from "./fakes/agent_call.ts";
import { startBotServer } from "./fakes/bot_server.ts";
import { FakeClock } from "./fakes/clock.ts";
import {
  errorReply,
  type FakeOpenAiServer,
  type FakeReplySource,
  startFakeOpenAiServer,
  textReply,
} from "./fakes/openai_server.ts";
import {
  type FakeSttScript,
  FakeSttServer,
  HELLO_SCRIPT,
  HELLO_TRANSCRIPT,
  type SttVendor,
} from "./fakes/stt_servers.ts";
import {
  fakeSpeech,
  type FakeTtsBehaviour,
  FakeTtsServer,
  type TtsVendor,
} from "./fakes/tts_servers.ts";

const HELLO = await fixturePcm("hello_8000.wav");
const GREETING = "Hello! How can I help you today?";
const FALLBACK =
  "Sorry, I'm having trouble right now. Could you please say that again?";

// ---------------------------------------------------------------- breaker

Deno.test("breaker opens after the set consecutive failures, refuses during the cool-down, and a successful probe closes it", async () => {
  const clock = new FakeClock();
  const breaker = new CircuitBreaker({ failures: 3, cooldownMs: 5000 }, clock);
  assert(breaker.tryAcquire());
  breaker.failed();
  breaker.failed();
  breaker.succeeded(); // a success in between starts the count again
  breaker.failed();
  breaker.failed();
  assertEquals(breaker.state, "closed");
  breaker.failed();
  assertEquals(breaker.state, "open");
  assertEquals(breaker.timesOpened, 1);
  assertEquals(breaker.tryAcquire(), false);
  await clock.advance(4999);
  assertEquals(breaker.tryAcquire(), false);
  await clock.advance(1);
  assertEquals(breaker.state, "half_open");
  assert(breaker.tryAcquire(), "the probe goes through");
  assertEquals(breaker.tryAcquire(), false, "one probe at a time");
  breaker.succeeded();
  assertEquals(breaker.state, "closed");
  assert(breaker.tryAcquire());
});

Deno.test("breaker: a failed probe opens it again for a whole cool-down; a released probe frees the slot", async () => {
  const clock = new FakeClock();
  const breaker = new CircuitBreaker({ failures: 1, cooldownMs: 1000 }, clock);
  breaker.failed();
  await clock.advance(1000);
  assert(breaker.tryAcquire());
  breaker.released(); // aborted by a barge-in: tells nothing
  assert(breaker.tryAcquire(), "the slot is free again");
  breaker.failed();
  assertEquals(breaker.state, "open");
  assertEquals(breaker.timesOpened, 2);
  await clock.advance(999);
  assertEquals(breaker.tryAcquire(), false);
  await clock.advance(1);
  assert(breaker.tryAcquire());
});

Deno.test("fallback triggers on connection failure, timeout, broken answers, 401/403, 408, 429 and 5xx, not on aborts or other 4xx", () => {
  const http = (status: number) =>
    new ProviderError("x", { kind: "http", message: "failed", status });
  for (const status of [401, 403, 408, 429, 500, 502, 503]) {
    assert(isFallbackError(http(status)), `status ${status}`);
  }
  for (const status of [400, 404, 422]) {
    assertEquals(isFallbackError(http(status)), false, `status ${status}`);
  }
  assert(
    isFallbackError(
      new ProviderError("x", { kind: "network", message: "refused" }),
    ),
  );
  assert(
    isFallbackError(
      new ProviderError("x", { kind: "timeout", message: "slow" }),
    ),
  );
  assert(
    isFallbackError(
      new ProviderError("x", { kind: "protocol", message: "garbage" }),
    ),
  );
  assertEquals(
    isFallbackError(
      new ProviderError("x", { kind: "aborted", message: "barge-in" }),
    ),
    false,
  );
  assertEquals(isFallbackError(new Error("not a provider's")), false);
});

// ----------------------------------------------------------------- config

const KEYS = {
  DEEPGRAM_API_KEY: "dg",
  ELEVENLABS_API_KEY: "el",
  SARVAM_API_KEY: "sv",
  LLM_API_KEY: "sk",
};

Deno.test("provider lists: comma lists with spaces, one value for all or aligned values, empty entries take the vendor's default", () => {
  const config = loadAgentConfig({
    ...KEYS,
    TTS_PROVIDER: "elevenlabs, deepgram",
    TTS_VOICE: ", aura-2-andromeda-en",
    TTS_BASE_URL: "http://tts.internal/",
    STT_PROVIDER: "deepgram,sarvam",
    STT_BASE_URL: "wss://a.example, wss://b.example",
    LLM_BASE_URL: "https://one.example/v1,https://two.example/v1",
    LLM_MODEL: "gpt-4o-mini, llama-3.1-8b",
    PROVIDER_BREAKER_FAILURES: "5",
    PROVIDER_BREAKER_COOLDOWN_MS: "60000",
  });
  assertEquals(config.tts.provider, "elevenlabs");
  assertEquals(config.tts.voice, "JBFqnCBsd6RMkjVDRZzb");
  assertEquals(config.tts.baseUrl, "http://tts.internal");
  assertEquals(config.fallbacks.tts.map((tts) => [tts.provider, tts.voice]), [
    ["deepgram", "aura-2-andromeda-en"],
  ]);
  assertEquals(config.fallbacks.tts[0].baseUrl, "http://tts.internal");
  assertEquals(config.fallbacks.tts[0].apiKey, "dg");
  assertEquals(config.stt.baseUrl, "wss://a.example");
  assertEquals(config.fallbacks.stt.map((stt) => [stt.provider, stt.baseUrl]), [
    ["sarvam", "wss://b.example"],
  ]);
  assertEquals(config.llm.model, "gpt-4o-mini");
  assertEquals(config.fallbacks.llm.map((llm) => [llm.baseUrl, llm.model]), [
    ["https://two.example/v1", "llama-3.1-8b"],
  ]);
  assertEquals(config.breaker, { failures: 5, cooldownMs: 60_000 });
  assertEquals(config.maxFailedTurns, 3);
  assertEquals(config.onFailure, "hangup");
  // A single vendor keeps the old shape: no fallbacks.
  const single = loadAgentConfig(KEYS);
  assertEquals(single.fallbacks, { stt: [], llm: [], tts: [] });
});

Deno.test("provider lists: mistakes name the variable, the position and what is accepted", () => {
  const cases: [Record<string, string>, string, string][] = [
    [
      { TTS_PROVIDER: "elevenlabs,polly" },
      "TTS_PROVIDER",
      'Invalid TTS_PROVIDER "elevenlabs,polly": entry 2 "polly": expected one of deepgram, elevenlabs, sarvam',
    ],
    [
      { TTS_PROVIDER: "elevenlabs,deepgram", TTS_VOICE: "a,b,c" },
      "TTS_VOICE",
      'Invalid TTS_VOICE "a,b,c": expected one value for all or 2 comma-separated values aligned with TTS_PROVIDER (elevenlabs,deepgram), got 3',
    ],
    [
      {
        STT_PROVIDER: "deepgram,sarvam",
        STT_BASE_URL: "wss://ok.example,https://b.example",
      },
      "STT_BASE_URL",
      'entry 2 "https://b.example": expected a ws:// or wss:// URL',
    ],
    [
      { LLM_BASE_URL: "https://a.example/v1,https://b.example/v1" },
      "LLM_MODEL",
      "",
    ],
    [
      { LLM_MODEL: "a,b,c", LLM_BASE_URL: "https://a.example,https://b" },
      "LLM_BASE_URL",
      "aligned with the longest of LLM_BASE_URL, LLM_MODEL and LLM_API_KEY, got 2",
    ],
    [
      { AGENT_ON_FAILURE: "retry" },
      "AGENT_ON_FAILURE",
      'Invalid AGENT_ON_FAILURE "retry": expected one of hangup, transfer',
    ],
    [
      { AGENT_MAX_FAILED_TURNS: "-1" },
      "AGENT_MAX_FAILED_TURNS",
      "expected a whole number from 0 to 100",
    ],
    [
      { TTS_PROVIDER: "deepgram,elevenlabs", ELEVENLABS_API_KEY: "" },
      "ELEVENLABS_API_KEY",
      "TTS_PROVIDER=elevenlabs needs it",
    ],
  ];
  for (const [env, variable, message] of cases) {
    if (message === "") {
      // Two base URLs and one model: the model serves both.
      const config = loadAgentConfig({ ...KEYS, ...env });
      assertEquals(config.fallbacks.llm[0].model, config.llm.model);
      continue;
    }
    const withKeys: Record<string, string | undefined> = { ...KEYS, ...env };
    if (env.ELEVENLABS_API_KEY === "") delete withKeys.ELEVENLABS_API_KEY;
    const error = assertThrows(() => loadAgentConfig(withKeys), ConfigError);
    assertEquals(error.variable, variable);
    assertStringIncludes(error.message, message);
  }
});

// ------------------------------------------------------ fakes, two a stage

interface Vendors extends AsyncDisposable {
  stt: FakeSttServer[];
  llm: FakeOpenAiServer[];
  tts: FakeTtsServer[];
  config: AgentConfig;
  health: ProviderHealth;
  providers: AgentProviders;
}

interface VendorOptions {
  stt?: SttVendor[];
  tts?: TtsVendor[];
  llm?: FakeReplySource[][];
  script?: FakeSttScript;
  env?: Record<string, string>;
  clock?: Clock;
}

async function startVendors(options: VendorOptions): Promise<Vendors> {
  const sttVendors = options.stt ?? ["deepgram"];
  const ttsVendors = options.tts ?? ["deepgram"];
  const stt = await Promise.all(
    sttVendors.map((vendor) =>
      FakeSttServer.start(vendor, {
        apiKey: FAKE_KEY,
        script: options.script ?? HELLO_SCRIPT,
      })
    ),
  );
  const tts = await Promise.all(
    ttsVendors.map((vendor) =>
      FakeTtsServer.start(vendor, { apiKey: FAKE_KEY })
    ),
  );
  const llm = (options.llm ?? [[]]).map((replies) =>
    startFakeOpenAiServer({ apiKey: "fake-llm-key", replies })
  );
  const config = loadAgentConfig({
    DEEPGRAM_API_KEY: FAKE_KEY,
    ELEVENLABS_API_KEY: FAKE_KEY,
    SARVAM_API_KEY: FAKE_KEY,
    STT_PROVIDER: sttVendors.join(","),
    STT_BASE_URL: stt.map((server) => server.baseUrl).join(","),
    TTS_PROVIDER: ttsVendors.join(","),
    TTS_BASE_URL: tts.map((server) => server.baseUrl).join(","),
    LLM_BASE_URL: llm.map((server) => server.baseUrl).join(","),
    LLM_API_KEY: "fake-llm-key",
    LLM_MODEL: "fake-model",
    STT_TIMEOUT_MS: "2000",
    LLM_TIMEOUT_MS: "2000",
    TTS_TIMEOUT_MS: "2000",
    ...options.env,
  });
  const health = new ProviderHealth(options.clock ?? { now: () => 0 });
  return {
    stt,
    llm,
    tts,
    config,
    health,
    providers: createProviders(config, { health }),
    async [Symbol.asyncDispose]() {
      await Promise.all([
        ...stt.map((server) => server.close()),
        ...llm.map((server) => server.close()),
        ...tts.map((server) => server.close()),
      ]);
    },
  };
}

function startBot(vendors: Vendors) {
  const factory = createAgentBotFactory(vendors.config, {
    providers: vendors.providers,
    health: vendors.health,
  });
  return { ...startMemoryCall<AgentBot>(factory), factory };
}

function failing(count: number): FakeTtsBehaviour[] {
  return new Array(count).fill({ kind: "server_error" });
}

// -------------------------------------------------------------- fallbacks

Deno.test("a voice that dies mid-call: the next one in TTS_PROVIDER says the rest of the call, the caller hears every sentence once", async () => {
  await using vendors = await startVendors({
    tts: ["elevenlabs", "deepgram"],
    llm: [[textReply(["We open at nine.", " We close at six."])]],
  });
  const [eleven, deepgram] = vendors.tts;
  await using call = startBot(vendors);
  await until(() => call.output.played.length === 1, "the greeting");
  await until(() => eleven.texts().includes(FALLBACK), "the warm-up");
  assertEquals(eleven.texts(), [GREETING, FALLBACK]);
  // ElevenLabs has a bad minute from here on.
  eleven.script(...failing(10));
  await feed((pcm) => call.bot.audio(pcm), HELLO, 8000);
  await until(() => call.output.played.length === 3, "the answer");

  // The first sentence failed once on ElevenLabs and went to Deepgram; the
  // second went straight to Deepgram.
  assertEquals(eleven.texts(), [GREETING, FALLBACK, "We open at nine."]);
  assertEquals(deepgram.texts(), ["We open at nine.", "We close at six."]);
  const [, first, second] = call.output.utterances;
  assertEquals(first.pcm, fakeSpeech("We open at nine.", 8000));
  assertEquals(second.pcm, fakeSpeech("We close at six.", 8000));
  assertEquals(call.bot.timeline().map((turn) => turn.outcome), ["answered"]);
  const [entry] = vendors.health.entries().filter((e) =>
    e.provider === "elevenlabs"
  );
  assertEquals(entry.fallbacks, 1);
});

Deno.test("a model endpoint answering 500: the same turn goes to the next LLM_BASE_URL, which answers", async () => {
  await using vendors = await startVendors({
    llm: [
      [errorReply(500, "The server had an error")],
      [textReply(["The second endpoint answers."])],
    ],
  });
  const [first, second] = vendors.llm;
  await using call = startBot(vendors);
  await until(() => call.output.played.length === 1, "the greeting");
  await feed((pcm) => call.bot.audio(pcm), HELLO, 8000);
  await until(() => call.output.played.length === 2, "the answer");
  assertEquals(first.requests.length, 1);
  assertEquals(second.requests.length, 1);
  const messages = second.requests[0].body?.messages as { content: string }[];
  assertEquals(messages.at(-1)?.content, HELLO_TRANSCRIPT);
  assertEquals(
    call.output.utterances[1].pcm,
    fakeSpeech("The second endpoint answers.", 8000),
  );
  assertEquals(call.bot.timeline().map((turn) => turn.outcome), ["answered"]);
});

Deno.test("a speech-to-text vendor refusing the connection: the next in STT_PROVIDER transcribes the call", async () => {
  await using vendors = await startVendors({
    stt: ["deepgram", "sarvam"],
    llm: [[textReply(["Heard you."])]],
  });
  const [deepgram, sarvam] = vendors.stt;
  deepgram.script({ kind: "unauthorized" });
  await using call = startBot(vendors);
  await until(() => call.output.played.length === 1, "the greeting");
  await feed((pcm) => call.bot.audio(pcm), HELLO, 8000);
  await until(() => call.output.played.length === 2, "the answer");
  assertEquals(deepgram.requests.map((request) => request.status), [401]);
  assertEquals(sarvam.requests.map((request) => request.status), [101]);
  const messages = vendors.llm[0].requests[0].body?.messages as {
    content: string;
  }[];
  assertEquals(messages.at(-1)?.content, HELLO_TRANSCRIPT);
});

Deno.test("the breaker keeps a failing voice out across calls, and lets it back after the cool-down once a probe succeeds", async () => {
  const clock = new FakeClock();
  await using vendors = await startVendors({
    tts: ["elevenlabs", "deepgram"],
    env: {
      PROVIDER_BREAKER_FAILURES: "2",
      PROVIDER_BREAKER_COOLDOWN_MS: "10000",
    },
    clock,
  });
  const [eleven, deepgram] = vendors.tts;
  eleven.script(...failing(2));
  const say = async (text: string) => {
    // Each call gets its own view; only the breakers are shared.
    const tts = vendors.providers.forCall!().tts;
    const synthesis = await tts.synthesize(text, { sampleRate: 8000 });
    const pieces: Uint8Array[] = [];
    for await (const piece of synthesis.audio) pieces.push(piece);
    return concat(pieces);
  };
  const state = () =>
    vendors.health.entries().find((entry) => entry.provider === "elevenlabs")
      ?.state;

  assertEquals(await say("Call one."), fakeSpeech("Call one.", 8000));
  assertEquals(state(), "closed");
  assertEquals(await say("Call two."), fakeSpeech("Call two.", 8000));
  assertEquals(state(), "open");
  assertEquals(await say("Call three."), fakeSpeech("Call three.", 8000));
  assertEquals(eleven.requests.length, 2, "call three skipped ElevenLabs");
  assertEquals(deepgram.texts(), ["Call one.", "Call two.", "Call three."]);

  await clock.advance(10_000);
  assertEquals(state(), "half_open");
  // ElevenLabs is back: the probe succeeds and the breaker closes.
  await say("Call four.");
  assertEquals(eleven.texts().at(-1), "Call four.");
  assertEquals(state(), "closed");
  assertEquals(deepgram.texts().length, 3);

  const metrics = new ExovoiceMetrics({ providerHealth: vendors.health });
  const text = await metrics.render();
  assertStringIncludes(
    text,
    'exovoice_provider_breaker_state{stage="tts",provider="elevenlabs",state="closed"} 1',
  );
  assertStringIncludes(
    text,
    'exovoice_provider_breaker_opened_total{stage="tts",provider="elevenlabs"} 1',
  );
  assertStringIncludes(
    text,
    'exovoice_provider_fallbacks_total{stage="tts",provider="elevenlabs"} 2',
  );
});

Deno.test("every voice down: the caller hears the bundled fallback line, then the closing line, and the call ends after AGENT_MAX_FAILED_TURNS", async () => {
  await using vendors = await startVendors({
    tts: ["elevenlabs", "deepgram"],
    llm: [[textReply(["An answer nobody can say."])]],
    env: { AGENT_MAX_FAILED_TURNS: "2" },
  });
  for (const server of vendors.tts) server.script(...failing(20));
  await using call = startBot(vendors);
  await until(() => call.output.played.length === 1, "the fallback line");
  assertEquals(
    call.output.utterances[0].pcm,
    await RECORDED_LINES.fallback.audio.pcm(8000),
  );
  await feed((pcm) => call.bot.audio(pcm), HELLO, 8000);
  await until(() => call.output.hangups.length === 1, "the hang-up");
  assertEquals(call.output.played.length, 2);
  assertEquals(
    call.output.utterances[1].pcm,
    await RECORDED_LINES.closing.audio.pcm(8000),
  );
  assertEquals(call.output.hangups, ["providers_failed"]);
  assertEquals(call.factory.outcomes.get(call.info.callId), "end_call");
  const bot = call.bot.report().transcript.filter((entry) =>
    entry.role === "bot"
  );
  // What the bot meant to say, and what the caller heard instead.
  assertEquals(bot.map((entry) => [entry.text, entry.heardText]), [
    [GREETING, RECORDED_LINES.fallback.text],
    ["An answer nobody can say.", RECORDED_LINES.closing.text],
  ]);
});

Deno.test("AGENT_ON_FAILURE=transfer: after the last failed turn the transfer line plays and the call is handed back to the flow", async () => {
  await using vendors = await startVendors({
    env: { AGENT_MAX_FAILED_TURNS: "1", AGENT_ON_FAILURE: "transfer" },
  });
  vendors.tts[0].script(...failing(20));
  await using call = startBot(vendors);
  await until(() => call.output.hangups.length === 1, "the transfer");
  assertEquals(
    call.output.utterances[0].pcm,
    await RECORDED_LINES.transfer.audio.pcm(8000),
  );
  assertEquals(call.output.hangups, ["providers_failed_transfer"]);
  assertEquals(call.factory.outcomes.get(call.info.callId), "transfer");
});

Deno.test("the bundled recordings ship in the Docker image and in the compiled binary", async () => {
  const root = new URL("../", import.meta.url);
  const dockerfile = await Deno.readTextFile(new URL("Dockerfile", root));
  assert(
    /^COPY assets\/ assets\/$/m.test(dockerfile),
    "Dockerfile copies assets/",
  );
  const tasks = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)))
    .tasks as Record<string, string>;
  assertStringIncludes(tasks.compile, "--include assets");
  for (const line of Object.values(RECORDED_LINES)) {
    const pcm = await line.audio.pcm(16000);
    assert(pcm.length > 16000 * 2, `${line.text} lasts over a second`);
  }
});

Deno.test("through the server: the first voice's server goes away mid-call, the second says the answer and the caller hears greeting and answer", async () => {
  let dying: Promise<void> | undefined;
  await using vendors = await startVendors({
    tts: ["elevenlabs", "deepgram"],
    script: {
      turns: [{ text: HELLO_TRANSCRIPT, speechStartMs: 1520, turnMs: 5600 }],
    },
    llm: [[() => {
      // ElevenLabs goes down while the model is thinking: connections refused.
      dying = vendors.tts[0].close();
      return textReply(["Deepgram says this."]);
    }]],
  });
  const [eleven, deepgram] = vendors.tts;
  const factory = createAgentBotFactory(vendors.config, {
    providers: vendors.providers,
    health: vendors.health,
  });
  await using agent = await startBotServer<AgentBot>(factory, {
    settled: (bot) => bot.closed,
  });
  const report = await simulateCall({
    url: agent.url,
    pcm: concat([new Uint8Array(8000 * 2), HELLO]),
    sampleRate: 8000,
    waitForReplyMs: 1000,
    maxWaitMs: 10_000,
  });
  assert(report.connected, report.error);
  assertEquals(report.badChunks, []);
  await dying;
  assertEquals(deepgram.texts(), ["Deepgram says this."]);
  assert(eleven.texts().includes(GREETING));
  // The greeting came from ElevenLabs at 8 kHz; the answer from Deepgram.
  const answer = padToAlignment(fakeSpeech("Deepgram says this.", 8000));
  assertEquals(
    report.receivedPcm.subarray(report.receivedPcm.length - answer.length),
    answer,
  );
  assert(report.receivedPcm.length > answer.length, "the greeting too");
  assertEquals(agent.bots[0].timeline().map((turn) => turn.outcome), [
    "answered",
  ]);
});

Deno.test("agent file: provider lists as YAML lists (null keeps a vendor's default), maxFailedTurns and onFailure; a bad entry names the file path", () => {
  const files: Record<string, string> = {
    "agent.yaml": [
      "maxFailedTurns: 2",
      "onFailure: transfer",
      "providers:",
      "  tts:",
      "    provider: [elevenlabs, deepgram]",
      "    voice: [null, aura-2-andromeda-en]",
      "  llm:",
      "    baseUrl: [https://one.example/v1, https://two.example/v1]",
      "    model: [gpt-4o-mini, llama-3.1-8b]",
      "",
    ].join("\n"),
    "bad.yaml": "providers:\n  tts:\n    provider: [elevenlabs, polly]\n",
  };
  const readTextFile = (path: string) => files[path];
  const config = loadAgentFile("agent.yaml", KEYS, { readTextFile });
  assertEquals(config.maxFailedTurns, 2);
  assertEquals(config.onFailure, "transfer");
  assertEquals(config.tts.provider, "elevenlabs");
  assertEquals(config.tts.voice, "JBFqnCBsd6RMkjVDRZzb");
  assertEquals(config.fallbacks.tts.map((tts) => tts.voice), [
    "aura-2-andromeda-en",
  ]);
  assertEquals(config.fallbacks.llm.map((llm) => llm.model), ["llama-3.1-8b"]);
  const error = assertThrows(
    () => loadAgentFile("bad.yaml", KEYS, { readTextFile }),
    AgentFileError,
  );
  assertStringIncludes(
    error.message,
    "bad.yaml: providers.tts.provider: expected one of deepgram, elevenlabs, sarvam, or a list of them in order of preference",
  );
});

Deno.test("a speech-to-text stream that breaks mid-call reconnects to the next vendor, which transcribes the caller", async () => {
  await using vendors = await startVendors({
    stt: ["deepgram", "sarvam"],
    llm: [[textReply(["Still listening."])]],
  });
  const [deepgram, sarvam] = vendors.stt;
  deepgram.script({ kind: "drop", afterBytes: 3200 });
  await using call = startBot(vendors);
  await until(() => call.output.played.length === 1, "the greeting");
  await feed(
    (pcm) => call.bot.audio(pcm),
    concat([HELLO, new Uint8Array(8000 * 2 * 2)]),
    8000,
  );
  await until(() => call.output.played.length === 2, "the answer");
  assertEquals(deepgram.requests.map((request) => request.status), [101]);
  assertEquals(sarvam.requests.map((request) => request.status), [101]);
  const messages = vendors.llm[0].requests[0].body?.messages as {
    content: string;
  }[];
  assertEquals(messages.at(-1)?.content, HELLO_TRANSCRIPT);
  const [entry] = vendors.health.entries().filter((e) =>
    e.stage === "stt" && e.provider === "deepgram"
  );
  assertEquals(entry.fallbacks, 1);
});

Deno.test("every voice down after one of them said the fallback line: the caller hears that cached line, not the recording", async () => {
  await using vendors = await startVendors({
    tts: ["elevenlabs", "deepgram"],
    script: {
      turns: [
        { text: HELLO_TRANSCRIPT, speechStartMs: 520, turnMs: 4600 },
        { text: "And on Sunday?", speechStartMs: 1600, turnMs: 5700 },
      ],
    },
    llm: [[textReply(["First answer."]), textReply(["Second answer."])]],
  });
  const [eleven, deepgram] = vendors.tts;
  // ElevenLabs says the greeting and the fallback line (synthesised ahead),
  // then fails; Deepgram answers once, then fails too.
  eleven.script({ kind: "speak" }, { kind: "speak" }, ...failing(20));
  deepgram.script({ kind: "speak" }, ...failing(20));
  await using call = startBot(vendors);
  await until(() => call.output.played.length === 1, "the greeting");
  await until(() => eleven.texts().includes(FALLBACK), "the warm-up");
  await feed((pcm) => call.bot.audio(pcm), HELLO, 8000);
  await until(() => call.output.played.length === 2, "the first answer");
  assertEquals(deepgram.texts(), ["First answer."]);
  await feed(
    (pcm) => call.bot.audio(pcm),
    concat([HELLO, new Uint8Array(8000 * 2)]),
    8000,
  );
  await until(() => call.output.played.length === 3, "the fallback line");
  assertEquals(call.output.utterances[2].pcm, fakeSpeech(FALLBACK, 8000));
  assertEquals(call.bot.timeline().map((turn) => turn.outcome), [
    "answered",
    "failed",
  ]);
});

Deno.test("a model endpoint that breaks off mid-answer is not retried on the next (the caller would hear the start twice): what it said plays, then the fallback line, and the next turn goes to the next endpoint", async () => {
  await using vendors = await startVendors({
    script: {
      turns: [
        { text: HELLO_TRANSCRIPT, speechStartMs: 520, turnMs: 4600 },
        { text: "And on Sunday?", speechStartMs: 1600, turnMs: 5700 },
      ],
    },
    llm: [
      [textReply(["We open at nine.", " And we"], { end: "disconnect" })],
      [textReply(["Sunday we are closed."])],
    ],
  });
  const [first, second] = vendors.llm;
  await using call = startBot(vendors);
  await until(() => call.output.played.length === 1, "the greeting");
  await feed((pcm) => call.bot.audio(pcm), HELLO, 8000);
  await until(() => call.output.played.length === 3, "the cut answer");
  assertEquals(second.requests.length, 0, "the turn was not asked again");
  assertEquals(
    call.output.utterances[1].pcm,
    fakeSpeech("We open at nine.", 8000),
  );
  assertEquals(call.output.utterances[2].pcm, fakeSpeech(FALLBACK, 8000));
  await feed(
    (pcm) => call.bot.audio(pcm),
    concat([HELLO, new Uint8Array(8000 * 2)]),
    8000,
  );
  await until(() => call.output.played.length === 4, "the second answer");
  assertEquals(first.requests.length, 1);
  assertEquals(second.requests.length, 1);
  assertEquals(
    call.output.utterances[3].pcm,
    fakeSpeech("Sunday we are closed.", 8000),
  );
});

Deno.test("serve(): /metrics shows each listed provider's breaker and the fallbacks of real calls", async () => {
  await using vendors = await startVendors({ tts: ["elevenlabs", "deepgram"] });
  const [eleven, deepgram] = vendors.tts;
  eleven.script({ kind: "server_error" });
  await using server = await serve({
    readEnv: false,
    env: {
      KV_PATH: ":memory:",
      LOG_LEVEL: "error",
      ADMIN_TOKEN: "admin",
      BOT: "agent",
      VAD: "energy",
      DEEPGRAM_API_KEY: FAKE_KEY,
      ELEVENLABS_API_KEY: FAKE_KEY,
      STT_BASE_URL: vendors.stt[0].baseUrl,
      TTS_PROVIDER: "elevenlabs, deepgram",
      TTS_BASE_URL: `${eleven.baseUrl}, ${deepgram.baseUrl}`,
      LLM_BASE_URL: vendors.llm[0].baseUrl,
      LLM_API_KEY: "fake-llm-key",
    },
    hostname: "127.0.0.1",
    port: 0,
    logging: false,
  });
  const report = await simulateCall({
    url: `${server.url.replace("http", "ws")}/voicebot/ws`,
    pcm: new Uint8Array(8000 * 2),
    sampleRate: 8000,
    waitForReplyMs: 500,
    maxWaitMs: 5000,
  });
  assert(report.connected, report.error);
  // The greeting failed on ElevenLabs and was said by Deepgram.
  assertEquals(deepgram.texts()[0], GREETING);
  const text = await (await fetch(`${server.url}/metrics`, {
    headers: { authorization: "Bearer admin" },
  })).text();
  assertStringIncludes(
    text,
    'exovoice_provider_breaker_state{stage="tts",provider="elevenlabs",state="closed"} 1',
  );
  assertStringIncludes(
    text,
    'exovoice_provider_breaker_state{stage="tts",provider="deepgram",state="open"} 0',
  );
  assertStringIncludes(
    text,
    'exovoice_provider_fallbacks_total{stage="tts",provider="elevenlabs"} 1',
  );
});
