/**
 * `BOT=realtime` end to end: the real server on a random port, the simulator
 * as Exotel, and the real OpenAI Realtime and Gemini Live adapters talking to
 * fakes of both APIs on 127.0.0.1.
 */
import {
  assert,
  assertEquals,
  assertGreater,
  assertStringIncludes,
} from "@std/assert";
import { concat } from "@std/bytes";
import { padToAlignment, type SampleRate } from "../src/audio/pcm.ts";
import { resampleAll } from "../src/audio/resample.ts";
import {
  createRealtimeBotFactory,
  FALLBACK_LINE_TEXT,
  loadRealtimeConfig,
  type RealtimeBot,
} from "../src/bots/realtime/mod.ts";
import { loadAgentConfig } from "../src/bots/agent/config.ts";
import type { ToolResult } from "../src/bots/agent/tool_runner.ts";
import {
  webhookTool,
  type WebhookToolConfig,
} from "../src/bots/agent/webhook_tool.ts";
import type { ProviderError } from "../src/providers/provider_error.ts";
import { simulateCall, type SimulateCallOptions } from "../tools/simulator.ts";
import { fixturePcm } from "./fakes/agent_call.ts";
import { type BotServer, startBotServer } from "./fakes/bot_server.ts";
import { type RouteServer, startRouteServer } from "./fakes/route_server.ts";
import {
  FakeGeminiLive,
  FakeOpenAiRealtime,
  type FakeRealtimeScript,
  REALTIME_KEY,
} from "./fakes/realtime_servers.ts";
import { fakeSpeech } from "./fakes/tts_servers.ts";

const GREETING = "Hello! Sunrise Clinic.";
const LEAD_MS = 500;

type Provider = "openai" | "gemini";

/** The parts of OpenAI's `session.update` the tests read. */
interface OpenAiSession {
  type: string;
  instructions: string;
  audio: {
    input: { format: unknown; turn_detection: { type: string } };
    output: { format: unknown; voice: string };
  };
  tools: { name: string }[];
}

/** OpenAI's `conversation.item.create`, as far as the tests read it. */
interface OpenAiItemCreate {
  item: { content?: { text: string }[] };
}

/** Gemini's `clientContent`, as far as the tests read it. */
interface GeminiClientContent {
  clientContent: { turns: { parts: { text: string }[] }[] };
}

interface RealtimeServer extends BotServer<RealtimeBot> {
  vendor: FakeOpenAiRealtime | FakeGeminiLive;
  errors: ProviderError[];
  tools: ToolResult[];
  outcomeOf(callId: string): string | undefined;
}

async function startRealtimeServer(
  provider: Provider,
  options: {
    script?: FakeRealtimeScript;
    env?: Record<string, string>;
    tools?: WebhookToolConfig[];
  } = {},
): Promise<RealtimeServer> {
  const vendor = provider === "openai"
    ? new FakeOpenAiRealtime()
    : new FakeGeminiLive();
  vendor.script = options.script ?? {};
  const env = {
    REALTIME_PROVIDER: provider,
    REALTIME_BASE_URL: vendor.baseUrl,
    OPENAI_API_KEY: REALTIME_KEY,
    GEMINI_API_KEY: REALTIME_KEY,
    AGENT_GREETING: GREETING,
    AGENT_GOODBYE_TEXT: "Goodbye!",
    AGENT_DTMF_TIMEOUT_MS: "300",
    ...options.env,
  };
  const agent = {
    ...loadAgentConfig(env, { cascade: false }),
    tools: (options.tools ?? []).map(webhookTool),
  };
  const errors: ProviderError[] = [];
  const tools: ToolResult[] = [];
  const factory = createRealtimeBotFactory(
    loadRealtimeConfig(env),
    { agents: new Map([["default", agent]]), defaultAgent: "default" },
    {
      hooks: {
        providerError: (error) => errors.push(error),
        toolCall: (result) => tools.push(result),
      },
    },
  );
  const running = await startBotServer<RealtimeBot>(factory);
  return {
    ...running,
    vendor,
    errors,
    tools,
    outcomeOf: (callId) => factory.outcomes.get(callId),
    async [Symbol.asyncDispose]() {
      try {
        await running[Symbol.asyncDispose]();
      } finally {
        await vendor[Symbol.asyncDispose]();
      }
    },
  };
}

