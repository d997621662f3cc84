/**
 * Tools that act: webhook and code tools called by the model, over an
 * in-memory call output, with the real adapters talking to fake vendor
 * servers and a fake webhook server on 127.0.0.1.
 */
import {
  assert,
  assertEquals,
  assertFalse,
  assertStringIncludes,
} from "@std/assert";
import type { AgentBot } from "../src/bots/agent/agent.ts";
import type { AgentConfig } from "../src/bots/agent/config.ts";
import {
  type AgentFactoryOptions,
  createAgentBotFactory,
} from "../src/bots/agent/mod.ts";
import type { CodeTool, ToolResult } from "../src/bots/agent/tool_runner.ts";
import {
  webhookTool,
  type WebhookToolConfig,
} from "../src/bots/agent/webhook_tool.ts";
import {
  type AgentFakes,
  feed,
  fixturePcm,
  type MemoryOutput,
  startAgentFakes,
  startMemoryCall,
  until,
} from "./fakes/agent_call.ts";
import {
  type FakeReplySource,
  type FakeToolCall,
  textReply,
  toolCallReply,
} from "./fakes/openai_server.ts";
import { HELLO_SCRIPT, HELLO_TRANSCRIPT } from "./fakes/stt_servers.ts";
import { fakeSpeech } from "./fakes/tts_servers.ts";
import {
  type RouteHandler,
  type RouteServer,
  startRouteServer,
  wait,
} from "./fakes/route_server.ts";

const HELLO = await fixturePcm("hello_8000.wav");
const GREETING = "Hello! How can I help you today?";
const SAY = "One moment while I book that.";
const ANSWER = "You are booked for ten tomorrow.";

const BOOK_SCHEMA = {
  type: "object",
  properties: {
    date: { type: "string" },
    time: { type: "string" },
    name: { type: "string" },
  },
  required: ["date", "time"],
  additionalProperties: false,
};

interface Wire {
  role: string;
  content: string | null;
  tool_call_id?: string;
  tool_calls?: { id: string; function: { name: string; arguments: string } }[];
}

function messages(vendors: AgentFakes, index: number): Wire[] {
  return (vendors.llm.requests[index].body?.messages ?? []) as Wire[];
}

function book(
  hooks: RouteServer,
  overrides: Partial<WebhookToolConfig["webhook"]> & { say?: string } = {},
): WebhookToolConfig {
  const { say, ...webhook } = overrides;
  return {
    name: "book_appointment",
    description: "Book a slot for the caller.",
    parameters: BOOK_SCHEMA,
    say,
    redact: ["name"],
    webhook: {
      url: hooks.url("/book"),
      method: "POST",
      headers: { authorization: "Bearer clinic-key" },
      timeoutMs: 4000,
      maxResponseBytes: 16 * 1024,
      ...webhook,
    },
  };
}

function bookCall(args: string, id = "call_book"): FakeToolCall {
  return { id, name: "book_appointment", arguments: [args] };
}

interface Harness extends AsyncDisposable {
  vendors: AgentFakes;
  hooks: RouteServer;
  bot: AgentBot;
  output: MemoryOutput;
  results: ToolResult[];
  /** Plays the caller's turn and waits for the reply to the tool's result. */
  askAndWait(utterances: number): Promise<void>;
}

async function harness(options: {
  routes: Record<string, RouteHandler>;
  tools: (hooks: RouteServer) => WebhookToolConfig[];
  replies: FakeReplySource[];
  codeTools?: CodeTool[];
  config?: Partial<AgentConfig>;
  factory?: AgentFactoryOptions;
}): Promise<Harness> {
  const hooks = startRouteServer(options.routes);
  const vendors = await startAgentFakes({
    script: HELLO_SCRIPT,
    replies: options.replies,
  });
  const results: ToolResult[] = [];
  const factory = createAgentBotFactory({
    ...vendors.config,
    tools: options.tools(hooks).map(webhookTool),
    ...options.config,
  }, {
    providers: vendors.providers,
    tools: options.codeTools,
    hooks: { toolCall: (result) => results.push(result) },
    ...options.factory,
  });
  const call = startMemoryCall<AgentBot>(factory);
  await call.started;
  const { bot, output } = call;
  return {
    vendors,
    hooks,
    bot,
    output,
    results,
    async askAndWait(utterances) {
      await until(() => output.played.length >= 1, "the greeting");
      await feed((pcm) => bot.audio(pcm), HELLO, 8000);
      await until(
        () => output.played.length >= utterances,
        "the answer played",
        10_000,
      );
    },
    async [Symbol.asyncDispose]() {
      await call[Symbol.asyncDispose]();
      await hooks.close();
      await vendors[Symbol.asyncDispose]();
    },
  };
}

