/**
 * Barge-in on the neural voice-activity detector, through the real server
 * with the simulator as Exotel: babble, music, TV and fan hum played while
 * the bot speaks never make it send `clear`; a caller talking over it does.
 * Barge-in is on voice alone here (`AGENT_BARGE_IN_MIN_WORDS=0`), so the
 * detector is the only judge.
 */
import { assert, assertEquals, assertGreater } from "@std/assert";
import { concat } from "@std/bytes";
import type { SpeechDetectorFactory } from "../src/audio/speech_detector.ts";
import type { AgentBot } from "../src/bots/agent/agent.ts";
import { loadSpeechDetectors } from "../src/bots/agent/mod.ts";
import { simulateCall, type SimulationReport } from "../tools/simulator.ts";
import { fixturePcm } from "./fakes/agent_call.ts";
import { startAgentServer } from "./fakes/bot_server.ts";
import type { FakeSttTurn } from "./fakes/stt_servers.ts";

/** About 5 s of the fake voice (20 ms a character): the caller's audio plays over it. */
const GREETING = "Welcome to the clinic. ".repeat(11).trim();

const silero = await loadSpeechDetectors({
  vad: "silero",
  vadRuntime: "native",
});

function silence(ms: number): Uint8Array {
  return new Uint8Array(8000 / 1000 * ms * 2);
}

async function callOverGreeting(
  caller: Uint8Array,
  options: { detectors: SpeechDetectorFactory; turns?: FakeSttTurn[] },
): Promise<{ report: SimulationReport; bot: AgentBot }> {
  await using agent = await startAgentServer({
    script: { turns: options.turns ?? [] },
    env: { AGENT_GREETING: GREETING, AGENT_BARGE_IN_MIN_WORDS: "0" },
    factory: { detectors: options.detectors },
  });
  const report = await simulateCall({
    url: agent.url,
    pcm: caller,
    sampleRate: 8000,
    waitForReplyMs: 500,
    maxWaitMs: 10_000,
  });
  assert(report.connected, report.error);
  await agent.callsEnded();
  return { report, bot: agent.bots[0] };
}

assertEquals(silero.kind, "silero", "the Silero model loads for these tests");

for (
  const name of ["babble_only_3s", "music_only_3s", "tv_only_3s", "fan_hum_3s"]
) {
  Deno.test(`Silero barge-in: ${name} over the greeting never clears it`, async () => {
    const noise = await fixturePcm(`noise/${name}_8000.wav`);
    // As on a real line, the noise is there from the moment the call opens.
    const { report } = await callOverGreeting(noise, {
      detectors: silero.create,
    });
    assertEquals(report.clearsReceived, 0, "no barge-in, no pause");
    assert(report.marksEchoed.includes("agent-1-1"), "the greeting played out");
  });
}

Deno.test("Silero barge-in: a caller talking over the greeting still interrupts it", async () => {
  const speech = await fixturePcm("interrupt_8000.wav");
  const { report } = await callOverGreeting(
    concat([silence(1000), speech]),
    {
      detectors: silero.create,
      turns: [{
        text: "Wait, stop. Actually I meant next Monday.",
        speechStartMs: 1800,
        turnMs: 4500,
      }],
    },
  );
  assertGreater(report.clearsReceived, 0, "the caller's voice cleared the bot");
  assertGreater(report.clearedBytes, 0);
});