function silence(ms: number, rate: number): Uint8Array {
  return new Uint8Array(rate / 1000 * ms * 2);
}

/** What the caller hears for `text` spoken by a fake: its 24 kHz voice at the call's rate. */
function voiceAt(text: string, rate: SampleRate, mulaw = false): Uint8Array {
  if (mulaw) return fakeSpeech(text, 8000);
  const pcm = fakeSpeech(text, 24000);
  return rate === 24000
    ? pcm
    : resampleAll(pcm, { fromRate: 24000, toRate: rate });
}

async function call(
  server: RealtimeServer,
  rate: SampleRate,
  options: Partial<SimulateCallOptions> = {},
) {
  const hello = await fixturePcm(`hello_${rate}.wav`);
  const report = await simulateCall({
    url: server.url,
    pcm: concat([silence(LEAD_MS, rate), hello]),
    sampleRate: rate,
    waitForReplyMs: 1500,
    maxWaitMs: 20_000,
    ...options,
  });
  assert(report.connected, report.error);
  assertEquals(report.badChunks, []);
  assertEquals(report.badFrames, []);
  return report;
}

for (const provider of ["openai", "gemini"] as const) {
  for (const rate of [8000, 16000, 24000] as const) {
    Deno.test(`${provider} at ${rate} Hz: the greeting, then the caller's turn answered, with transcript and timeline`, async () => {
      await using server = await startRealtimeServer(provider, {
        script: {
          transcripts: ["I need an appointment."],
          replies: [{ say: "Sure, when would you like to come?" }],
        },
      });
      const report = await call(server, rate);

      const mulaw = provider === "openai" && rate === 8000;
      const expected = concat([
        padToAlignment(voiceAt(GREETING, rate, mulaw)),
        padToAlignment(
          voiceAt("Sure, when would you like to come?", rate, mulaw),
        ),
      ]);
      // Resampling runs per answer, so each answer's length is exact.
      assertEquals(report.receivedPcm.length, expected.length);
      assertEquals(report.clearsReceived, 0);
      assertEquals(report.marksEchoed.length, 2);
      const { transcript, turns } = server.bots[0].report();
      assertEquals(transcript.map(({ role, text }) => [role, text]), [
        ["bot", GREETING],
        ["caller", "I need an appointment."],
        ["bot", "Sure, when would you like to come?"],
      ]);
      assertEquals(turns.length, 1);
      const { latenciesMs } = turns[0];
      for (
        const stage of ["tts_first_byte", "first_media", "first_mark"] as const
      ) {
        assertEquals(typeof latenciesMs[stage], "number", stage);
      }
      assert(latenciesMs.first_media! <= latenciesMs.first_mark!);
    });
  }
}

Deno.test("openai: the session carries instructions, voice, tools and turn detection; μ-law at 8 kHz, 24 kHz PCM otherwise", async () => {
  for (
    const [rate, format] of [[8000, { type: "audio/pcmu" }], [16000, {
      type: "audio/pcm",
      rate: 24000,
    }]] as const
  ) {
    await using server = await startRealtimeServer("openai", {
      env: {
        AGENT_PROMPT: "You are the clinic's front desk.",
        REALTIME_TURN_DETECTION: "semantic_vad",
      },
    });
    await call(server, rate);
    const [{ session }] = server.vendor.sent<{ session: OpenAiSession }>(
      "session.update",
    );
    assertEquals(session.type, "realtime");
    assertStringIncludes(
      session.instructions,
      "You are the clinic's front desk.",
    );
    assertEquals(session.audio.input.format, format);
    assertEquals(session.audio.output.format, format);
    assertEquals(session.audio.output.voice, "marin");
    assertEquals(session.audio.input.turn_detection.type, "semantic_vad");
    assertEquals(session.tools.map((tool) => tool.name), [
      "end_call",
      "transfer",
    ]);
    assertEquals(
      server.vendor.connections[0].url.searchParams.get("model"),
      "gpt-realtime",
    );
    assertEquals(
      server.vendor.connections[0].headers.get("authorization"),
      `Bearer ${REALTIME_KEY}`,
    );
  }
});