Deno.test("a webhook tool gets the arguments and the call, and its answer reaches the model last, under the call's tool_call_id", async () => {
  await using h = await harness({
    routes: {
      "/book": () => Response.json({ booked: true, slot: "10:00" }),
    },
    tools: (hooks) => [book(hooks)],
    replies: [
      toolCallReply([
        bookCall('{"date":"2026-12-04","time":"10:00","name":"Asha"}'),
      ]),
      textReply([ANSWER]),
    ],
  });
  await h.askAndWait(2);
  const [request] = h.hooks.requests;
  assertEquals(request.method, "POST");
  assertEquals(request.headers.get("authorization"), "Bearer clinic-key");
  assertEquals(request.json, {
    tool: "book_appointment",
    arguments: { date: "2026-12-04", time: "10:00", name: "Asha" },
    call: {
      callId: "CA-test",
      streamSid: "MZ-CA-test",
      from: "+919876543210",
      to: "08047491899",
      customParameters: {},
    },
  });
  const second = messages(h.vendors, 1);
  assertEquals(second.at(-2)?.role, "assistant");
  assertEquals(second.at(-2)?.tool_calls?.[0].id, "call_book");
  assertEquals(second.at(-1), {
    role: "tool",
    tool_call_id: "call_book",
    content: '{"booked":true,"slot":"10:00"}',
  });
  assertEquals(h.output.utterances[1].pcm, fakeSpeech(ANSWER, 8000));
  assertEquals(h.results.map((r) => [r.name, r.outcome]), [
    ["book_appointment", "ok"],
  ]);
  await until(() => h.bot.history().length === 5, "the history");
  assertEquals(h.bot.history().map((m) => m.role), [
    "assistant",
    "user",
    "assistant",
    "tool",
    "assistant",
  ]);
  const tool = h.bot.report().transcript.find((entry) => entry.role === "tool");
  assertEquals(tool?.name, "book_appointment");
  assertEquals(tool?.outcome, "ok");
  assertEquals(tool?.arguments, {
    date: "2026-12-04",
    time: "10:00",
    name: "[redacted]",
  });
  assertEquals(typeof tool?.latencyMs, "number");
  assertEquals(typeof tool?.atMs, "number");
});

Deno.test("a webhook answering 500 reaches the model as an error with the answer's start, and the model answers the caller", async () => {
  await using h = await harness({
    routes: {
      "/book": () => new Response("database is down", { status: 500 }),
    },
    tools: (hooks) => [book(hooks)],
    replies: [
      toolCallReply([bookCall('{"date":"2026-12-04","time":"10:00"}')]),
      textReply(["Sorry, I could not book that."]),
    ],
  });
  await h.askAndWait(2);
  assertEquals(
    messages(h.vendors, 1).at(-1)?.content,
    JSON.stringify({
      error: "HTTP 500",
      body: "database is down",
    }),
  );
  assertEquals(
    h.output.utterances[1].pcm,
    fakeSpeech("Sorry, I could not book that.", 8000),
  );
  assertEquals(h.results[0].outcome, "http_error");
});

