/**
 * Turn-taking on real lines: silence re-prompts and the hang-up after them
 * (on a fake clock, with the real adapters against fake vendors), and the
 * greeting's first moments that a "hello?" cannot cut.
 */
import {
  assert,
  assertEquals,
  assertFalse,
  assertGreater,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import type { AgentBot } from "../src/bots/agent/agent.ts";
import { loadAgentConfig } from "../src/bots/agent/config.ts";
import { AgentFileError, loadAgentFile } from "../src/bots/agent/agent_file.ts";
import {
  type AgentFactoryOptions,
  createAgentBotFactory,
} from "../src/bots/agent/mod.ts";
import { CallOutcomes } from "../src/bots/agent/outcomes.ts";
import {
  DEFAULT_SILENCE,
  silenceLines,
  SilenceWatch,
} from "../src/bots/agent/silence.ts";
import type { CodeTool } from "../src/bots/agent/tool_runner.ts";
import { ConfigError } from "../src/env_values.ts";
import { loadConfig } from "../src/config.ts";
import { startServer } from "../src/server.ts";
import { simulateCall } from "../tools/simulator.ts";
import {
  type AgentFakes,
  feed,
  fixturePcm,
  type MemoryOutput,
  startAgentFakes,
  startMemoryCall,
  until,
} from "./fakes/agent_call.ts";
import { completedRecord } from "./fakes/call_records.ts";
import { FakeClock } from "./fakes/clock.ts";
import { textReply, toolCallReply } from "./fakes/openai_server.ts";
import { HELLO_SCRIPT } from "./fakes/stt_servers.ts";

const HELLO = await fixturePcm("hello_8000.wav");
const INTERRUPT = await fixturePcm("interrupt_8000.wav");
const GREETING = "Hello! How can I help you today?";
const REPROMPT = "Are you still there?";
const GOODBYE = "I haven't heard from you, so I'll end the call now. Goodbye!";
const ENV = { DEEPGRAM_API_KEY: "k", LLM_API_KEY: "k" };

interface Call {
  bot: AgentBot;
  output: MemoryOutput;
  clock: FakeClock;
  outcomes: CallOutcomes;
  [Symbol.asyncDispose](): Promise<void>;
}

function startCall(
  fakes: AgentFakes,
  options: AgentFactoryOptions & { auto?: boolean } = {},
): Call {
  const clock = new FakeClock();
  const outcomes = new CallOutcomes();
  const factory = createAgentBotFactory(fakes.config, {
    providers: fakes.providers,
    clock,
    outcomes,
    ...options,
  });
  const call = startMemoryCall<AgentBot>(factory, { auto: options.auto });
  return { ...call, clock, outcomes };
}

/** Marks of the utterances played so far, with the text each said. */
function saidLines(bot: AgentBot): string[] {
  return bot.report().transcript.filter((entry) => entry.role === "bot")
    .map((entry) => entry.text);
}

Deno.test("silence: after AGENT_SILENCE_REPROMPT_S the bot re-prompts, twice, then says goodbye and hangs up for silence", async () => {
  await using vendors = await startAgentFakes({ script: { turns: [] } });
  await using call = startCall(vendors);
  const { output, clock } = call;
  await until(() => output.played.length === 1, "the greeting played");
  await until(() => clock.pending > 0, "the silence timer");
  await clock.advance(7_999);
  assertEquals(output.utterances.length, 1, "not a moment early");
  await clock.advance(1);
  await until(() => output.played.length === 2, "the first re-prompt");
  await until(() => clock.pending > 0, "the silence timer, again");
  await clock.advance(8_000);
  await until(() => output.played.length === 3, "the second re-prompt");
  assertEquals(output.hangups, []);
  await until(() => clock.pending > 0, "the last silence");
  await clock.advance(8_000);
  await until(() => output.hangups.length === 1, "the hang-up");
  assertEquals(output.hangups, ["silence"]);
  assertEquals(output.played.length, 4, "the goodbye was heard first");
  assertEquals(call.outcomes.get("CA-test"), "end_call");
  await call.bot.closed;
  assertEquals(saidLines(call.bot), [GREETING, REPROMPT, REPROMPT, GOODBYE]);
  // The re-prompt is one fixed line: synthesised once, then from the cache.
  assertEquals(
    vendors.tts.texts().filter((text) => text === REPROMPT).length,
    1,
  );
  assertEquals(vendors.llm.requests.length, 0, "no model output involved");
});

Deno.test("silence: the caller's turn starts the re-prompt count over, and the lines are configurable", async () => {
  await using vendors = await startAgentFakes({
    script: HELLO_SCRIPT,
    replies: [textReply(["Sure, what can I do for you?"])],
    env: {
      AGENT_SILENCE_REPROMPT_S: "5",
      AGENT_SILENCE_REPROMPTS: "1",
      AGENT_REPROMPT_TEXT: "Hello, can you hear me?",
      AGENT_SILENCE_GOODBYE_TEXT: "Call us back any time. Bye!",
    },
  });
  await using call = startCall(vendors);
  const { bot, output, clock } = call;
  await until(() => output.played.length === 1, "the greeting played");
  await until(() => clock.pending > 0, "the silence timer");
  await clock.advance(5_000);
  await until(() => output.played.length === 2, "the re-prompt");
  // The caller answers: the count starts over.
  await feed((pcm) => bot.audio(pcm), HELLO, 8000);
  await until(() => output.played.length === 3, "the answer");
  await until(() => clock.pending > 0, "the silence timer after the answer");
  await clock.advance(5_000);
  await until(() => output.played.length === 4, "a re-prompt, not a goodbye");
  assertEquals(output.hangups, []);
  await until(() => clock.pending > 0, "the last silence");
  await clock.advance(5_000);
  await until(() => output.hangups.length === 1, "the hang-up");
  await bot.closed;
  assertEquals(saidLines(bot), [
    GREETING,
    "Hello, can you hear me?",
    "Sure, what can I do for you?",
    "Hello, can you hear me?",
    "Call us back any time. Bye!",
  ]);
});

Deno.test("silence: no re-prompt while the bot speaks or a tool runs", async () => {
  let release!: () => void;
  const slow: CodeTool = {
    name: "check_order",
    description: "Looks an order up.",
    parameters: { type: "object", properties: {} },
    run: () =>
      new Promise<{ ok: boolean }>((resolve) =>
        release = () => resolve({ ok: true })
      ),
  };
  await using vendors = await startAgentFakes({
    script: HELLO_SCRIPT,
    replies: [
      toolCallReply([{ id: "call_1", name: "check_order", arguments: ["{}"] }]),
      textReply(["It has shipped."]),
    ],
    env: { AGENT_GREETING: "Welcome to the clinic. ".repeat(10).trim() },
  });
  // The greeting plays only when the test moves the playback head.
  await using call = startCall(vendors, { auto: false, tools: [slow] });
  const { bot, output, clock } = call;
  await until(() => output.utterances[0]?.complete, "the greeting's audio");
  // Over 8 s, short of the 4.4 s greeting and its mark's 5 s of grace.
  await clock.advance(9_000);
  assertEquals(output.utterances.length, 1, "no re-prompt over the greeting");
  output.advance(60_000);
  await until(() => output.played.length === 1, "the greeting played");
  await feed((pcm) => bot.audio(pcm), HELLO, 8000);
  await until(() => release !== undefined, "the tool to run");
  await clock.advance(9_000);
  assertEquals(output.utterances.length, 1, "no re-prompt while the tool runs");
  release();
  await until(() => output.utterances.length === 2, "the answer");
  await until(() => output.utterances[1].complete, "the answer's audio");
  output.advance(60_000);
  await until(() => output.played.length === 2, "the answer played");
  await until(() => clock.pending > 0, "the silence timer");
  await clock.advance(8_000);
  await until(() => output.utterances.length === 3, "now the re-prompt");
  assertEquals(saidLines(bot).at(-1) ?? "", "It has shipped.");
});

Deno.test("silence: babble behind a silent caller does not hold off the re-prompt; the caller's voice does", async () => {
  const babble = await fixturePcm("noise/babble_only_3s_8000.wav");
  await using vendors = await startAgentFakes({ script: { turns: [] } });
  await using call = startCall(vendors);
  const { bot, output, clock } = call;
  await until(() => output.played.length === 1, "the greeting played");
  await until(() => clock.pending > 0, "the silence timer");
  await feed((pcm) => bot.audio(pcm), babble, 8000);
  await clock.advance(8_000);
  await until(() => output.played.length === 2, "the re-prompt over babble");
  await until(() => clock.pending > 0, "the silence timer again");
  // A caller's voice (no transcript came) stops the count while it lasts.
  await feed((pcm) => bot.audio(pcm), HELLO.subarray(0, 8000 * 2 * 2), 8000);
  await clock.advance(8_000);
  assertEquals(output.utterances.length, 2, "no re-prompt over the voice");
});

Deno.test("silence: AGENT_SILENCE_REPROMPT_S=0 turns re-prompts off", async () => {
  await using vendors = await startAgentFakes({
    script: { turns: [] },
    env: { AGENT_SILENCE_REPROMPT_S: "0" },
  });
  await using call = startCall(vendors);
  const { output, clock } = call;
  await until(() => output.played.length === 1, "the greeting played");
  await clock.advance(120_000);
  assertEquals(output.utterances.length, 1);
  assertEquals(output.hangups, []);
});

Deno.test("silence watch: re-prompts, gives up, waits while not ready, and starts over on an answer", async () => {
  const clock = new FakeClock();
  const events: string[] = [];
  let ready = true;
  const watch = new SilenceWatch({
    clock,
    config: { repromptS: 2, reprompts: 1 },
    ready: () => ready,
    onReprompt: (count) => events.push(`reprompt ${count}`),
    onGiveUp: () => events.push("give up"),
  });
  watch.idle();
  await clock.advance(1_000);
  watch.busy();
  await clock.advance(5_000);
  assertEquals(events, [], "busy stops the count");
  watch.idle();
  await clock.advance(2_000);
  assertEquals(events, ["reprompt 1"]);
  ready = false;
  watch.idle();
  await clock.advance(2_000);
  assertEquals(events, ["reprompt 1"], "not ready: nothing said or counted");
  ready = true;
  watch.answered();
  watch.idle();
  await clock.advance(2_000);
  watch.idle();
  await clock.advance(2_000);
  assertEquals(events, ["reprompt 1", "reprompt 1", "give up"]);
  watch.stop();
  watch.idle();
  assertEquals(clock.pending, 0);
});

Deno.test("silence lines follow the call's language: Hindi for hi-IN, English otherwise, configured lines first", () => {
  assertEquals(silenceLines(DEFAULT_SILENCE, "en-IN").reprompt, REPROMPT);
  const hindi = silenceLines(DEFAULT_SILENCE, "hi-IN");
  assertEquals(hindi.reprompt, "क्या आप अभी भी लाइन पर हैं?");
  assertStringIncludes(hindi.goodbye, "धन्यवाद");
  assertEquals(silenceLines(DEFAULT_SILENCE, "ta-IN").reprompt, REPROMPT);
  assertEquals(
    silenceLines({ ...DEFAULT_SILENCE, repromptText: "Hello?" }, "hi-IN")
      .reprompt,
    "Hello?",
  );
});

Deno.test("agent files set the silence and greeting settings under lower-camel keys, and a bad one is named", () => {
  const files: Record<string, string> = {
    "quiet.yaml": [
      "bargeIn:",
      "  afterMs: 900",
      "silence:",
      "  repromptS: 12",
      "  reprompts: 1",
      "  repromptText: Hello, are you there?",
      "  goodbyeText: Goodbye for now.",
      "",
    ].join("\n"),
    "bad.yaml": "silence:\n  reprompts: many\n  lines: 3\n",
  };
  const options = { readTextFile: (path: string) => files[path] };
  const config = loadAgentFile("quiet.yaml", ENV, options);
  assertEquals(config.bargeIn.afterMs, 900);
  assertEquals(config.silence, {
    repromptS: 12,
    reprompts: 1,
    repromptText: "Hello, are you there?",
    goodbyeText: "Goodbye for now.",
  });
  const error = assertThrows(
    () => loadAgentFile("bad.yaml", ENV, options),
    AgentFileError,
  );
  assertEquals(error.problems.length, 2, error.message);
  assertStringIncludes(error.message, "silence.reprompts");
  assertStringIncludes(error.message, "silence.lines");
});

Deno.test("silence and greeting settings: defaults, and bad values name the variable", () => {
  const config = loadAgentConfig(ENV);
  assertEquals(config.silence, {
    repromptS: 8,
    reprompts: 2,
    repromptText: undefined,
    goodbyeText: undefined,
  });
  assertEquals(config.bargeIn.afterMs, 600);
  for (
    const [name, value] of [
      ["AGENT_SILENCE_REPROMPT_S", "soon"],
      ["AGENT_SILENCE_REPROMPTS", "11"],
      ["AGENT_BARGE_IN_AFTER_MS", "-5"],
    ]
  ) {
    const error = assertThrows(
      () => loadAgentConfig({ ...ENV, [name]: value }),
      ConfigError,
    );
    assertEquals(error.variable, name);
    assertStringIncludes(error.message, `"${value}"`);
  }
});

Deno.test('greeting: a "hello?" in its first AGENT_BARGE_IN_AFTER_MS neither pauses nor cuts it; later speech does', async () => {
  await using vendors = await startAgentFakes({
    script: {
      turns: [{ text: "Hello?", speechStartMs: 500, turnMs: 60_000 }],
    },
    env: { AGENT_GREETING: "Welcome to the clinic. ".repeat(10).trim() },
  });
  await using call = startCall(vendors, { auto: false });
  const { bot, output, clock } = call;
  await until(() => output.utterances[0]?.complete, "the greeting's audio");
  // The fake clock stands still: all of it falls in the greeting's first 600 ms.
  await feed((pcm) => bot.audio(pcm), INTERRUPT, 8000);
  await until(() => vendors.stt.connections.length > 0, "speech-to-text");
  assertEquals(output.pauses, 0, "no pause");
  assertEquals(output.clears, 0, "no clear");
  await clock.advance(600);
  await feed((pcm) => bot.audio(pcm), INTERRUPT, 8000);
  await until(() => output.pauses + output.clears > 0, "the barge-in");
  assertGreater(output.pauses + output.clears, 0);
});

Deno.test("greeting: AGENT_BARGE_IN_AFTER_MS=0 lets the caller cut it at once", async () => {
  await using vendors = await startAgentFakes({
    script: { turns: [] },
    env: {
      AGENT_GREETING: "Welcome to the clinic. ".repeat(10).trim(),
      AGENT_BARGE_IN_AFTER_MS: "0",
    },
  });
  await using call = startCall(vendors, { auto: false });
  const { bot, output } = call;
  await until(() => output.utterances[0]?.complete, "the greeting's audio");
  await feed((pcm) => bot.audio(pcm), INTERRUPT, 8000);
  await until(() => output.pauses + output.clears > 0, "the barge-in");
  assertFalse(output.played.includes("agent-1-1"));
});

Deno.test("silence end to end: the server hangs up a silent caller after the re-prompts, and the record says silence", async () => {
  await using vendors = await startAgentFakes({
    script: { turns: [] },
    env: { AGENT_SILENCE_REPROMPT_S: "1", AGENT_SILENCE_REPROMPTS: "1" },
  });
  const factory = createAgentBotFactory(vendors.config, {
    providers: vendors.providers,
  });
  const server = await startServer(
    loadConfig({ HOST: "127.0.0.1", PORT: "0", KV_PATH: ":memory:" }),
    { createBot: factory },
  );
  try {
    const report = await simulateCall({
      url: `ws://127.0.0.1:${server.addr.port}/voicebot/ws?call_id=CA-quiet`,
      pcm: new Uint8Array(8000 * 2 * 2),
      sampleRate: 8000,
      waitForReplyMs: 10_000,
      maxWaitMs: 20_000,
    });
    assert(report.connected, report.error);
    assertEquals(report.endReason, "closed_by_bot");
    assertEquals(
      report.marksEchoed.filter((mark) => mark.startsWith("agent-")).length,
      3,
      "greeting, re-prompt, goodbye",
    );
    await until(() => server.registry.size === 0, "the call to end");
    const record = await completedRecord(
      `http://127.0.0.1:${server.addr.port}`,
      "CA-quiet",
    );
    assertEquals(record.ended.reason, "bot:silence");
    assertEquals(record.ended.outcome, "hangup");
    assertEquals(record.ended.detail, "silence");
    assertEquals(
      record.transcript.map((entry) => entry.text),
      [GREETING, REPROMPT, GOODBYE],
    );
  } finally {
    await server.shutdown();
  }
});
