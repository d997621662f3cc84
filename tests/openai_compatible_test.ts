import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  OpenAiCompatibleModel,
  type OpenAiCompatibleOptions,
} from "../src/providers/llm/openai_compatible.ts";
import type {
  ChatMessage,
  CompletionEvent,
  CompletionOptions,
  ToolDefinition,
} from "../src/providers/llm/language_model.ts";
import { ProviderError } from "../src/providers/provider_error.ts";
import {
  errorReply,
  type FakeOpenAiServer,
  hangReply,
  rawReply,
  startFakeOpenAiServer,
  textReply,
  toolCallReply,
} from "./fakes/openai_server.ts";
import { FakeClock } from "./fakes/clock.ts";

const API_KEY = "sk-test-0123456789abcdef";
const HELLO: ChatMessage[] = [{ role: "user", content: "Hello" }];

function modelFor(
  server: FakeOpenAiServer,
  options?: Partial<OpenAiCompatibleOptions>,
): OpenAiCompatibleModel {
  return new OpenAiCompatibleModel({
    baseUrl: server.baseUrl,
    apiKey: API_KEY,
    model: "gpt-4o-mini",
    timeoutMs: 5_000,
    ...options,
  });
}

async function collect(
  model: OpenAiCompatibleModel,
  messages: ChatMessage[],
  options?: CompletionOptions,
): Promise<CompletionEvent[]> {
  return await Array.fromAsync(model.complete(messages, options));
}

/** Runs a completion that must fail; returns what it yielded first and the error. */
async function failure(
  model: OpenAiCompatibleModel,
  messages: ChatMessage[],
  options?: CompletionOptions,
): Promise<{ events: CompletionEvent[]; error: ProviderError }> {
  const events: CompletionEvent[] = [];
  try {
    for await (const event of model.complete(messages, options)) {
      events.push(event);
    }
  } catch (error) {
    assertInstanceOf(error, ProviderError);
    return { events, error };
  }
  throw new Error("Expected the completion to fail, but it finished");
}

function texts(events: CompletionEvent[]): string[] {
  return events.flatMap((event) => event.type === "text" ? [event.text] : []);
}

const WEATHER_TOOL: ToolDefinition = {
  name: "get_weather",
  description: "Current weather in a city",
  parameters: {
    type: "object",
    properties: { city: { type: "string" } },
    required: ["city"],
  },
};

Deno.test("openai-compatible model streams text deltas in order", async () => {
  await using server = startFakeOpenAiServer({
    replies: [textReply(["Hel", "lo", ", how can I help?"])],
  });
  const events = await collect(modelFor(server), HELLO);
  assertEquals(events, [
    { type: "text", text: "Hel" },
    { type: "text", text: "lo" },
    { type: "text", text: ", how can I help?" },
  ]);
});

Deno.test("openai-compatible model yields a delta while the rest of the stream is still pending", async () => {
  await using server = startFakeOpenAiServer({
    replies: [textReply(["Namaste"], { end: "hang", finishReason: null })],
  });
  const bargeIn = new AbortController();
  const stream = modelFor(server).complete(HELLO, { signal: bargeIn.signal });
  const iterator = stream[Symbol.asyncIterator]();
  assertEquals(await iterator.next(), {
    done: false,
    value: { type: "text", text: "Namaste" },
  });
  bargeIn.abort();
  const error = await iterator.next().then(
    () => undefined,
    (error: unknown) => error,
  );
  assertInstanceOf(error, ProviderError);
  assertEquals(error.kind, "aborted");
  assertEquals(await server.requests[0].outcome, "cancelled");
});

