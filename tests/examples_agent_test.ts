/**
 * The agent examples, run as a user runs them: `examples/clinic/` (agent
 * file + appointment API) and `examples/order_status.ts` (library mode),
 * each through the real server, the simulator as Exotel, and fake vendors
 * on 127.0.0.1.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { concat } from "@std/bytes";
import { spokenForm } from "../src/bots/agent/spoken_forms.ts";
import { padToAlignment } from "../src/audio/pcm.ts";
import { serve } from "../mod.ts";
import { startClinicApi } from "../examples/clinic/clinic_api.ts";
import { simulateCall } from "../tools/simulator.ts";
import {
  type AgentFakes,
  FAKE_KEY,
  fixturePcm,
  startAgentFakes,
} from "./fakes/agent_call.ts";
import {
  type FakeReplySource,
  textReply,
  toolCallReply,
} from "./fakes/openai_server.ts";
import { completedRecord } from "./fakes/call_records.ts";
import { HELLO_TRANSCRIPT } from "./fakes/stt_servers.ts";
import { FakeWebhookServer } from "./fakes/webhook_server.ts";
import { fakeSpeech } from "./fakes/tts_servers.ts";

const LEAD_MS = 1000;
const HELLO = await fixturePcm("hello_8000.wav");
const CALLER = "+919812345678";

function silence(ms: number): Uint8Array {
  return new Uint8Array(8 * ms * 2);
}

/** What the caller hears for `texts`: each as the voice is asked to say it (spoken forms, en-IN). */
function spoken(texts: string[]): Uint8Array {
  return concat(
    texts.map((text) =>
      padToAlignment(
        fakeSpeech(spokenForm(text, { language: "en-IN" }), 8000),
      )
    ),
  );
}

async function vendors(replies: FakeReplySource[]): Promise<AgentFakes> {
  return await startAgentFakes({
    script: {
      turns: [{
        text: HELLO_TRANSCRIPT,
        speechStartMs: 520 + LEAD_MS,
        turnMs: 4600 + LEAD_MS,
      }],
    },
    replies,
  });
}

function vendorEnv(fakes: AgentFakes): Record<string, string> {
  return {
    BOT: "agent",
    KV_PATH: ":memory:",
    LOG_LEVEL: "error",
    DEEPGRAM_API_KEY: FAKE_KEY,
    STT_BASE_URL: fakes.stt.baseUrl,
    TTS_BASE_URL: fakes.tts.baseUrl,
    LLM_BASE_URL: fakes.llm.baseUrl,
    LLM_API_KEY: "fake-llm-key",
    LLM_MODEL: "fake-model",
  };
}

interface Wire {
  role: string;
  content: string | null;
  tool_call_id?: string;
}

