/**
 * The agent end to end: the real server on a random port, the simulator (a
 * fake Exotel over a real WebSocket) playing fixture speech in real time,
 * and the real adapters talking to fake vendor servers on 127.0.0.1.
 */
import { assert, assertEquals, assertGreater } from "@std/assert";
import { padToAlignment, type SampleRate } from "../src/audio/pcm.ts";
import { CUT_OFF_MARK } from "../src/bots/agent/conversation.ts";
import { simulateCall } from "../tools/simulator.ts";
import { fixturePcm, until } from "./fakes/agent_call.ts";
import { startAgentServer } from "./fakes/bot_server.ts";
import { textReply, toolCallReply } from "./fakes/openai_server.ts";
import { HELLO_TRANSCRIPT } from "./fakes/stt_servers.ts";
import { fakeSpeech } from "./fakes/tts_servers.ts";
import { concat } from "@std/bytes";

const GREETING = "Hello! How can I help you today?";
const FALLBACK =
  "Sorry, I'm having trouble right now. Could you please say that again?";
const INTERRUPT_TEXT = "Wait, stop. Actually I meant next Monday.";
/** A second of silence before the caller speaks, so the greeting is heard first. */
const LEAD_MS = 1000;

/** The hello fixture's turn, a second later. */
const HELLO_TURN = {
  text: HELLO_TRANSCRIPT,
  speechStartMs: 520 + LEAD_MS,
  turnMs: 4600 + LEAD_MS,
};

function silence(ms: number, rate: number): Uint8Array {
  return new Uint8Array(rate / 1000 * ms * 2);
}

/** What the player sends for `texts` spoken one piece each: the fake voice, each piece padded to 320 bytes. */
function spoken(texts: string[], rate: number): Uint8Array {
  return concat(texts.map((text) => padToAlignment(fakeSpeech(text, rate))));
}

Deno.test("a call through the server: transcript, streamed answer and voice come back as 320-byte chunks with a mark per piece", async () => {
  await using agent = await startAgentServer({
    script: { turns: [HELLO_TURN] },
    replies: [
      textReply([
        "Sure",
        ", I can help",
        " with that. What time",
        " suits you?",
      ]),
    ],
  });
  const hello = await fixturePcm("hello_8000.wav");
  const report = await simulateCall({
    url: agent.url,
    pcm: concat([silence(LEAD_MS, 8000), hello]),
    sampleRate: 8000,
    waitForReplyMs: 1000,
    maxWaitMs: 10_000,
  });
  assert(report.connected, report.error);
  assertEquals(report.badChunks, []);
  assertEquals(report.badFrames, []);
  assertEquals(
    report.receivedPcm,
    spoken(
      [GREETING, "Sure, I can help with that.", "What time suits you?"],
      8000,
    ),
  );
  assertEquals(report.marksReceived, ["agent-1-1", "agent-2-1", "agent-2-2"]);
  assertEquals(report.marksEchoed, report.marksReceived);
  assertEquals(report.clearsReceived, 0);
  assertEquals(agent.vendors.llm.messages(0).at(-1), {
    role: "user",
    content: HELLO_TRANSCRIPT,
  });
  const [turn] = agent.bots[0].timeline();
  assertEquals(turn.outcome, "answered");
  assertEquals(typeof turn.speechEndToFirstMediaMs, "number");
  assertEquals(typeof turn.firstMediaToFirstMarkMs, "number");
});

