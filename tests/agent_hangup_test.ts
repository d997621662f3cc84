/**
 * The caller's last words at hang-up, end to end: the real server, the
 * simulator as Exotel, the real speech-to-text adapters against the fake
 * Deepgram and Sarvam servers. The caller speaks and hangs up before the
 * vendor's final; the adapter's farewell (Deepgram `CloseStream`, Sarvam
 * `flush`) gets it, and the call record has it, with no model turn and
 * nothing said. Then the listener and the agent on their own, on a fake
 * clock: finals after the hang-up only, the vendor's wait on the injected
 * clock, and words heard but not answered before the hang-up kept too.
 */
import { assert, assertEquals, assertFalse } from "@std/assert";
import type { AgentBot } from "../src/bots/agent/agent.ts";
import { createAgentBotFactory } from "../src/bots/agent/mod.ts";
import { DeepgramStt } from "../src/providers/stt/deepgram.ts";
import type {
  SpeechEvent,
  SpeechToText,
  SpeechToTextOptions,
  SpeechToTextSession,
} from "../src/providers/stt/speech_to_text.ts";
import type { Clock } from "../src/call/clock.ts";
import { simulateCall } from "../tools/simulator.ts";
import {
  fixturePcm,
  listenerOn,
  startAgentFakes,
  startMemoryCall,
  until,
} from "./fakes/agent_call.ts";
import { startAgentServer } from "./fakes/bot_server.ts";
import { completedRecord } from "./fakes/call_records.ts";
import { FakeClock } from "./fakes/clock.ts";
import {
  FakeSttServer,
  HELLO_TRANSCRIPT,
  type SttVendor,
} from "./fakes/stt_servers.ts";

const GREETING = "Hello! How can I help you today?";

/** The farewell each vendor is sent at hang-up. */
const FAREWELLS: { vendor: SttVendor; farewell: string }[] = [
  { vendor: "deepgram", farewell: "CloseStream" },
  { vendor: "sarvam", farewell: "flush" },
];

/** Places a call whose caller says the hello fixture and hangs up before the vendor's final. */
async function callAndHangUp(
  vendor: SttVendor,
  options: { answersFarewell: boolean; callId: string },
) {
  const agent = await startAgentServer({
    stt: vendor,
    // The final would come only after a minute of audio: the hang-up comes first.
    script: {
      turns: [{ text: HELLO_TRANSCRIPT, speechStartMs: 520, turnMs: 60_000 }],
      answersFarewell: options.answersFarewell,
    },
  });
  try {
    const report = await simulateCall({
      url: agent.url,
      pcm: await fixturePcm("hello_8000.wav"),
      sampleRate: 8000,
      realtime: false,
      callSid: options.callId,
      waitForReplyMs: 300,
      maxWaitMs: 10_000,
    });
    assert(report.connected, report.error);
    await agent.callsEnded();
    const connection = await agent.vendors.stt.connection();
    const record = await completedRecord(agent.base, options.callId);
    return { agent, connection, record };
  } catch (error) {
    await agent[Symbol.asyncDispose]();
    throw error;
  }
}

for (const { vendor, farewell } of FAREWELLS) {
  Deno.test(`agent at hang-up (${vendor}): the final the ${farewell} brings is the caller's last line in the call record, with no model turn`, async () => {
    const { agent, connection, record } = await callAndHangUp(vendor, {
      answersFarewell: true,
      callId: `CA-hangup-${vendor}`,
    });
    await using _ = agent;
    assert(
      connection.messages.some((message) => message.type === farewell),
      `the ${farewell} was sent`,
    );
    assertEquals(
      record.transcript.map(({ role, text }) => ({ role, text })),
      [
        { role: "bot", text: GREETING },
        { role: "caller", text: HELLO_TRANSCRIPT },
      ],
    );
    assertEquals(agent.vendors.llm.requests.length, 0);
  });

  Deno.test(`agent at hang-up (${vendor}): a vendor that never answers the ${farewell} still lets the record be written, without words it never heard`, async () => {
    const { agent, connection, record } = await callAndHangUp(vendor, {
      answersFarewell: false,
      callId: `CA-hangup-silent-${vendor}`,
    });
    await using _ = agent;
    assert(connection.messages.some((message) => message.type === farewell));
    assertEquals(
      record.transcript.map(({ role, text }) => ({ role, text })),
      [{ role: "bot", text: GREETING }],
    );
    assertEquals(agent.vendors.llm.requests.length, 0);
  });
}

/**
 * An in-memory vendor: {@linkcode ScriptedStt.say} reports an event now;
 * at hang-up (the session's signal) it reports `farewell`, then ends.
 */
class ScriptedStt implements SpeechToText {
  readonly name = "scripted";
  /** The `clock` option of each session opened. */
  readonly clocks: (Clock | undefined)[] = [];
  #farewell: SpeechEvent[];
  #say: ((event: SpeechEvent) => void) | undefined;

  constructor(farewell: SpeechEvent[]) {
    this.#farewell = farewell;
  }

  /** Whether a session is open. */
  get opened(): boolean {
    return this.#say !== undefined;
  }