for (const provider of ["openai", "gemini"] as const) {
  Deno.test(`${provider}: the caller barging in clears the answer at once, and the record says what was heard`, async () => {
    const long =
      "Our clinic is open from nine in the morning until six in the evening on weekdays, and until one on Saturdays.";
    await using server = await startRealtimeServer(provider, {
      script: {
        transcripts: ["What are your hours?", "Wait, stop."],
        replies: [{ say: long }, { say: "Sorry, go ahead." }],
      },
    });
    const interrupt = await fixturePcm("interrupt_16000.wav");
    const greetingBytes = padToAlignment(voiceAt(GREETING, 16000)).length;
    let received = 0;
    let interrupted = false;
    const report = await call(server, 16000, {
      onReplyAudio: (pcm, caller) => {
        received += pcm.length;
        if (!interrupted && received > greetingBytes + 32_000) {
          interrupted = true;
          caller.play(interrupt);
        }
      },
    });

    assertGreater(report.clearsReceived, 0);
    const cut = server.bots[0].report().transcript.find((entry) =>
      entry.text === long
    );
    assertEquals(cut?.interrupted, true);
    assert(cut?.heardText !== undefined && cut.heardText.length < long.length);
    if (provider === "openai") {
      // OpenAI's memory is cut where the caller stopped hearing.
      const [truncate] = server.vendor.sent<
        { audio_end_ms: number; content_index: number }
      >("conversation.item.truncate");
      const answerMs = fakeSpeech(long, 24000).length / 48;
      assertGreater(truncate.audio_end_ms, 0);
      assert(
        truncate.audio_end_ms < answerMs,
        `${truncate.audio_end_ms} ms of ${answerMs}`,
      );
      assertEquals(truncate.content_index, 0);
    }
  });
}

for (const provider of ["openai", "gemini"] as const) {
  Deno.test(`${provider}: end_call says the goodbye in the model's voice, then closes the stream`, async () => {
    await using server = await startRealtimeServer(provider, {
      script: {
        replies: [{
          tool: {
            name: "end_call",
            arguments: { goodbye: "Goodbye, take care." },
          },
        }],
      },
    });
    const report = await call(server, 8000, { waitForReplyMs: 10_000 });

    assertEquals(report.endReason, "closed_by_bot");
    const transcript = server.bots[0].report().transcript;
    assertEquals(transcript.at(-1)?.text, "Goodbye, take care.");
    assertEquals(server.outcomeOf(report.callSid), "end_call");
  });

  Deno.test(`${provider}: keys pressed reach the model as text`, async () => {
    await using server = await startRealtimeServer(provider, {
      script: { replies: [{ say: "You pressed one two." }] },
    });
    await call(server, 8000, {
      pcm: silence(3000, 8000),
      dtmf: [{ atMs: 1500, digit: "1" }, { atMs: 1600, digit: "2" }, {
        atMs: 1700,
        digit: "#",
      }],
    });

    const texts = provider === "openai"
      ? server.vendor.sent<OpenAiItemCreate>("conversation.item.create")
        .map((event) => event.item.content?.[0].text)
      : server.vendor.sent<GeminiClientContent>("clientContent")
        .map((event) => event.clientContent.turns[0].parts[0].text);
    assert(texts.includes("Keypad input: 12#"), JSON.stringify(texts));
  });

  Deno.test(`${provider}: a refused key means the fallback line, then the call ends; the error is reported`, async () => {
    await using server = await startRealtimeServer(provider, {
      env: { OPENAI_API_KEY: "wrong", GEMINI_API_KEY: "wrong" },
    });
    const report = await call(server, 8000, { waitForReplyMs: 10_000 });

    assertEquals(report.endReason, "closed_by_bot");
    assertGreater(report.heardBytes, 8000);
    assertEquals(server.errors.map((error) => [error.provider, error.kind]), [[
      provider,
      "http",
    ]]);
    assertEquals(
      server.bots[0].report().transcript.at(-1)?.text,
      FALLBACK_LINE_TEXT,
    );
  });

  Deno.test(`${provider}: a socket dropped mid-call means the fallback line and a transfer when configured`, async () => {
    await using server = await startRealtimeServer(provider, {
      script: { dropAfterMs: 2500, resumable: false },
      env: { REALTIME_ON_FAILURE: "transfer" },
    });
    const report = await call(server, 8000, { waitForReplyMs: 10_000 });

    assertEquals(report.endReason, "closed_by_bot");
    assertEquals(server.errors.length, 1);
    assertEquals(server.outcomeOf(report.callSid), "transfer");
    assertEquals(
      server.bots[0].report().transcript.at(-1)?.text,
      FALLBACK_LINE_TEXT,
    );
  });
}