Deno.test("barge-in through the server: the caller's interruption clears the reply, and the model hears only what was played", async () => {
  const reply = [
    "Our clinic is open from nine in the morning until six in the evening on weekdays.",
    " On Saturdays we close at one in the afternoon, and on Sundays we stay closed.",
    " Doctor Rao sees patients on Mondays and Thursdays, and Doctor Iyer on the other days.",
    " You can also book an appointment online at any time of the day.",
  ];
  await using agent = await startAgentServer({
    tts: "sarvam",
    script: {
      turns: [
        HELLO_TURN,
        { text: INTERRUPT_TEXT, speechStartMs: 800, turnMs: 4500 },
      ],
    },
    replies: [textReply(reply), textReply(["Monday it is."])],
  });
  const hello = await fixturePcm("hello_8000.wav");
  const interrupt = await fixturePcm("interrupt_8000.wav");
  const greetingBytes = padToAlignment(fakeSpeech(GREETING, 8000)).length;
  let received = 0;
  let interrupted = false;
  const report = await simulateCall({
    url: agent.url,
    pcm: concat([silence(LEAD_MS, 8000), hello]),
    sampleRate: 8000,
    waitForReplyMs: 1500,
    maxWaitMs: 15_000,
    onReplyAudio: (pcm, caller) => {
      received += pcm.length;
      if (!interrupted && received > greetingBytes + 3200) {
        interrupted = true;
        caller.play(interrupt);
      }
    },
  });
  assert(report.connected, report.error);
  assertEquals(report.badChunks, []);
  assertEquals(report.clearsReceived, 1);
  assertGreater(report.clearedBytes, 0);
  assert(
    !report.marksReceived.includes("agent-2-4"),
    `the last piece was never sent: ${report.marksReceived}`,
  );
  assert(report.marksEchoed.includes("agent-3-1"), "the new turn answered");
  const full = spoken(reply.map((text) => text.trim()), 8000).length;
  assert(
    report.received.pcmBytes < greetingBytes + full,
    "the rest of the reply was not sent",
  );

  const messages = agent.vendors.llm.messages(1);
  const heard = messages[3];
  assertEquals(heard.role, "assistant");
  assert(heard.content.endsWith(CUT_OFF_MARK), heard.content);
  assert(
    reply.join("").trim().startsWith(heard.content.slice(0, -1)),
    heard.content,
  );
  assert(heard.content.length < reply.join("").length - 20, heard.content);
  assertEquals(messages[4], { role: "user", content: INTERRUPT_TEXT });
  await until(() => agent.bots[0].timeline().length === 2, "both turns");
  assertEquals(agent.bots[0].timeline()[0].outcome, "interrupted");
});

Deno.test("a backchannel over the bot through the server: it pauses, resumes where the caller stopped hearing, and the whole reply is heard", async () => {
  const reply = [
    "Our clinic is open from nine in the morning until six in the evening on weekdays.",
    " On Saturdays we close at one in the afternoon, and on Sundays we stay closed.",
  ];
  await using agent = await startAgentServer({
    script: {
      turns: [
        HELLO_TURN,
        // No transcript in time: the voice guard alone decides.
        { text: "Hmm. Okay.", speechStartMs: 60_000, turnMs: 90_000 },
      ],
    },
    replies: [textReply(reply)],
  });
  const hello = await fixturePcm("hello_8000.wav");
  const backchannel = await fixturePcm("backchannel_8000.wav");
  const greetingBytes = padToAlignment(fakeSpeech(GREETING, 8000)).length;
  let received = 0;
  let spokeOver = false;
  const report = await simulateCall({
    url: agent.url,
    pcm: concat([silence(LEAD_MS, 8000), hello]),
    sampleRate: 8000,
    waitForReplyMs: 1500,
    maxWaitMs: 20_000,
    onReplyAudio: (pcm, caller) => {
      received += pcm.length;
      if (!spokeOver && received > greetingBytes + 3200) {
        spokeOver = true;
        caller.play(backchannel);
      }
    },
  });
  assert(report.connected, report.error);
  assertEquals(report.badChunks, []);
  assertEquals(report.clearsReceived, 1, "the pause cleared Exotel's queue");
  assertGreater(report.clearedBytes, 0);
  assertEquals(
    report.heardPcm,
    spoken([GREETING, ...reply.map((text) => text.trim())], 8000),
    "every piece was heard once, in full",
  );
  assertEquals(
    report.marksEchoed.filter((name) => name.startsWith("agent-2")),
    [
      "agent-2-1",
      "agent-2-2",
    ],
  );
  assertEquals(agent.vendors.llm.requests.length, 1, "no turn was answered");
  const bot = agent.bots[0];
  assertEquals(bot.history().at(-1), {
    role: "assistant",
    content: reply.join(""),
  });
  assertEquals(bot.timeline()[0].outcome, "answered");
});