  say(event: SpeechEvent): void {
    if (!this.#say) throw new Error("No session is open");
    this.#say(event);
  }

  open(options: SpeechToTextOptions): Promise<SpeechToTextSession> {
    this.clocks.push(options.clock);
    const queue: SpeechEvent[] = [];
    let ended = false;
    let wake = () => {};
    this.#say = (event) => {
      queue.push(event);
      wake();
    };
    options.signal?.addEventListener("abort", () => {
      queue.push(...this.#farewell);
      ended = true;
      wake();
    });
    const end = () => {
      ended = true;
      wake();
      return Promise.resolve();
    };
    return Promise.resolve({
      push() {},
      async *events() {
        while (true) {
          const event = queue.shift();
          if (event) yield event;
          else if (ended) return;
          else await new Promise<void>((resolve) => wake = resolve);
        }
      },
      close: end,
    });
  }
}

Deno.test("listener after close passes on only the finals the vendor still owes, then ends with the session", async () => {
  const stt = new ScriptedStt([
    { type: "partial", text: "and one" },
    { type: "final", text: "And one more thing.", endOfTurn: false },
    { type: "end_of_turn" },
  ]);
  const clock = new FakeClock();
  const { listener, events } = listenerOn(stt, { clock });
  listener.start();
  await until(() => stt.opened, "the session");
  stt.say({ type: "speech_started" });
  await until(() => events.length === 1, "the first event");
  await listener.close();
  assertEquals(events, [
    { type: "speech_started" },
    { type: "final", text: "And one more thing.", endOfTurn: false },
  ]);
  assertEquals(stt.clocks, [clock]);
});

Deno.test("listener at hang-up waits for the vendor's last final on its own clock (Deepgram hangupWaitMs)", async () => {
  await using server = await FakeSttServer.start("deepgram", {
    script: { answersFarewell: false },
  });
  const stt = new DeepgramStt({
    apiKey: server.apiKey,
    baseUrl: server.baseUrl,
    connectTimeoutMs: 2000,
    // A real-time wait this long would time the test out.
    hangupWaitMs: 60_000,
  });
  const clock = new FakeClock();
  const { listener } = listenerOn(stt, { clock });
  listener.start();
  const connection = await server.connection();
  listener.push(new Uint8Array(3200));
  await until(() => connection.audioBytes > 0, "the audio");
  let closed = false;
  const closing = listener.close().then(() => closed = true);
  await until(
    () => connection.messages.some((message) => message.type === "CloseStream"),
    "the CloseStream",
  );
  assertFalse(closed, "closed before the vendor's wait was over");
  await clock.advance(60_000);
  await until(() => closed, "the listener to close once the wait is over");
  await closing;
});

Deno.test("agent at hang-up keeps the caller's final words no reply answered, and what the vendor sends after, as one last line", async () => {
  await using fakes = await startAgentFakes();
  const stt = new ScriptedStt([
    { type: "partial", text: "around" },
    { type: "final", text: "Around eight.", endOfTurn: true },
  ]);
  const clock = new FakeClock();
  const factory = createAgentBotFactory(fakes.config, {
    providers: { ...fakes.providers, stt, forCall: undefined },
    clock,
  });
  const call = startMemoryCall<AgentBot>(factory);
  await call.started;
  await until(() => stt.opened, "speech-to-text");
  stt.say({ type: "speech_started" });
  stt.say({ type: "final", text: "Book a table for two.", endOfTurn: false });
  await until(
    () => call.bot.live().partial === "Book a table for two.",
    "the words heard",
  );
  await clock.advance(100);
  call.output.stop();
  await call.bot.stop();
  const caller = call.bot.report().transcript.filter((entry) =>
    entry.role === "caller"
  );
  assertEquals(caller.map((entry) => entry.text), [
    "Book a table for two. Around eight.",
  ]);
  assertEquals(caller[0].atMs, 100);
  assertEquals(fakes.llm.requests.length, 0);
});

Deno.test("agent at hang-up keeps a caller turn that was waiting for the bot to finish speaking", async () => {
  await using fakes = await startAgentFakes({
    env: { AGENT_BARGE_IN: "off" },
  });
  const stt = new ScriptedStt([]);
  const clock = new FakeClock();
  const factory = createAgentBotFactory(fakes.config, {
    providers: { ...fakes.providers, stt, forCall: undefined },
    clock,
  });
  // The greeting never finishes playing: the caller's turn waits behind it.
  const call = startMemoryCall<AgentBot>(factory, { auto: false });
  await call.started;
  await until(() => call.bot.live().activity === "speaking", "the greeting");
  await until(() => stt.opened, "speech-to-text");
  stt.say({ type: "final", text: "Is it open on Sunday?", endOfTurn: true });
  await until(() => call.bot.live().partial === "", "the turn to be taken");
  call.output.stop();
  await call.bot.stop();
  assertEquals(
    call.bot.report().transcript.filter((entry) => entry.role === "caller")
      .map((entry) => entry.text),
    ["Is it open on Sunday?"],
  );
  assertEquals(fakes.llm.requests.length, 0);
});