Deno.test("openai-compatible model sends the request in the Chat Completions shape", async () => {
  await using server = startFakeOpenAiServer({ replies: [textReply(["ok"])] });
  const model = modelFor(server, { temperature: 0.3, maxTokens: 150 });
  const messages: ChatMessage[] = [
    { role: "system", content: "You are a helpful phone agent." },
    { role: "user", content: "Weather in Pune?" },
    {
      role: "assistant",
      content: "",
      toolCalls: [{
        id: "call_1",
        name: "get_weather",
        arguments: '{"city":"Pune"}',
      }],
    },
    { role: "tool", toolCallId: "call_1", content: '{"celsius":31}' },
    { role: "assistant", content: "It is 31 degrees." },
    { role: "user", content: "Thanks" },
  ];
  await collect(model, messages, { tools: [WEATHER_TOOL] });

  assertEquals(server.requests.length, 1);
  const request = server.requests[0];
  assertEquals(request.method, "POST");
  assertEquals(request.path, "/v1/chat/completions");
  assertEquals(request.headers.get("authorization"), `Bearer ${API_KEY}`);
  assertEquals(request.headers.get("content-type"), "application/json");
  assertEquals(request.headers.get("accept"), "text/event-stream");
  assertEquals(request.body, {
    model: "gpt-4o-mini",
    stream: true,
    temperature: 0.3,
    max_tokens: 150,
    messages: [
      { role: "system", content: "You are a helpful phone agent." },
      { role: "user", content: "Weather in Pune?" },
      {
        role: "assistant",
        content: null,
        tool_calls: [{
          id: "call_1",
          type: "function",
          function: { name: "get_weather", arguments: '{"city":"Pune"}' },
        }],
      },
      { role: "tool", tool_call_id: "call_1", content: '{"celsius":31}' },
      { role: "assistant", content: "It is 31 degrees." },
      { role: "user", content: "Thanks" },
    ],
    tools: [{
      type: "function",
      function: {
        name: "get_weather",
        description: "Current weather in a city",
        parameters: WEATHER_TOOL.parameters,
      },
    }],
  });
});

Deno.test("openai-compatible model leaves out tools, sampling options and auth it was not given", async () => {
  await using server = startFakeOpenAiServer({ replies: [textReply(["ok"])] });
  await collect(modelFor(server, { apiKey: undefined }), HELLO, { tools: [] });
  const request = server.requests[0];
  assertEquals(request.headers.get("authorization"), null);
  assertEquals(request.body, {
    model: "gpt-4o-mini",
    stream: true,
    messages: [{ role: "user", content: "Hello" }],
  });
});

Deno.test("openai-compatible model keeps the base URL's query and sends extra headers (Azure style)", async () => {
  await using server = startFakeOpenAiServer({ replies: [textReply(["ok"])] });
  const model = modelFor(server, {
    baseUrl: `${server.baseUrl}/?api-version=2024-10-21`,
    apiKey: undefined,
    headers: { "api-key": "azure-secret-key" },
  });
  assertEquals(texts(await collect(model, HELLO)), ["ok"]);
  const request = server.requests[0];
  assertEquals(request.path, "/v1/chat/completions?api-version=2024-10-21");
  assertEquals(request.headers.get("api-key"), "azure-secret-key");
  assertEquals(request.headers.get("authorization"), null);
});

Deno.test("openai-compatible model assembles a tool call whose arguments arrive in pieces", async () => {
  await using server = startFakeOpenAiServer({
    replies: [toolCallReply([{
      id: "call_abc",
      name: "get_weather",
      arguments: ['{"ci', 'ty": "Mum', 'bai"}'],
    }])],
  });
  const events = await collect(modelFor(server), HELLO, {
    tools: [WEATHER_TOOL],
  });
  assertEquals(events, [{
    type: "tool_call",
    call: {
      id: "call_abc",
      name: "get_weather",
      arguments: '{"city": "Mumbai"}',
    },
  }]);
});