Deno.test("a webhook slower than its timeout reaches the model as a timeout", async () => {
  await using h = await harness({
    routes: {
      "/book": async (_request, signal) => {
        await wait(10_000, signal);
        return Response.json({ late: true });
      },
    },
    tools: (hooks) => [book(hooks, { timeoutMs: 300 })],
    replies: [
      toolCallReply([bookCall('{"date":"2026-12-04","time":"10:00"}')]),
      textReply(["The booking system is slow today."]),
    ],
  });
  await h.askAndWait(2);
  assertEquals(
    messages(h.vendors, 1).at(-1)?.content,
    '{"error":"timeout after 300 ms"}',
  );
  assertEquals(h.results[0].outcome, "timeout");
});

Deno.test("a webhook answer over the cap reaches the model as too large, with its first kilobyte", async () => {
  const huge = JSON.stringify({ slots: "x".repeat(40_000) });
  await using h = await harness({
    routes: { "/book": () => new Response(huge) },
    tools: (hooks) => [book(hooks)],
    replies: [
      toolCallReply([bookCall('{"date":"2026-12-04","time":"10:00"}')]),
      textReply(["I could not read the answer."]),
    ],
  });
  await h.askAndWait(2);
  const result = JSON.parse(messages(h.vendors, 1).at(-1)?.content ?? "{}");
  assertEquals(result.error, "answer larger than 16384 bytes");
  assertEquals(result.body, huge.slice(0, 1024));
  assertEquals(h.results[0].outcome, "too_large");
});

Deno.test("arguments that break the schema never reach the webhook, and the model is told what was wrong", async () => {
  await using h = await harness({
    routes: { "/book": () => Response.json({ booked: true }) },
    tools: (hooks) => [book(hooks)],
    replies: [
      toolCallReply([bookCall('{"date":5,"when":"soon"}')]),
      textReply(["Which day would you like?"]),
    ],
  });
  await h.askAndWait(2);
  assertEquals(h.hooks.requests.length, 0);
  const result = JSON.parse(messages(h.vendors, 1).at(-1)?.content ?? "{}");
  assertEquals(
    result.error,
    'invalid arguments: time: is required, got nothing; date: expected a string, got 5; when: is not an accepted property, got "soon"',
  );
  assertEquals(h.results[0].outcome, "invalid_arguments");
});

Deno.test("two tool calls in one model turn run at once, and both results follow the assistant message in order", async () => {
  let inFlight = 0;
  let bothSeen = false;
  const together: RouteHandler = async (request, signal) => {
    inFlight++;
    // Each answers only once both are in flight: run one after the other,
    // they would both wait out the timeout instead.
    for (let i = 0; i < 400 && inFlight < 2 && !signal.aborted; i++) {
      await wait(10, signal);
    }
    if (inFlight >= 2) bothSeen = true;
    return Response.json({ path: request.path });
  };
  await using h = await harness({
    routes: { "/book": together, "/slots": together },
    tools: (hooks) => [book(hooks), {
      name: "list_slots",
      description: "Free slots on a day.",
      parameters: {
        type: "object",
        properties: { date: { type: "string" } },
        required: ["date"],
      },
      webhook: {
        url: hooks.url("/slots"),
        method: "GET",
        headers: {},
        timeoutMs: 8000,
        maxResponseBytes: 16_384,
      },
    }],
    replies: [
      toolCallReply([
        {
          id: "call_a",
          name: "list_slots",
          arguments: ['{"date":"2026-12-04"}'],
        },
        bookCall('{"date":"2026-12-04","time":"10:00"}', "call_b"),
      ]),
      textReply(["Done."]),
    ],
  });
  await h.askAndWait(2);
  assert(bothSeen, "both webhooks were in flight at once");
  const slots = h.hooks.requests.find((r) => r.path === "/slots");
  assertEquals(slots?.method, "GET");
  assertEquals(slots?.query.get("date"), "2026-12-04");
  const wire = messages(h.vendors, 1);
  assertEquals(wire.slice(-3).map((m) => [m.role, m.tool_call_id]), [
    ["assistant", undefined],
    ["tool", "call_a"],
    ["tool", "call_b"],
  ]);
  assertEquals(wire.at(-2)?.content, '{"path":"/slots"}');
  assertEquals(wire.at(-1)?.content, '{"path":"/book"}');
});