/** Lowercase hex HMAC-SHA256 of `body`, computed here rather than by the code under test. */
async function hmacHex(body: Uint8Array, secret: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(
    await crypto.subtle.sign("HMAC", key, new Uint8Array(body)),
  );
  return [...mac].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

Deno.test("examples/clinic: the caller books through the agent file's webhook tools; the record, the call webhook and /metrics show the tool calls", async () => {
  const clinic = startClinicApi({ apiKey: "test-clinic-key", port: 0 });
  await using receiver = await FakeWebhookServer.start();
  const answer = [
    "You are booked for ten tomorrow.",
    "Your reference is SC-1001.",
  ];
  await using fakes = await vendors([
    toolCallReply([{
      id: "call_avail",
      name: "check_availability",
      arguments: ['{"date":"2026-12-04"}'],
    }]),
    toolCallReply([{
      id: "call_book",
      name: "book_appointment",
      arguments: ['{"date":"2026-12-04","time":"10:00","name":"Asha Rao"}'],
    }]),
    textReply([answer.join(" ")]),
  ]);
  try {
    await using server = await serve({
      readEnv: false,
      logging: false,
      hostname: "127.0.0.1",
      port: 0,
      env: {
        ...vendorEnv(fakes),
        AGENT_FILE: "examples/clinic/agent.yaml",
        CLINIC_API_URL: clinic.url,
        CLINIC_API_KEY: "test-clinic-key",
        CALL_WEBHOOK_URL: receiver.url,
        CALL_WEBHOOK_SECRET: "clinic-webhook-secret",
      },
    });
    const report = await simulateCall({
      url: `${server.url.replace("http", "ws")}/voicebot/ws`,
      pcm: concat([silence(LEAD_MS), HELLO]),
      sampleRate: 8000,
      from: CALLER,
      to: "08047491899",
      callSid: "CA-clinic-1",
      waitForReplyMs: 3000,
      maxWaitMs: 20_000,
    });
    assert(report.connected, report.error);
    assertEquals(report.badChunks, []);
    assertEquals(
      report.receivedPcm,
      spoken([
        "Hello, Sunrise Clinic. How may I help you today?",
        ...answer,
      ]),
    );
    // What the API did, and what the model was given back.
    assertEquals([...clinic.api.appointments.values()], [{
      reference: "SC-1001",
      date: "2026-12-04",
      time: "10:00",
      name: "Asha Rao",
      phone: CALLER,
    }]);
    const third = fakes.llm.requests[2].body?.messages as Wire[];
    assertEquals(third.at(-3)?.tool_call_id, "call_avail");
    assertEquals(JSON.parse(third.at(-3)?.content ?? "{}").free.length, 6);
    assertEquals(third.at(-1)?.tool_call_id, "call_book");
    assertEquals(
      JSON.parse(third.at(-1)?.content ?? "{}").reference,
      "SC-1001",
    );
    const system = third[0].content ?? "";
    assertStringIncludes(system, `The caller's number is ${CALLER}.`);

    const record = await completedRecord(server.url, "CA-clinic-1");
    assertEquals(record.transcript.map((entry) => entry.role), [
      "bot",
      "caller",
      "tool",
      "tool",
      "bot",
    ]);
    const tools = record.transcript.filter((entry) => entry.role === "tool");
    assertEquals(
      tools.map((entry) => [entry.name, entry.outcome, entry.arguments]),
      [
        ["check_availability", "ok", { date: "2026-12-04" }],
        ["book_appointment", "ok", {
          date: "2026-12-04",
          time: "10:00",
          name: "[redacted]",
        }],
      ],
    );
    // The call webhook gets the same record, tool calls included, signed.
    const [delivery] = await receiver.waitForRequests(1);
    assertEquals(
      delivery.headers.get("x-exovoice-signature"),
      `sha256=${await hmacHex(delivery.body, "clinic-webhook-secret")}`,
    );
    const delivered = JSON.parse(delivery.text);
    assertEquals(delivery.headers.get("idempotency-key"), delivered.id);
    assertEquals(delivered.transcript, record.transcript);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assertStringIncludes(
      metrics,
      'exovoice_tool_calls_total{tool="book_appointment",outcome="ok"} 1',
    );
  } finally {
    await clinic.server.shutdown();
  }
});

Deno.test("examples/order_status.ts: the code tool looks up the caller's order, and the model answers from it", async () => {
  const { agent } = await import("../examples/order_status.ts");
  const answer = "Your order A1001 has shipped.";
  await using fakes = await vendors([
    toolCallReply([{
      id: "call_order",
      name: "order_status",
      arguments: ['{"orderId":"a1001"}'],
    }]),
    textReply([answer]),
  ]);
  await using server = await serve({
    agent,
    readEnv: false,
    logging: false,
    hostname: "127.0.0.1",
    port: 0,
    env: vendorEnv(fakes),
  });
  const report = await simulateCall({
    url: `${server.url.replace("http", "ws")}/voicebot/ws`,
    pcm: concat([silence(LEAD_MS), HELLO]),
    sampleRate: 8000,
    from: CALLER,
    waitForReplyMs: 2000,
    maxWaitMs: 20_000,
  });
  assert(report.connected, report.error);
  assertEquals(
    report.receivedPcm,
    spoken(["Kirana Express order desk. What is your order number?", answer]),
  );
  const second = fakes.llm.requests[1].body?.messages as Wire[];
  assertEquals(second.at(-1)?.tool_call_id, "call_order");
  assertEquals(JSON.parse(second.at(-1)?.content ?? "{}"), {
    found: true,
    id: "A1001",
    status: "shipped",
    expectedDelivery: "2026-12-05",
  });
});

Deno.test("several agents on one server: agent= in the socket URL picks one, and an unknown name is refused", async () => {
  await using fakes = await vendors([]);
  await using server = await serve({
    agents: [
      { name: "default", greeting: "Front desk, hello." },
      { name: "billing", greeting: "Billing desk, hello." },
    ],
    readEnv: false,
    logging: false,
    hostname: "127.0.0.1",
    port: 0,
    env: vendorEnv(fakes),
  });
  const ws = `${server.url.replace("http", "ws")}/voicebot/ws`;
  const call = (query: string) =>
    simulateCall({
      url: `${ws}${query}`,
      pcm: silence(500),
      sampleRate: 8000,
      waitForReplyMs: 1500,
      maxWaitMs: 10_000,
    });
  const billing = await call("?agent=billing");
  assertEquals(billing.receivedPcm, spoken(["Billing desk, hello."]));
  const fallback = await call("");
  assertEquals(fallback.receivedPcm, spoken(["Front desk, hello."]));
  const unknown = await call("?agent=nobody");
  assertEquals(unknown.connected, false);
  assertEquals(unknown.httpStatus, 404);
  // The dynamic URL endpoint passes agent= through.
  const connect = await fetch(
    `${server.url}/api/v1/exotel/voice/connect?CallSid=CA9&agent=billing`,
  );
  const { url } = await connect.json();
  assertEquals(new URL(url).searchParams.get("agent"), "billing");
});
