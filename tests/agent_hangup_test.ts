/**
 * The caller's last words at hang-up, end to end: the real server, the
 * simulator as Exotel, the real speech-to-text adapters against the fake
 * Deepgram and Sarvam servers. The caller speaks and hangs up before the
 * vendor's final; the adapter's farewell (Deepgram `CloseStream`, Sarvam
 * `flush`) gets it, and the call record has it, with no model turn and
 * nothing said.
 */
import { assert, assertEquals } from "@std/assert";
import type { TranscriptEntry } from "../src/call/bot_report.ts";
import { simulateCall } from "../tools/simulator.ts";
import { fixturePcm } from "./fakes/agent_call.ts";
import { startAgentServer } from "./fakes/bot_server.ts";
import { HELLO_TRANSCRIPT, type SttVendor } from "./fakes/stt_servers.ts";

const GREETING = "Hello! How can I help you today?";

/** The farewell each vendor is sent at hang-up. */
const FAREWELLS: { vendor: SttVendor; farewell: string }[] = [
  { vendor: "deepgram", farewell: "CloseStream" },
  { vendor: "sarvam", farewell: "flush" },
];

/** The call's record once it is completed, from `GET /calls/:id`. */
async function completedRecord(
  base: string,
  callId: string,
): Promise<{ state?: string; transcript: TranscriptEntry[] }> {
  while (true) {
    const response = await fetch(`${base}/calls/${callId}`);
    const body = await response.json();
    if (response.ok && body.state === "completed") return body;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

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
