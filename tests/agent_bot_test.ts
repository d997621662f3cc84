/**
 * The agent bot over an in-memory call output, with the real adapters
 * talking to fake vendor servers on 127.0.0.1.
 */
import {
  assert,
  assertEquals,
  assertFalse,
  assertGreater,
  assertNotEquals,
  assertStringIncludes,
} from "@std/assert";
import type { SampleRate } from "../src/audio/pcm.ts";
import type { AgentBot } from "../src/bots/agent/agent.ts";
import {
  type AgentFactoryOptions,
  createAgentBotFactory,
} from "../src/bots/agent/mod.ts";
import { CUT_OFF_MARK } from "../src/bots/agent/conversation.ts";
import { RECORDED_LINES } from "../src/bots/agent/recorded_lines.ts";
import { fallbackTone } from "../src/bots/agent/speech.ts";
import {
  type AgentFakes,
  type AgentFakesOptions,
  callInfo,
  feed,
  fixturePcm,
  type MemoryOutput,
  startAgentFakes,
  startMemoryCall,
  until,
} from "./fakes/agent_call.ts";
import {
  errorReply,
  hangReply,
  textReply,
  toolCallReply,
} from "./fakes/openai_server.ts";
import { HELLO_SCRIPT, HELLO_TRANSCRIPT } from "./fakes/stt_servers.ts";
import { fakeSpeech } from "./fakes/tts_servers.ts";

const HELLO = await fixturePcm("hello_8000.wav");
const INTERRUPT = await fixturePcm("interrupt_8000.wav");
const BACKCHANNEL = await fixturePcm("backchannel_8000.wav");
const SILENCE = new Uint8Array(8000 * 2);
const INTERRUPT_TEXT = "Wait, stop. Actually I meant next Monday.";
const GREETING = "Hello! How can I help you today?";
const FALLBACK =
  "Sorry, I'm having trouble right now. Could you please say that again?";