Deno.test("openai-compatible model assembles two parallel tool calls by index, even interleaved", async () => {
  const calls = [
    {
      id: "call_1",
      name: "get_weather",
      arguments: ['{"city"', ': "Delhi"}'],
    },
    {
      id: "call_2",
      name: "get_time",
      arguments: ['{"zone": ', '"Asia/', 'Kolkata"}'],
    },
  ];
  const expected: CompletionEvent[] = [
    {
      type: "tool_call",
      call: {
        id: "call_1",
        name: "get_weather",
        arguments: '{"city": "Delhi"}',
      },
    },
    {
      type: "tool_call",
      call: {
        id: "call_2",
        name: "get_time",
        arguments: '{"zone": "Asia/Kolkata"}',
      },
    },
  ];
  await using server = startFakeOpenAiServer({
    replies: [
      toolCallReply(calls),
      toolCallReply(calls, { interleave: true }),
    ],
  });
  const model = modelFor(server);
  assertEquals(await collect(model, HELLO), expected);
  assertEquals(await collect(model, HELLO), expected);
});

Deno.test("openai-compatible model yields text before the tool calls of the same reply", async () => {
  await using server = startFakeOpenAiServer({
    replies: [toolCallReply(
      [{ id: "call_9", name: "end_call", arguments: ["{}"] }],
      { text: ["Goodbye", "!"] },
    )],
  });
  assertEquals(await collect(modelFor(server), HELLO), [
    { type: "text", text: "Goodbye" },
    { type: "text", text: "!" },
    {
      type: "tool_call",
      call: { id: "call_9", name: "end_call", arguments: "{}" },
    },
  ]);
});

Deno.test("openai-compatible model yields tool calls when the server finishes with stop", async () => {
  // Ollama and some vLLM versions report "stop" even when the model called tools.
  await using server = startFakeOpenAiServer({
    replies: [toolCallReply(
      [{ id: "call_x", name: "hang_up", arguments: [] }],
      { finishReason: "stop" },
    )],
  });
  assertEquals(await collect(modelFor(server), HELLO), [{
    type: "tool_call",
    call: { id: "call_x", name: "hang_up", arguments: "{}" },
  }]);
});

Deno.test("openai-compatible model reads CRLF line endings and keep-alive comments", async () => {
  await using server = startFakeOpenAiServer({
    replies: [textReply(["a", "b", "c"], {
      lineEnding: "\r\n",
      keepAlive: true,
      delayMs: 5,
    })],
  });
  assertEquals(texts(await collect(modelFor(server), HELLO)), ["a", "b", "c"]);
});

Deno.test("openai-compatible model reads events split across network chunks", async () => {
  await using server = startFakeOpenAiServer({
    replies: [rawReply(
      [
        'data: {"choices":[{"index":0,"delta":{"content":"Hi',
        ' there"},"finish_reason":null}]}\n',
        "\ndata: ",
        '{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
        "data: [DO",
        "NE]\n\n",
      ],
      { delayMs: 5 },
    )],
  });
  assertEquals(texts(await collect(modelFor(server), HELLO)), ["Hi there"]);
});

Deno.test("openai-compatible model turns HTTP 401 into an http error with OpenAI's message", async () => {
  await using server = startFakeOpenAiServer({
    apiKey: "sk-the-right-key-9999",
  });
  const { error } = await failure(modelFor(server), HELLO);
  assertEquals(error.kind, "http");
  assertEquals(error.status, 401);
  assertEquals(error.provider, "openai_compatible");
  assertStringIncludes(error.message, "HTTP 401");
  assertStringIncludes(error.message, "Incorrect API key provided");
  assertStringIncludes(error.message, "invalid_api_key");
  assertFalse(error.message.includes(API_KEY));
});

Deno.test("openai-compatible model never puts the API key in an error message", async () => {
  await using server = startFakeOpenAiServer({
    replies: [
      errorReply(401, `Incorrect API key provided: ${API_KEY}`),
      rawReply([`data: not json ${API_KEY}\n\n`]),
    ],
  });
  const model = modelFor(server);
  for (const kind of ["http", "protocol"]) {
    const { error } = await failure(model, HELLO);
    assertEquals(error.kind, kind);
    assertFalse(error.message.includes(API_KEY), error.message);
    assertStringIncludes(error.message, "[redacted]");
  }
});

