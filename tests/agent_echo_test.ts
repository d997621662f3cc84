/**
 * The self-interruption guard through the real server, with the simulator
 * as Exotel and as a speakerphone: every chunk the bot sends comes back in
 * the caller's audio 150 ms after it plays, 20 dB down, band-limited to
 * 300–3400 Hz. The bot's voice is real speech (the `bot_echo_reference`
 * fixture). Barge-in is on voice alone (`AGENT_BARGE_IN_MIN_WORDS=0`), so
 * the voice-activity detector and the echo guard are the only judges.
 */
import { assert, assertEquals, assertGreater } from "@std/assert";
import { concat } from "@std/bytes";
import type { SpeechDetectorFactory } from "../src/audio/speech_detector.ts";
import { energyDetector } from "../src/audio/speech_detector.ts";
import { loadSpeechDetectors } from "../src/bots/agent/mod.ts";
import { simulateCall, type SimulationReport } from "../tools/simulator.ts";
import { fixturePcm } from "./fakes/agent_call.ts";
import { startAgentServer } from "./fakes/bot_server.ts";
import { SpeakerphoneEcho } from "./fakes/speakerphone.ts";
import type { FakeSttTurn } from "./fakes/stt_servers.ts";

const RATE = 8000;
const GREETING = "Thank you for calling. How can I help you today?";
/** The reference fixture's speech, without its padding: about 3.2 s. */
const VOICE = (await fixturePcm(`noise/bot_echo_reference_${RATE}.wav`))
  .slice(RATE * 2 * 0.5, RATE * 2 * 3.7);
/** About 6.4 s of the bot talking. */
const GREETING_VOICE = concat([VOICE, VOICE]);

const silero = await loadSpeechDetectors({ vad: "silero", vadRuntime: "auto" });

function silence(ms: number): Uint8Array {
  return new Uint8Array(RATE / 1000 * ms * 2);
}

async function speakerphoneCall(
  caller: Uint8Array,
  detectors: SpeechDetectorFactory,
  options: { turns?: FakeSttTurn[]; env?: Record<string, string> } = {},
): Promise<SimulationReport & { modelRequests: number }> {
  await using agent = await startAgentServer({
    script: { turns: options.turns ?? [] },
    env: {
      AGENT_GREETING: GREETING,
      AGENT_BARGE_IN_MIN_WORDS: "0",
      ...options.env,
    },
    speech: () => GREETING_VOICE,
    factory: { detectors },
  });
  using echo = new SpeakerphoneEcho(RATE, { delayMs: 150, lossDb: 20 });
  const report = await simulateCall({
    url: agent.url,
    pcm: caller,
    sampleRate: RATE,
    frameMs: 20,
    waitForReplyMs: 500,
    maxWaitMs: 15_000,
    onReplyAudio: (pcm, control) => echo.sent(pcm, control),
  });
  assert(report.connected, report.error);
  assertGreater(echo.echoedBytes, 0, "the bot's voice came back");
  await agent.callsEnded();
  return { ...report, modelRequests: agent.vendors.llm.requests.length };
}

const DETECTORS: [string, SpeechDetectorFactory][] = [
  ["energy", energyDetector],
  ["silero", silero.create],
];

for (const [name, detectors] of DETECTORS) {
  Deno.test(`echo guard (${name}): the bot's own voice coming back never pauses or clears it`, async () => {
    const report = await speakerphoneCall(silence(7500), detectors);
    assertEquals(report.clearsReceived, 0, "no pause, no barge-in");
    assert(report.marksEchoed.includes("agent-1-1"), "the greeting played out");
  });

  Deno.test(`echo guard (${name}): a caller talking over the bot's echo still interrupts it`, async () => {
    const speech = await fixturePcm(`interrupt_${RATE}.wav`);
    const report = await speakerphoneCall(
      concat([silence(1500), speech, silence(1000)]),
      detectors,
    );
    assertGreater(
      report.clearsReceived,
      0,
      "the caller's voice cleared the bot",
    );
    assertGreater(report.clearedBytes, 0);
  });
}

Deno.test("echo guard: the bot's own words, transcribed from its echo, neither cut it nor make a turn", async () => {
  const report = await speakerphoneCall(silence(7500), silero.create, {
    // What a real speech-to-text vendor makes of the echo.
    turns: [{ text: GREETING, speechStartMs: 900, turnMs: 3800 }],
    env: { AGENT_BARGE_IN_MIN_WORDS: "1" },
  });
  assertEquals(report.clearsReceived, 0, "no pause, no barge-in");
  assertEquals(report.modelRequests, 0, "the echo is not a caller turn");
});

Deno.test("the Silero model loads for the echo tests", () => {
  assertEquals(silero.kind, "silero");
});