Deno.test("gemini: a session the API ends with goAway is resumed with its handle, and the call goes on", async () => {
  await using server = await startRealtimeServer("gemini", {
    script: {
      goAwayAfterMs: 300,
      transcripts: ["I need an appointment."],
      replies: [{ say: "Sure, when?" }],
    },
  });
  await call(server, 16000);

  assertEquals(server.vendor.connections.length, 2);
  const setups = server.vendor
    .sent<{ setup: { sessionResumption: unknown } }>("setup")
    .map((event) => event.setup.sessionResumption);
  assertEquals(setups, [{}, { handle: "handle_1" }]);
  assertEquals(server.errors, []);
  const texts = server.bots[0].report().transcript.map((entry) => entry.text);
  assert(texts.includes("Sure, when?"), JSON.stringify(texts));
});

function bookTool(hooks: RouteServer): WebhookToolConfig {
  return {
    name: "book_appointment",
    description: "Book a slot for the caller.",
    parameters: {
      type: "object",
      properties: { date: { type: "string" }, time: { type: "string" } },
      required: ["date", "time"],
    },
    redact: [],
    webhook: {
      url: hooks.url("/book"),
      method: "POST",
      headers: { authorization: "Bearer clinic-key" },
      timeoutMs: 4000,
      maxResponseBytes: 16 * 1024,
    },
  };
}

for (const provider of ["openai", "gemini"] as const) {
  Deno.test(`${provider}: a tool call runs the agent's webhook tool, and its result goes back to the model, which answers`, async () => {
    await using hooks = startRouteServer({
      "/book": () => Response.json({ booked: true, reference: "SC-1001" }),
    });
    await using server = await startRealtimeServer(provider, {
      tools: [bookTool(hooks)],
      script: {
        transcripts: ["Book me tomorrow at ten."],
        replies: [
          {
            tool: {
              name: "book_appointment",
              arguments: { date: "2026-12-04", time: "10:00" },
            },
          },
          { say: "You are booked, reference SC-1001." },
        ],
      },
    });
    await call(server, 16000);

    assertEquals(hooks.requests.length, 1);
    const body = hooks.requests[0].json as {
      tool: string;
      arguments: unknown;
      call: { callId: string };
    };
    assertEquals(body.tool, "book_appointment");
    assertEquals(body.arguments, { date: "2026-12-04", time: "10:00" });
    assertEquals(server.tools.map((result) => [result.name, result.outcome]), [
      ["book_appointment", "ok"],
    ]);
    const sentBack = provider === "openai"
      ? server.vendor.sent<{ item: { type: string; output?: string } }>(
        "conversation.item.create",
      ).map((event) => event.item.output)
      : server.vendor.sent<
        { toolResponse: { functionResponses: { response: unknown }[] } }
      >("toolResponse").map((event) =>
        JSON.stringify(event.toolResponse.functionResponses[0].response)
      );
    assertEquals(sentBack.filter(Boolean).map((text) => JSON.parse(text!)), [
      { booked: true, reference: "SC-1001" },
    ]);
    const transcript = server.bots[0].report().transcript;
    assert(
      transcript.some((entry) =>
        entry.role === "tool" && entry.name === "book_appointment"
      ),
    );
    assertEquals(transcript.at(-1)?.text, "You are booked, reference SC-1001.");
  });
}