Deno.test("openai-compatible model turns HTTP 500 into an http error with the vendor's message", async () => {
  await using server = startFakeOpenAiServer({
    replies: [
      errorReply(500, "The server had an error while processing your request."),
      { kind: "error", status: 502, body: "<html>Bad gateway</html>" },
    ],
  });
  const model = modelFor(server, { name: "groq" });
  const first = await failure(model, HELLO);
  assertEquals(first.error.kind, "http");
  assertEquals(first.error.status, 500);
  assertEquals(first.error.provider, "groq");
  assertStringIncludes(
    first.error.message,
    "The server had an error while processing your request. (server_error)",
  );
  const second = await failure(model, HELLO);
  assertEquals(second.error.status, 502);
  assertStringIncludes(second.error.message, "<html>Bad gateway</html>");
});

Deno.test("openai-compatible model reports a wrong path as an http 404", async () => {
  await using server = startFakeOpenAiServer({ replies: [textReply(["x"])] });
  const model = modelFor(server, {
    baseUrl: server.baseUrl.replace("/v1", ""),
  });
  const { error } = await failure(model, HELLO);
  assertEquals(error.kind, "http");
  assertEquals(error.status, 404);
  assertStringIncludes(error.message, "Invalid URL (POST /chat/completions)");
});

Deno.test("openai-compatible model times out on a server that never answers", async () => {
  await using server = startFakeOpenAiServer({ replies: [hangReply()] });
  const { events, error } = await failure(
    modelFor(server, { timeoutMs: 100 }),
    HELLO,
  );
  assertEquals(events, []);
  assertEquals(error.kind, "timeout");
  assertStringIncludes(error.message, "within 100 ms");
  await server.close();
  assertEquals(await server.requests[0].outcome, "closed");
});

Deno.test("openai-compatible model times out when the stream stalls between chunks", async () => {
  await using server = startFakeOpenAiServer({
    replies: [textReply(["Let me check"], { end: "hang", finishReason: null })],
  });
  const { events, error } = await failure(
    modelFor(server, { idleTimeoutMs: 100 }),
    HELLO,
  );
  assertEquals(texts(events), ["Let me check"]);
  assertEquals(error.kind, "timeout");
  assertStringIncludes(error.message, "nothing for 100 ms");
  assertEquals(await server.requests[0].outcome, "cancelled");
});

Deno.test("openai-compatible model's first-byte deadline is timeoutMs on its clock", async () => {
  const received = Promise.withResolvers<void>();
  await using server = startFakeOpenAiServer({
    replies: [() => {
      received.resolve();
      return hangReply();
    }],
  });
  const clock = new FakeClock();
  let settled = false;
  const pending = failure(modelFor(server, { timeoutMs: 5000, clock }), HELLO)
    .finally(() => settled = true);
  await received.promise;
  await clock.advance(4999);
  assertFalse(settled, "gave up before timeoutMs");
  await clock.advance(1);
  const { events, error } = await pending;
  assertEquals(events, []);
  assertEquals(error.kind, "timeout");
  assertStringIncludes(error.message, "within 5000 ms");
});

Deno.test("openai-compatible model's idle deadline is idleTimeoutMs on its clock, from the last piece", async () => {
  await using server = startFakeOpenAiServer({
    replies: [textReply(["Let me check"], { end: "hang", finishReason: null })],
  });
  const clock = new FakeClock();
  const model = modelFor(server, {
    timeoutMs: 5000,
    idleTimeoutMs: 2000,
    clock,
  });
  const stream = model.complete(HELLO);
  assertEquals((await stream.next()).value, {
    type: "text",
    text: "Let me check",
  });
  let settled = false;
  const next = stream.next().finally(() => settled = true);
  next.catch(() => {});
  await clock.advance(1999);
  assertFalse(settled, "gave up before idleTimeoutMs");
  await clock.advance(1);
  const error = await next.then(() => undefined, (error: unknown) => error);
  assertInstanceOf(error, ProviderError);
  assertEquals(error.kind, "timeout");
  assertStringIncludes(error.message, "nothing for 2000 ms");
});