interface Call {
  bot: AgentBot;
  output: MemoryOutput;
  /** Waits for the greeting to be played, as the tests start from there. */
  greeted(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function startCall(
  fakes: AgentFakes,
  options: AgentFactoryOptions & { auto?: boolean; rate?: SampleRate } = {},
): Call {
  const factory = createAgentBotFactory(fakes.config, {
    providers: fakes.providers,
    ...options,
  });
  const call = startMemoryCall<AgentBot>(factory, options);
  const { output } = call;
  return {
    ...call,
    async greeted() {
      await until(() => output.utterances.length >= 1, "the greeting");
      if (!options.auto && options.auto !== undefined) {
        await until(() => output.utterances[0].complete, "greeting audio");
        output.advance(60_000);
      }
      await until(() => output.played.length >= 1, "the greeting played");
    },
  };
}

async function fakes(options: AgentFakesOptions): Promise<AgentFakes> {
  return await startAgentFakes({ script: HELLO_SCRIPT, ...options });
}

Deno.test("agent greets, then answers a caller turn piece by piece, each piece its own mark", async () => {
  await using vendors = await fakes({
    replies: [
      textReply([
        "Sure",
        ", I can help",
        " with that. What time",
        " suits you?",
      ]),
    ],
  });
  await using call = startCall(vendors);
  const { bot, output } = call;
  await call.greeted();
  await feed((pcm) => bot.audio(pcm), HELLO, 8000);
  await until(() => output.played.length >= 3, "the reply played");

  assertEquals(output.utterances.map((u) => u.mark), [
    "agent-1-1",
    "agent-2-1",
    "agent-2-2",
  ]);
  const [greeting, first, second] = output.utterances;
  assertEquals(greeting.pcm, fakeSpeech(GREETING, 8000));
  assertEquals(first.pcm, fakeSpeech("Sure, I can help with that.", 8000));
  assertEquals(second.pcm, fakeSpeech("What time suits you?", 8000));
  const texts = vendors.tts.texts();
  assert(texts.includes(FALLBACK), "the fallback line is synthesised ahead");
  assertEquals(texts.filter((text) => text !== FALLBACK), [
    GREETING,
    "Sure, I can help with that.",
    "What time suits you?",
  ]);

  const request = vendors.llm.requests[0].body ?? {};
  assertEquals(request.stream, true);
  assertEquals(request.model, "fake-model");
  const messages = request.messages as { role: string; content: string }[];
  assertEquals(messages.map((m) => m.role), ["system", "assistant", "user"]);
  assertEquals(messages[1].content, GREETING);
  assertEquals(messages[2].content, HELLO_TRANSCRIPT);
  assertEquals(
    (request.tools as { function: { name: string } }[]).map((tool) =>
      tool.function.name
    ),
    ["end_call", "transfer"],
  );
  await until(() => bot.history().length === 3, "the reply in the history");
  assertEquals(bot.history()[2], {
    role: "assistant",
    content: "Sure, I can help with that. What time suits you?",
  });

  const [turn] = bot.timeline();
  assertEquals(turn.turn, 1);
  assertEquals(turn.trigger, "stt");
  assertEquals(turn.outcome, "answered");
  for (
    const field of [
      "speechEndToFinalMs",
      "finalToFirstTokenMs",
      "firstTokenToFirstTtsByteMs",
      "firstTtsByteToFirstMediaMs",
      "firstMediaToFirstMarkMs",
      "speechEndToFirstMediaMs",
    ] as const
  ) {
    assertEquals(typeof turn[field], "number", field);
  }
});

Deno.test("agent's second call gets the greeting from the cache with no synthesis", async () => {
  await using vendors = await fakes({});
  const factory = createAgentBotFactory(vendors.config, {
    providers: vendors.providers,
  });
  const greetings: Uint8Array[] = [];
  for (const callId of ["CA-1", "CA-2"]) {
    await using call = startMemoryCall<AgentBot>(factory, {
      info: callInfo(8000, callId),
    });
    const { output } = call;
    await until(() => output.played.length === 1, "the greeting played");
    greetings.push(output.utterances[0].pcm);
  }
  assertEquals(greetings[1], greetings[0]);
  assertEquals(vendors.tts.texts(), [GREETING, FALLBACK]);
  assertEquals(factory.cache.size, 2);
});

Deno.test("barge-in clears the reply, aborts the model and voice, and keeps only what was heard", async () => {
  const long = [
    "Our clinic is open from nine in the morning until six in the evening.",
    " On Saturdays we close at one, and on Sundays we are closed.",
    " Doctor Rao sees patients on Mondays and Thursdays.",
    " You can also book online at any time.",
  ];
  await using vendors = await fakes({
    script: {
      turns: [
        { text: HELLO_TRANSCRIPT, speechStartMs: 520, turnMs: 4600 },
        { text: INTERRUPT_TEXT, speechStartMs: 1400, turnMs: 5000 },
      ],
    },
    replies: [
      // Two sentences, the start of a third, then nothing until the call
      // ends: the model is still streaming when the caller speaks.
      textReply([long[0], long[1], " Doctor Rao"], {
        end: "hang",
        finishReason: null,
      }),
      textReply(["Monday it is."]),
    ],
    env: { LLM_TIMEOUT_MS: "20000" },
  });
  await using call = startCall(vendors, { auto: false });
  const { bot, output } = call;
  await call.greeted();
  // 4.6 s of the hello fixture end the first turn; its last second of
  // silence belongs to the second.
  await feed((pcm) => bot.audio(pcm), HELLO, 8000);
  await until(() => output.utterances.length >= 3, "the reply's first pieces");
  await until(() => output.utterances[1].complete, "the first piece's audio");
  // The caller hears half of the first piece, then speaks over the bot.
  const firstPiece = output.utterances[1];
  output.advance(firstPiece.pcm.length / 16 / 2);
  await feed((pcm) => bot.audio(pcm), INTERRUPT, 8000);
  await until(() => output.clears === 1, "the clear");

  await until(() => vendors.llm.requests.length === 2, "the second turn");
  await until(
    () => output.utterances.some((u) => u.mark === "agent-3-1" && u.complete),
    "the answer to it",
  );
  output.advance(60_000);
  await until(() => output.played.includes("agent-3-1"), "the answer played");
  assertEquals(output.clears, 1);
  assertEquals(await vendors.llm.requests[0].outcome, "cancelled");
  const interrupted = output.utterances.filter((u) =>
    u.mark.startsWith("agent-2-")
  );
  assertEquals(
    interrupted.map((u) => u.playback?.status),
    ["cleared", "cleared"],
    "the two pieces queued were cleared, and nothing more was queued",
  );
  assertEquals(
    output.utterances.slice(3).map((u) => u.mark),
    ["agent-3-1"],
  );
  assertFalse(
    vendors.tts.texts().some((text) => text.includes("Doctor Rao")),
    "the sentence still streaming was never synthesised",
  );

  const messages = vendors.llm.messages(1);
  const truncated = messages[3];
  assertEquals(truncated.role, "assistant");
  assert(truncated.content.endsWith(CUT_OFF_MARK), truncated.content);
  assert(
    long[0].startsWith(truncated.content.slice(0, -1)),
    truncated.content,
  );
  assertEquals(messages[4], { role: "user", content: INTERRUPT_TEXT });
  await until(() => bot.timeline()[1]?.outcome === "answered", "the outcome");
  assertEquals(bot.timeline()[0].outcome, "interrupted");

  const { transcript, turns } = bot.report();
  assertEquals(transcript.map((line) => line.role), [
    "bot",
    "caller",
    "bot",
    "caller",
    "bot",
  ]);
  assertEquals(transcript[1].text, HELLO_TRANSCRIPT);
  assertEquals(transcript[3].text, INTERRUPT_TEXT);
  assertEquals(transcript[4].text, "Monday it is.");
  const said = transcript[2].text;
  assert(
    long.join("").startsWith(said) && said.length < long.join("").length,
    `what the model said before it was stopped: ${said}`,
  );
  assertEquals(transcript[2].interrupted, true);
  assertEquals(transcript[2].heardText, truncated.content);
  assertEquals(transcript[4].heardText, undefined, "heard in full");
  const times = transcript.map((line) => line.atMs ?? -1);
  assert(
    times.every((at, i) => at >= 0 && at >= (times[i - 1] ?? 0)),
    `${times}`,
  );
  assertEquals(turns.map((turn) => turn.turn), [1, 2]);
});

Deno.test("a backchannel over the bot pauses it, then it resumes, and it is not a turn", async () => {
  await using vendors = await fakes({
    script: {
      turns: [
        { text: HELLO_TRANSCRIPT, speechStartMs: 520, turnMs: 4600 },
        { text: "Hmm. Okay.", speechStartMs: 1300, turnMs: 3000 },
        { text: INTERRUPT_TEXT, speechStartMs: 2000, turnMs: 5000 },
      ],
    },
    replies: [
      textReply(["Our clinic is open from nine until six."]),
      textReply(["Monday it is."]),
    ],
  });
  await using call = startCall(vendors, { auto: false });
  const { bot, output } = call;
  await call.greeted();
  await feed((pcm) => bot.audio(pcm), HELLO, 8000);
  await until(() => output.utterances.length === 2, "the reply");
  await feed((pcm) => bot.audio(pcm), BACKCHANNEL, 8000);
  await feed((pcm) => bot.audio(pcm), SILENCE, 8000);
  assertGreater(output.pauses, 0, "the bot stopped talking over the caller");
  assertFalse(output.paused, "and went on once they were quiet");
  await until(() => output.utterances[1].complete, "the reply's audio");
  output.advance(60_000);
  await until(() => output.played.length === 2, "the reply played in full");
  assertEquals(output.resumes, output.pauses);
  // The next real turn shows what the model was told in between.
  await feed((pcm) => bot.audio(pcm), INTERRUPT, 8000);
  await until(() => vendors.llm.requests.length === 2, "the next turn");
  assertEquals(output.clears, 0);
  assertEquals(vendors.llm.messages(1).slice(2), [
    { role: "user", content: HELLO_TRANSCRIPT },
    { role: "assistant", content: "Our clinic is open from nine until six." },
    { role: "user", content: INTERRUPT_TEXT },
  ]);
  assertEquals(bot.timeline()[0].outcome, "answered");
});

Deno.test("a backchannel's transcript resumes the bot without waiting for the silence", async () => {
  await using vendors = await fakes({
    script: {
      turns: [
        { text: HELLO_TRANSCRIPT, speechStartMs: 520, turnMs: 4600 },
        // The final comes 1921 ms into the backchannel, 321 ms after "Okay".
        { text: "Hmm. Okay.", speechStartMs: 1300, turnMs: 3000 },
      ],
    },
    replies: [textReply(["Our clinic is open from nine until six."])],
  });
  await using call = startCall(vendors, { auto: false });
  const { bot, output } = call;
  await call.greeted();
  await feed((pcm) => bot.audio(pcm), HELLO, 8000);
  await until(() => output.utterances.length === 2, "the reply");
  // Up to 400 ms after "Okay": less than the 600 ms that resume on silence.
  await feed((pcm) => bot.audio(pcm), BACKCHANNEL.subarray(0, 32_000), 8000);
  assertEquals(output.pauses, 1);
  await until(() => !output.paused, "the bot resumed on the transcript");
  assertEquals(output.resumes, 1);
  assertEquals(output.clears, 0);
});

Deno.test("a model answering 500 gets the fallback line, and the call goes on", async () => {
  await using vendors = await fakes({
    script: {
      turns: [
        { text: HELLO_TRANSCRIPT, speechStartMs: 520, turnMs: 4600 },
        { text: INTERRUPT_TEXT, speechStartMs: 1400, turnMs: 5000 },
      ],
    },
    replies: [
      errorReply(500, "The server had an error while processing your request."),
      textReply(["Monday works."]),
    ],
  });
  const failures: string[] = [];
  await using call = startCall(vendors, {
    hooks: {
      providerError: (error) =>
        failures.push(`${error.provider} ${error.kind} ${error.status}`),
    },
  });
  const { bot, output } = call;
  await call.greeted();
  await until(
    () => vendors.tts.texts().includes(FALLBACK),
    "the fallback line synthesised ahead",
  );
  await feed((pcm) => bot.audio(pcm), HELLO, 8000);
  await until(() => output.played.length === 2, "the fallback line played");
  assertEquals(
    failures.length,
    1,
    "the failure reaches the provider-error hook (and /metrics)",
  );
  assertStringIncludes(failures[0], "http 500");
  assertEquals(output.utterances[1].pcm, fakeSpeech(FALLBACK, 8000));
  await feed((pcm) => bot.audio(pcm), INTERRUPT, 8000);
  await until(() => output.played.length === 3, "the next answer");
  assertEquals(output.utterances[2].pcm, fakeSpeech("Monday works.", 8000));
  assertEquals(bot.timeline().map((turn) => turn.outcome), [
    "failed",
    "answered",
  ]);
  const messages = vendors.llm.messages(1);
  assertEquals(messages[3], { role: "assistant", content: FALLBACK });
});

Deno.test("a model that never answers times out into the fallback line", async () => {
  await using vendors = await fakes({
    replies: [hangReply()],
    env: { LLM_TIMEOUT_MS: "300" },
  });
  await using call = startCall(vendors);
  const { bot, output } = call;
  await call.greeted();
  await feed((pcm) => bot.audio(pcm), HELLO, 8000);
  await until(() => output.played.length === 2, "the fallback line played");
  assertEquals(output.utterances[1].pcm, fakeSpeech(FALLBACK, 8000));
  assertEquals(bot.timeline()[0].outcome, "failed");
});

Deno.test("a voice failing mid-reply is followed by the cached fallback line", async () => {
  await using vendors = await fakes({
    replies: [textReply(["Sure thing. ", "Let me check that for you."])],
  });
  await using call = startCall(vendors);
  const { bot, output } = call;
  await call.greeted();
  await until(() => vendors.tts.requests.length === 2, "the warm-up");
  vendors.tts.script({ kind: "speak" }, { kind: "server_error" });
  await feed((pcm) => bot.audio(pcm), HELLO, 8000);
  await until(() => output.played.length === 3, "the fallback line played");
  assertEquals(output.utterances.map((u) => u.pcm), [
    fakeSpeech(GREETING, 8000),
    fakeSpeech("Sure thing.", 8000),
    fakeSpeech(FALLBACK, 8000),
  ]);
  await until(() => bot.history().length === 3, "the history");
  assertEquals(bot.history()[2], {
    role: "assistant",
    content: `Sure thing. ${FALLBACK}`,
  });
});

Deno.test("a voice refusing every request leaves the caller the bundled recording of the fallback line, never a tone or silence", async () => {
  await using vendors = await fakes({});
  vendors.tts.script({ kind: "unauthorized" }, { kind: "unauthorized" });
  await using call = startCall(vendors);
  await until(() => call.output.played.length === 1, "the recording played");
  assertEquals(
    call.output.utterances[0].pcm,
    await RECORDED_LINES.fallback.audio.pcm(8000),
  );
  assertNotEquals(call.output.utterances[0].pcm, fallbackTone(8000));
});

Deno.test("keypad digits interrupt the bot, reach the hook and reach the model as one turn", async () => {
  const pressed: string[] = [];
  await using vendors = await fakes({
    replies: [textReply(["You pressed one two."])],
    env: { AGENT_DTMF_TIMEOUT_MS: "5000" },
  });
  await using call = startCall(vendors, {
    hooks: {
      dtmf: (digit) => {
        pressed.push(digit);
        return digit !== "*";
      },
    },
  });
  const { bot, output } = call;
  await call.greeted();
  for (const digit of ["1", "*", "2", "#"]) bot.dtmf(digit);
  await until(() => output.played.length === 2, "the answer");
  assertEquals(pressed, ["1", "*", "2", "#"]);
  const messages = vendors.llm.messages(0);
  assertEquals(messages.at(-1), { role: "user", content: "Keypad input: 12#" });
  assertEquals(bot.timeline()[0].trigger, "dtmf");
});

Deno.test("keypad digits without # go to the model after the pause", async () => {
  await using vendors = await fakes({
    replies: [textReply(["Got it."])],
    env: { AGENT_DTMF_TIMEOUT_MS: "100" },
  });
  await using call = startCall(vendors);
  await call.greeted();
  call.bot.dtmf("4");
  call.bot.dtmf("2");
  await until(() => call.output.played.length === 2, "the answer");
  const messages = vendors.llm.messages(0);
  assertEquals(messages.at(-1)?.content, "Keypad input: 42");
});

Deno.test("end_call says the goodbye, waits for its mark, then hangs up", async () => {
  const ended: (string | undefined)[] = [];
  await using vendors = await fakes({
    replies: [
      toolCallReply([{
        id: "call_1",
        name: "end_call",
        arguments: [
          '{"goodbye":"Thanks for calling, bye!",',
          '"reason":"done"}',
        ],
      }]),
    ],
  });
  await using call = startCall(vendors, {
    auto: false,
    hooks: { endCall: (_info, { reason }) => ended.push(reason) },
  });
  const { bot, output } = call;
  await call.greeted();
  await feed((pcm) => bot.audio(pcm), HELLO, 8000);
  await until(() => output.utterances.length === 2, "the goodbye");
  await until(() => output.utterances[1].complete, "its audio");
  assertEquals(output.hangups, [], "no hangup before the goodbye is heard");
  output.advance(60_000);
  await until(() => output.hangups.length === 1, "the hangup");
  assertEquals(output.hangups, ["end_call"]);
  assertEquals(
    output.utterances[1].pcm,
    fakeSpeech("Thanks for calling, bye!", 8000),
  );
  assertEquals(ended, ["done"]);
});

Deno.test("transfer says the configured line and closes the stream for the flow's next applet", async () => {
  await using vendors = await fakes({
    replies: [toolCallReply([{ id: "t1", name: "transfer", arguments: [] }])],
  });
  const factoryOptions = { providers: vendors.providers };
  const factory = createAgentBotFactory(vendors.config, factoryOptions);
  const call = startMemoryCall<AgentBot>(factory, {
    info: callInfo(8000, "CA-transfer"),
  });
  const { bot, output } = call;
  try {
    await until(() => output.played.length === 1, "the greeting");
    await feed((pcm) => bot.audio(pcm), HELLO, 8000);
    await until(() => output.hangups.length === 1, "the hangup");
  } finally {
    await call[Symbol.asyncDispose]();
  }
  assertEquals(output.hangups, ["transfer"]);
  assertEquals(
    output.utterances[1].pcm,
    fakeSpeech("Please hold while I transfer your call.", 8000),
  );
  assertEquals(factory.outcomes.get("CA-transfer"), "transfer");
});

Deno.test("a newer caller turn replaces a reply still waiting for the model", async () => {
  await using vendors = await fakes({
    script: {
      turns: [
        { text: HELLO_TRANSCRIPT, speechStartMs: 520, turnMs: 4600 },
        { text: INTERRUPT_TEXT, speechStartMs: 1400, turnMs: 5000 },
      ],
    },
    replies: [hangReply(), textReply(["Monday it is."])],
    env: { LLM_TIMEOUT_MS: "20000" },
  });
  await using call = startCall(vendors);
  const { bot, output } = call;
  await call.greeted();
  await feed((pcm) => bot.audio(pcm), HELLO, 8000);
  await until(() => vendors.llm.requests.length === 1, "the first request");
  await feed((pcm) => bot.audio(pcm), INTERRUPT, 8000);
  await until(() => output.played.length === 2, "the answer");
  assertEquals(output.utterances[1].pcm, fakeSpeech("Monday it is.", 8000));
  const messages = vendors.llm.messages(1);
  assertEquals(messages.slice(2), [
    { role: "user", content: HELLO_TRANSCRIPT },
    { role: "user", content: INTERRUPT_TEXT },
  ]);
});

Deno.test("agent speaks at 16 and 24 kHz with Sarvam and ElevenLabs, resampling for Sarvam's 16 kHz", async () => {
  for (const rate of [16000, 24000] as const) {
    await using vendors = await fakes({
      stt: "sarvam",
      tts: "elevenlabs",
      replies: [textReply(["Namaste."])],
    });
    await using call = startCall(vendors, { rate });
    const { bot, output } = call;
    await call.greeted();
    const hello = await fixturePcm(`hello_${rate}.wav`);
    await feed((pcm) => bot.audio(pcm), hello, rate);
    await until(() => output.played.length === 2, `the answer at ${rate} Hz`);
    assertEquals(output.utterances[1].pcm, fakeSpeech("Namaste.", rate));
    const connection = await vendors.stt.connection();
    assertEquals(connection.url.searchParams.get("sample_rate"), "16000");
    assertGreater(connection.audioBytes, 0);
    assertStringIncludes(
      vendors.tts.requests[0].query.output_format ?? "",
      String(rate),
    );
  }
});

Deno.test("speech-to-text dropping mid-call is reopened and the caller's next turn is answered", async () => {
  await using vendors = await fakes({ replies: [textReply(["Of course."])] });
  vendors.stt.script({ kind: "drop", afterBytes: SILENCE.length });
  await using call = startCall(vendors);
  const { bot, output } = call;
  await call.greeted();
  await feed((pcm) => bot.audio(pcm), SILENCE, 8000);
  await vendors.stt.connection(1);
  await feed((pcm) => bot.audio(pcm), HELLO, 8000);
  await until(() => output.played.length === 2, "the answer");
  assertEquals(output.utterances[1].pcm, fakeSpeech("Of course.", 8000));
  assertEquals(vendors.llm.messages(0).at(-1), {
    role: "user",
    content: HELLO_TRANSCRIPT,
  });
});

Deno.test("a caller speaking while speech-to-text is down hears the fallback line", async () => {
  await using vendors = await fakes({
    env: { AGENT_TURN_TIMEOUT_MS: "200" },
  });
  vendors.stt.script(
    ...Array.from({ length: 10 }, () => ({ kind: "unauthorized" as const })),
  );
  await using call = startCall(vendors);
  const { bot, output } = call;
  await call.greeted();
  await until(() => vendors.stt.requests.length >= 2, "a failed reconnect");
  await feed((pcm) => bot.audio(pcm), HELLO, 8000);
  await until(() => output.played.length === 2, "the fallback line");
  assertEquals(output.utterances[1].pcm, fakeSpeech(FALLBACK, 8000));
  assertEquals(vendors.llm.requests.length, 0);
});

Deno.test("a model answering with nothing, or only an unknown tool, gets the fallback line", async () => {
  await using vendors = await fakes({
    script: {
      turns: [
        { text: HELLO_TRANSCRIPT, speechStartMs: 520, turnMs: 4600 },
        { text: INTERRUPT_TEXT, speechStartMs: 1400, turnMs: 5000 },
      ],
    },
    replies: [
      textReply([]),
      toolCallReply([{ id: "x", name: "lookup_order", arguments: ["{}"] }]),
    ],
  });
  await using call = startCall(vendors);
  const { bot, output } = call;
  await call.greeted();
  await feed((pcm) => bot.audio(pcm), HELLO, 8000);
  await until(() => output.played.length === 2, "the first fallback line");
  await feed((pcm) => bot.audio(pcm), INTERRUPT, 8000);
  await until(() => output.played.length === 3, "the second fallback line");
  assertEquals(output.utterances[1].pcm, fakeSpeech(FALLBACK, 8000));
  assertEquals(output.utterances[2].pcm, fakeSpeech(FALLBACK, 8000));
});

Deno.test("an acknowledgement after the bot has finished is a turn of its own", async () => {
  await using vendors = await fakes({
    script: {
      turns: [
        { text: HELLO_TRANSCRIPT, speechStartMs: 520, turnMs: 4600 },
        { text: "Okay.", speechStartMs: 1300, turnMs: 3000 },
      ],
    },
    replies: [
      textReply(["Shall I book nine o'clock?"]),
      textReply(["Done."]),
    ],
  });
  await using call = startCall(vendors);
  const { bot, output } = call;
  await call.greeted();
  await feed((pcm) => bot.audio(pcm), HELLO, 8000);
  await until(() => output.played.length === 2, "the question played");
  await until(() => bot.history().length === 3, "the question heard");
  await feed((pcm) => bot.audio(pcm), BACKCHANNEL, 8000);
  await until(() => output.played.length === 3, "the answer to it");
  assertEquals(vendors.llm.messages(1).at(-1), {
    role: "user",
    content: "Okay.",
  });
});