Deno.test("a voice that hangs gets the fallback line, and the caller's next turn is answered", async () => {
  await using agent = await startAgentServer({
    script: {
      // The question comes 3 s after the hello, once the fallback line is over.
      turns: [HELLO_TURN, {
        text: "What are your opening hours on Sunday?",
        speechStartMs: 4580,
        turnMs: 6980,
      }],
    },
    replies: [textReply(["Let me check."]), textReply(["We open at nine."])],
    env: { TTS_TIMEOUT_MS: "500" },
  });
  agent.vendors.tts.script(
    { kind: "speak" },
    { kind: "speak" },
    { kind: "hang" },
  );
  const hello = await fixturePcm("hello_8000.wav");
  const question = await fixturePcm("question_8000.wav");
  const report = await simulateCall({
    url: agent.url,
    pcm: concat([silence(LEAD_MS, 8000), hello, silence(3000, 8000), question]),
    sampleRate: 8000,
    waitForReplyMs: 1000,
    maxWaitMs: 10_000,
  });
  assert(report.connected, report.error);
  assertEquals(report.badChunks, []);
  assertEquals(
    report.receivedPcm,
    spoken([GREETING, FALLBACK, "We open at nine."], 8000),
  );
  assertEquals(agent.bots[0].timeline().map((turn) => turn.outcome), [
    "failed",
    "answered",
  ]);
});

Deno.test("keypad digits reach the model, and end_call says goodbye, waits for its mark and closes the stream", async () => {
  await using agent = await startAgentServer({
    // The caller only presses keys.
    script: { turns: [] },
    replies: [
      toolCallReply([{ id: "call_1", name: "end_call", arguments: ["{}"] }], {
        text: ["Thank you.", " Goodbye!"],
      }),
    ],
  });
  const report = await simulateCall({
    url: agent.url,
    pcm: silence(2000, 8000),
    sampleRate: 8000,
    dtmf: [{ atMs: 1000, digit: "1" }, { atMs: 1200, digit: "#" }],
    waitForReplyMs: 8000,
    maxWaitMs: 10_000,
  });
  assertEquals(report.endReason, "closed_by_bot");
  assertEquals(report.closeCode, 1000);
  assertEquals(report.badChunks, []);
  assertEquals(
    report.receivedPcm,
    spoken([GREETING, "Thank you.", "Goodbye!"], 8000),
  );
  assertEquals(report.marksEchoed, ["agent-1-1", "agent-2-1", "agent-2-2"]);
  assertEquals(agent.vendors.llm.messages(0).at(-1), {
    role: "user",
    content: "Keypad input: 1#",
  });
  assertEquals(agent.bots[0].timeline()[0].trigger, "dtmf");
});

Deno.test("calls at 16 and 24 kHz at once, on Sarvam speech-to-text and ElevenLabs voices, are answered at their own rate", async () => {
  await using agent = await startAgentServer({
    stt: "sarvam",
    tts: "elevenlabs",
    script: { turns: [HELLO_TURN] },
    replies: [],
  });
  agent.vendors.llm.enqueue(
    textReply(["Namaste."]),
    textReply(["Namaste."]),
  );
  const rates: SampleRate[] = [16000, 24000];
  const reports = await Promise.all(rates.map(async (rate) =>
    simulateCall({
      url: agent.url,
      pcm: concat([
        silence(LEAD_MS, rate),
        await fixturePcm(`hello_${rate}.wav`),
      ]),
      sampleRate: rate,
      callSid: `CA-${rate}`,
      waitForReplyMs: 1000,
      maxWaitMs: 10_000,
    })
  ));
  for (const [i, report] of reports.entries()) {
    const rate = rates[i];
    assert(report.connected, `${rate} Hz: ${report.error}`);
    assertEquals(report.badChunks, [], `${rate} Hz`);
    assertEquals(
      report.receivedPcm,
      spoken([GREETING, "Namaste."], rate),
      `${rate} Hz`,
    );
    assertEquals(report.marksEchoed, ["agent-1-1", "agent-2-1"]);
  }
  const formats = agent.vendors.tts.requests.map((r) => r.query.output_format);
  assert(formats.includes("pcm_16000") && formats.includes("pcm_24000"));
  const sttRates = agent.vendors.stt.connections.map((c) =>
    c.url.searchParams.get("sample_rate")
  );
  assertEquals(sttRates, ["16000", "16000"]);
});