Deno.test("openai-compatible model aborts while waiting for the response", async () => {
  const received = Promise.withResolvers<void>();
  await using server = startFakeOpenAiServer({
    replies: [() => {
      received.resolve();
      return hangReply();
    }],
  });
  const bargeIn = new AbortController();
  const pending = failure(modelFor(server), HELLO, { signal: bargeIn.signal });
  await received.promise;
  bargeIn.abort();
  const { events, error } = await pending;
  assertEquals(events, []);
  assertEquals(error.kind, "aborted");
});

Deno.test("openai-compatible model with an already aborted signal sends no request", async () => {
  await using server = startFakeOpenAiServer({ replies: [textReply(["x"])] });
  const { error } = await failure(modelFor(server), HELLO, {
    signal: AbortSignal.abort(),
  });
  assertEquals(error.kind, "aborted");
  assertEquals(server.requests.length, 0);
});

Deno.test("openai-compatible model cancels the stream when the consumer stops early", async () => {
  await using server = startFakeOpenAiServer({
    replies: [textReply(["one", "two", "three"], { end: "hang" })],
  });
  for await (const event of modelFor(server).complete(HELLO)) {
    assertEquals(event, { type: "text", text: "one" });
    break;
  }
  assertEquals(await server.requests[0].outcome, "cancelled");
});

Deno.test("openai-compatible model reports malformed JSON in the stream as a protocol error", async () => {
  await using server = startFakeOpenAiServer({
    replies: [rawReply([
      'data: {"choices":[{"index":0,"delta":{"content":"ok"}}]}\n\n',
      'data: {"choices": [\n\n',
    ])],
  });
  const { events, error } = await failure(modelFor(server), HELLO);
  assertEquals(texts(events), ["ok"]);
  assertEquals(error.kind, "protocol");
  assertStringIncludes(error.message, "Invalid JSON in the stream");
  assertStringIncludes(error.message, '"{"choices": ["');
});

Deno.test("openai-compatible model reports chunks of the wrong shape as protocol errors", async () => {
  const badChunks = [
    '"just a string"',
    '{"choices":{"index":0}}',
    '{"choices":[{"index":0,"delta":{"content":5}}]}',
    '{"choices":[{"index":0,"delta":{"tool_calls":[{"index":"0"}]}}]}',
  ];
  await using server = startFakeOpenAiServer({
    replies: badChunks.map((data) => rawReply([`data: ${data}\n\n`])),
  });
  const model = modelFor(server);
  for (const _ of badChunks) {
    const { error } = await failure(model, HELLO);
    assertEquals(error.kind, "protocol", error.message);
  }
});

Deno.test("openai-compatible model reports a tool call without a name as a protocol error", async () => {
  await using server = startFakeOpenAiServer({
    replies: [rawReply([
      'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"arguments":"{}"}}]}}]}\n\n',
      'data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n',
      "data: [DONE]\n\n",
    ])],
  });
  const { error } = await failure(modelFor(server), HELLO);
  assertEquals(error.kind, "protocol");
  assertStringIncludes(error.message, "has no function name");
});

Deno.test("openai-compatible model reports an error sent mid-stream", async () => {
  await using server = startFakeOpenAiServer({
    replies: [rawReply([
      'data: {"error":{"message":"Model overloaded","type":"server_error"}}\n\n',
    ])],
  });
  const { error } = await failure(modelFor(server), HELLO);
  assertEquals(error.kind, "protocol");
  assertStringIncludes(error.message, "Model overloaded");
});