Deno.test("a slow tool's say line is spoken while it runs", async () => {
  const ref: { vendors?: AgentFakes } = {};
  await using h = await harness({
    routes: {
      "/book": async (_request, signal) => {
        // Answer once the say line has gone to the voice, at most 5 s.
        for (let i = 0; i < 500 && !signal.aborted; i++) {
          if (ref.vendors && ref.vendors.tts.texts().includes(SAY)) break;
          await wait(10, signal);
        }
        return Response.json({ booked: true });
      },
    },
    tools: (hooks) => [book(hooks, { say: SAY })],
    replies: [
      toolCallReply([bookCall('{"date":"2026-12-04","time":"10:00"}')]),
      textReply([ANSWER]),
    ],
  });
  ref.vendors = h.vendors;
  await h.askAndWait(3);
  assertEquals(h.output.utterances[1].pcm, fakeSpeech(SAY, 8000));
  assertEquals(h.output.utterances[2].pcm, fakeSpeech(ANSWER, 8000));
  await until(() => h.bot.history().length === 5, "the history");
  assertEquals(h.bot.history().at(-1)?.content, `${SAY} ${ANSWER}`);
});

Deno.test("a fast tool's say line is not spoken", async () => {
  await using h = await harness({
    routes: { "/book": () => Response.json({ booked: true }) },
    tools: (hooks) => [book(hooks, { say: SAY })],
    replies: [
      toolCallReply([bookCall('{"date":"2026-12-04","time":"10:00"}')]),
      textReply([ANSWER]),
    ],
  });
  await h.askAndWait(2);
  assertFalse(h.vendors.tts.texts().includes(SAY));
  assertEquals(h.output.utterances.length, 2);
});

Deno.test("a code tool runs with the call, and a throwing one reaches the model as an error", async () => {
  const seen: unknown[] = [];
  await using h = await harness({
    routes: {},
    tools: () => [],
    codeTools: [{
      name: "order_status",
      description: "Look an order up.",
      parameters: {
        type: "object",
        properties: { orderId: { type: "string" } },
        required: ["orderId"],
      },
      run: (args, call) => {
        seen.push([args, call.from]);
        return { orderId: args.orderId, status: "shipped" };
      },
    }, {
      name: "broken",
      description: "Always fails.",
      parameters: { type: "object", properties: {} },
      run: () => {
        throw new Error("inventory offline");
      },
    }],
    replies: [
      toolCallReply([
        { id: "c1", name: "order_status", arguments: ['{"orderId":"A17"}'] },
        { id: "c2", name: "broken", arguments: ["{}"] },
      ]),
      textReply(["Your order has shipped."]),
    ],
  });
  await h.askAndWait(2);
  assertEquals(seen, [[{ orderId: "A17" }, "+919876543210"]]);
  const wire = messages(h.vendors, 1);
  assertEquals(wire.at(-2)?.content, '{"orderId":"A17","status":"shipped"}');
  assertEquals(wire.at(-1)?.content, '{"error":"inventory offline"}');
  const tools = (h.vendors.llm.requests[0].body?.tools ?? []) as {
    function: { name: string };
  }[];
  assertEquals(tools.map((tool) => tool.function.name), [
    "end_call",
    "transfer",
    "order_status",
    "broken",
  ]);
});

Deno.test("built-in tools can be turned off, and the model is not told about them", async () => {
  await using h = await harness({
    routes: {},
    tools: () => [],
    config: { builtinTools: { endCall: true, transfer: false } },
    replies: [textReply(["Hello there."])],
  });
  await h.askAndWait(2);
  const request = h.vendors.llm.requests[0].body ?? {};
  const tools = (request.tools ?? []) as { function: { name: string } }[];
  assertEquals(tools.map((tool) => tool.function.name), ["end_call"]);
  const system = (request.messages as Wire[])[0].content ?? "";
  assertStringIncludes(system, "Call end_call when the conversation is over.");
  assertFalse(system.includes("transfer"));
  assertEquals(messages(h.vendors, 0).at(-1)?.content, HELLO_TRANSCRIPT);
  assertEquals(h.output.utterances[0].pcm, fakeSpeech(GREETING, 8000));
});
