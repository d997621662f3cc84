/**
 * Spoken forms through the agent: the real server, the simulator as Exotel
 * and fake vendors on 127.0.0.1. The text-to-speech fake must receive what
 * the voice should say while the transcript and the model's history keep
 * what the model wrote.
 */
import { assert, assertEquals } from "@std/assert";
import { concat } from "@std/bytes";
import type { AgentBot } from "../src/bots/agent/agent.ts";
import { simulateCall } from "../tools/simulator.ts";
import { fixturePcm } from "./fakes/agent_call.ts";
import { startAgentServer } from "./fakes/bot_server.ts";
import { textReply } from "./fakes/openai_server.ts";
import { HELLO_TRANSCRIPT } from "./fakes/stt_servers.ts";

const LEAD_MS = 1000;
const GREETING = "Namaste! Your bill of ₹1,50,000 is due on 03/12/2026.";
const REPLY = "Your OTP is 482913. Call Dr. Rao on 98765 43210 at 10:30 am.";

async function callWith(env: Record<string, string>): Promise<{
  ttsTexts: string[];
  bot: AgentBot;
}> {
  await using agent = await startAgentServer({
    script: {
      turns: [{
        text: HELLO_TRANSCRIPT,
        speechStartMs: 520 + LEAD_MS,
        turnMs: 4600 + LEAD_MS,
      }],
    },
    replies: [
      textReply([
        "Your OTP is 482913.",
        " Call Dr. Rao on 98765 43210 at 10:30 am.",
      ]),
    ],
    env: { AGENT_GREETING: GREETING, ...env },
  });
  const hello = await fixturePcm("hello_8000.wav");
  const report = await simulateCall({
    url: agent.url,
    pcm: concat([new Uint8Array(8000 / 1000 * LEAD_MS * 2), hello]),
    sampleRate: 8000,
    waitForReplyMs: 1000,
    maxWaitMs: 10_000,
  });
  assert(report.connected, report.error);
  await agent.callsEnded();
  const { vendors, bots } = agent;
  // The fallback line is synthesised in the background too; it has no
  // spoken forms to rewrite.
  const ttsTexts = vendors.tts.texts()
    .filter((text) => text !== vendors.config.fallbackText);
  return { ttsTexts, bot: bots[0] };
}

Deno.test("an en-IN agent's voice gets spoken forms while the transcript and the model's history keep the written text", async () => {
  const { ttsTexts, bot } = await callWith({ AGENT_LANGUAGE: "en-IN" });
  assertEquals(ttsTexts, [
    "Namaste! Your bill of one lakh fifty thousand rupees is due on 3rd December 2026.",
    "Your OTP is four eight two nine one three.",
    "Call Doctor Rao on nine eight seven six five, four three two one zero at ten thirty a m.",
  ]);
  const said = bot.report().transcript
    .filter((entry) => entry.role === "bot")
    .map((entry) => entry.text);
  assertEquals(said, [GREETING, REPLY]);
  assertEquals(bot.history().at(-1), { role: "assistant", content: REPLY });
});

Deno.test("AGENT_SPOKEN_FORMS=off sends the voice the model's text as written", async () => {
  const { ttsTexts } = await callWith({
    AGENT_LANGUAGE: "en-IN",
    AGENT_SPOKEN_FORMS: "off",
  });
  assertEquals(ttsTexts, [
    GREETING,
    "Your OTP is 482913.",
    "Call Dr. Rao on 98765 43210 at 10:30 am.",
  ]);
});

Deno.test("a hi-IN agent's voice gets Hindi spoken forms by default", async () => {
  const { ttsTexts } = await callWith({
    AGENT_LANGUAGE: "hi-IN",
    AGENT_GREETING: "नमस्ते! आपका बिल ₹2,50,00,000 है।",
  });
  assertEquals(ttsTexts[0], "नमस्ते! आपका बिल दो करोड़ पचास लाख रुपये है।");
  assertEquals(ttsTexts[1], "Your OTP is चार आठ दो नौ एक तीन.");
});