Deno.test("openai-compatible model refuses a JSON answer where a stream was asked for", async () => {
  await using server = startFakeOpenAiServer({
    replies: [
      rawReply(['{"choices":[]}'], { contentType: "application/json" }),
    ],
  });
  const { error } = await failure(modelFor(server), HELLO);
  assertEquals(error.kind, "protocol");
  assertStringIncludes(error.message, "expected a text/event-stream");
});

Deno.test("openai-compatible model reports a stream that breaks off as a network error", async () => {
  await using server = startFakeOpenAiServer({
    replies: [
      textReply(["I was saying"], { end: "disconnect", finishReason: null }),
    ],
  });
  const { events, error } = await failure(modelFor(server), HELLO);
  assertEquals(texts(events), ["I was saying"]);
  assertEquals(error.kind, "network");
  assertEquals(await server.requests[0].outcome, "disconnected");
});

Deno.test("openai-compatible model reports a stream that ends before finishing as a network error", async () => {
  await using server = startFakeOpenAiServer({
    replies: [textReply(["Half"], { end: "close", finishReason: null })],
  });
  const { events, error } = await failure(modelFor(server), HELLO);
  assertEquals(texts(events), ["Half"]);
  assertEquals(error.kind, "network");
  assertStringIncludes(error.message, "ended before the completion did");
});

Deno.test("openai-compatible model accepts a finished stream without [DONE]", async () => {
  await using server = startFakeOpenAiServer({
    replies: [textReply(["Fine"], { end: "close" })],
  });
  assertEquals(texts(await collect(modelFor(server), HELLO)), ["Fine"]);
});

Deno.test("openai-compatible model reports an unreachable server as a network error", async () => {
  const server = startFakeOpenAiServer();
  await server.close();
  const { error } = await failure(modelFor(server), HELLO);
  assertEquals(error.kind, "network");
  assertStringIncludes(error.message, server.baseUrl);
});

Deno.test("openai-compatible model serves a reply chosen from the request", async () => {
  await using server = startFakeOpenAiServer({
    defaultReply: (request) => {
      const messages = request.body?.messages;
      assert(Array.isArray(messages));
      return textReply([`You said ${messages.length} things`]);
    },
  });
  const model = modelFor(server);
  assertEquals(texts(await collect(model, HELLO)), ["You said 1 things"]);
  assertEquals(
    texts(await collect(model, [...HELLO, ...HELLO])),
    ["You said 2 things"],
  );
  assertEquals(server.pendingReplies, 0);
});

Deno.test("openai-compatible model rejects bad options before any request", () => {
  const base = {
    baseUrl: "https://api.openai.com/v1",
    model: "gpt-4o-mini",
    timeoutMs: 1_000,
  };
  const cases: [Partial<OpenAiCompatibleOptions>, string][] = [
    [{ baseUrl: "ftp://example.com" }, 'Invalid baseUrl "ftp://example.com"'],
    [{ baseUrl: "not a url" }, 'Invalid baseUrl "not a url"'],
    [{ model: " " }, 'Invalid model " "'],
    [{ timeoutMs: 0 }, 'Invalid timeoutMs "0"'],
    [{ idleTimeoutMs: -5 }, 'Invalid idleTimeoutMs "-5"'],
    [{ temperature: 2.5 }, 'Invalid temperature "2.5"'],
    [{ maxTokens: 1.5 }, 'Invalid maxTokens "1.5"'],
  ];
  for (const [options, message] of cases) {
    assertThrows(
      () => new OpenAiCompatibleModel({ ...base, ...options }),
      TypeError,
      message,
    );
  }
  const model = new OpenAiCompatibleModel({ ...base, name: "openai" });
  assertEquals(model.name, "openai");
  assertEquals(model.model, "gpt-4o-mini");
});
