import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { loadConfig } from "../src/config.ts";
import { createApp } from "../src/server.ts";
import {
  closed,
  closeSocket,
  connect,
  serve,
  until,
  upgradeRequest,
} from "./fakes/sockets.ts";
import { FakeExotelApi } from "./fakes/exotel_api.ts";

const info = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
} as Deno.ServeHandlerInfo;

function app(env: Record<string, string> = {}) {
  return createApp(loadConfig(env));
}

async function call(
  env: Record<string, string>,
  path: string,
  init: RequestInit = {},
): Promise<
  { status: number; headers: Headers; body: Record<string, unknown> }
> {
  const response = await app(env).handler(
    new Request(`http://localhost:3000${path}`, init),
    info,
  );
  assertEquals(
    response.headers.get("content-type"),
    "application/json; charset=utf-8",
  );
  return {
    status: response.status,
    headers: response.headers,
    body: await response.json(),
  };
}

Deno.test("GET /health reports status, version, uptime and live sessions", async () => {
  const { status, body } = await call({}, "/health");
  assertEquals(status, 200);
  assertEquals(body.status, "ok");
  assertEquals(typeof body.version, "string");
  assertEquals(typeof body.uptimeS, "number");
  assertEquals(body.activeSessions, 0);
  assertEquals(body.bot, "echo");
});

Deno.test("unknown routes get a JSON 404", async () => {
  const { status, body } = await call({}, "/nope");
  assertEquals(status, 404);
  assertEquals(body.error, {
    status: 404,
    code: "not_found",
    message: 'No route for "/nope"',
  });
});

Deno.test("a wrong method gets a JSON 405 with Allow", async () => {
  const { status, headers, body } = await call({}, "/health", {
    method: "DELETE",
  });
  assertEquals(status, 405);
  assertEquals(headers.get("allow"), "GET");
  assertEquals(
    (body.error as Record<string, unknown>).code,
    "method_not_allowed",
  );
  const connect = await call({}, "/api/v1/exotel/voice/connect", {
    method: "PUT",
  });
  assertEquals(connect.headers.get("allow"), "GET, POST");
});

Deno.test("GET /voicebot/sessions answers the seed's shape", async () => {
  const { status, body } = await call({}, "/voicebot/sessions");
  assertEquals(status, 200);
  assertEquals(body, { total: 0, sessions: [] });
});

Deno.test("admin endpoints need ADMIN_TOKEN as a bearer token when it is set", async () => {
  const env = { ADMIN_TOKEN: "s3cret" };
  for (
    const authorization of [
      undefined,
      "Bearer wrong",
      "Basic czNjcmV0",
      "s3cret",
    ]
  ) {
    const headers: Record<string, string> = authorization
      ? { authorization }
      : {};
    const { status, body } = await call(env, "/voicebot/sessions", { headers });
    assertEquals(status, 401, `${authorization}`);
    assertEquals((body.error as Record<string, unknown>).code, "unauthorized");
  }
  const ok = await call(env, "/voicebot/sessions", {
    headers: { authorization: "Bearer s3cret" },
  });
  assertEquals(ok.status, 200);
  const calls = await call(env, "/call", { method: "POST", body: "{}" });
  assertEquals(calls.status, 401);
  const status = await call(env, "/call/CA1");
  assertEquals(status.status, 401);
  assertEquals((await call(env, "/health")).status, 200, "health stays open");
});

Deno.test("the voicebot path answers a plain GET with 426 and a helpful message", async () => {
  const { status, body } = await call({}, "/voicebot/ws");
  assertEquals(status, 426);
  assertStringIncludes(
    (body.error as Record<string, string>).message,
    "WebSocket",
  );
});

Deno.test("the dynamic URL endpoint builds the socket URL from the request's host", async () => {
  const { status, body } = await call(
    {},
    "/api/v1/exotel/voice/connect?CallSid=CA123&CallFrom=0987",
  );
  assertEquals(status, 200);
  assertEquals(body, {
    url: "ws://localhost:3000/voicebot/ws?call_id=CA123&sample-rate=8000",
  });
});

Deno.test("behind trusted proxies the dynamic URL endpoint honours X-Forwarded-Proto and X-Forwarded-Host", async () => {
  // Two proxies: the outer one's entry is second from the right.
  const { body } = await call(
    { TRUST_PROXY: "2" },
    "/api/v1/exotel/voice/connect?CallSid=CA1",
    {
      headers: {
        "x-forwarded-proto": "https",
        "x-forwarded-host": "bot.example.com, proxy.internal",
      },
    },
  );
  assertEquals(
    body.url,
    "wss://bot.example.com/voicebot/ws?call_id=CA1&sample-rate=8000",
  );
});

Deno.test("the dynamic URL endpoint prefers WEBHOOK_BASE_URL, then RENDER_EXTERNAL_URL", async () => {
  const webhook = await call(
    {
      WEBHOOK_BASE_URL: "https://hooks.example.com",
      RENDER_EXTERNAL_URL: "https://r.onrender.com",
    },
    "/api/v1/exotel/voice/connect?CallSid=CA1",
  );
  assertEquals(
    webhook.body.url,
    "wss://hooks.example.com/voicebot/ws?call_id=CA1&sample-rate=8000",
  );
  const render = await call(
    { RENDER_EXTERNAL_URL: "https://r.onrender.com" },
    "/api/v1/exotel/voice/connect",
  );
  assertEquals(
    render.body.url,
    "wss://r.onrender.com/voicebot/ws?sample-rate=8000",
  );
});

Deno.test("the dynamic URL endpoint reads POSTed forms and JSON, with rate and custom parameters", async () => {
  const form = await call({ WS_PATH: "/bot" }, "/api/v1/exotel/voice/connect", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "CallSid=CA7&CustomField=order-42&sample-rate=16000",
  });
  assertEquals(
    form.body.url,
    "ws://localhost:3000/bot?call_id=CA7&sample-rate=16000&CustomField=order-42",
  );
  const json = await call(
    { DEFAULT_SAMPLE_RATE: "24000" },
    "/api/v1/exotel/voice/connect",
    {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        CallSid: "CA8",
        custom_lang: "hi",
        sample_rate: "11025",
      }),
    },
  );
  assertEquals(
    json.body.url,
    "ws://localhost:3000/voicebot/ws?call_id=CA8&sample-rate=24000&custom_lang=hi",
  );
});

Deno.test("the dynamic URL endpoint refuses custom parameters beyond Exotel's limits", async () => {
  const tooMany = await call(
    {},
    "/api/v1/exotel/voice/connect?custom_a=1&custom_b=2&custom_c=3&custom_d=4",
  );
  assertEquals(tooMany.status, 400);
  assertEquals(
    (tooMany.body.error as Record<string, unknown>).code,
    "invalid_custom_parameters",
  );
  const tooLong = await call(
    {},
    `/api/v1/exotel/voice/connect?custom_a=${"x".repeat(300)}`,
  );
  assertEquals(tooLong.status, 400);
});

Deno.test("a malformed JSON body gets a JSON 400", async () => {
  const { status, body } = await call({}, "/api/v1/exotel/voice/connect", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{oops",
  });
  assertEquals(status, 400);
  assertEquals((body.error as Record<string, unknown>).code, "invalid_body");
});

// Real sockets from here on: the upgrade path needs a real server.

Deno.test("socket auth: bearer and Basic pass, anything else is refused with 401 before the upgrade", async () => {
  await using server = await serve({
    EXOTEL_WS_TOKEN: "tok",
    EXOTEL_WS_BASIC_AUTH: "key:secret",
  });
  const url = `ws://127.0.0.1:${server.addr.port}/voicebot/ws?call_id=CA1`;
  const basic = `Basic ${new TextEncoder().encode("key:secret").toBase64()}`;
  for (const authorization of ["Bearer tok", basic]) {
    const ws = await connect(url, { authorization });
    assert(ws instanceof WebSocket, `${authorization}: ${ws}`);
    await closeSocket(ws);
  }
  for (
    const headers of [undefined, { authorization: "Bearer nope" }, {
      authorization: "Basic a2V5Om5vcGU=",
    }]
  ) {
    const refused = await connect(url, headers);
    assertEquals(typeof refused, "string");
    assertStringIncludes(refused as string, "401");
  }
  const plain = await upgradeRequest(url);
  assertEquals(plain.status, 401);
  assertEquals((await plain.json()).error.code, "unauthorized");
  assertEquals(plain.headers.get("www-authenticate"), 'Basic realm="exovoice"');
});

Deno.test("a live call shows in /voicebot/sessions and leaves it when the socket closes", async () => {
  await using server = await serve({});
  const base = `127.0.0.1:${server.addr.port}`;
  const ws = await connect(
    `ws://${base}/voicebot/ws?call_id=CA77&sample-rate=16000`,
  );
  assert(ws instanceof WebSocket);
  ws.send(JSON.stringify({ event: "connected" }));
  ws.send(
    JSON.stringify({
      event: "start",
      stream_sid: "S77",
      start: { call_sid: "CA77", from: "+911" },
    }),
  );
  let sessions: Array<Record<string, unknown>> = [];
  while (sessions.length === 0 || sessions[0].state !== "started") {
    const response = await fetch(`http://${base}/voicebot/sessions`);
    sessions = (await response.json()).sessions;
  }
  assertEquals(sessions[0].callId, "CA77");
  assertEquals(sessions[0].streamSid, "S77");
  assertEquals(sessions[0].sampleRate, 16000);
  assertEquals(sessions[0].isActive, true);
  for (
    const key of [
      "connectedAt",
      "lastActivity",
      "sequenceNumber",
      "audioChunksBuffered",
    ]
  ) assert(key in sessions[0]);
  await closeSocket(ws);
  await until(() => server.registry.size === 0);
  const after = await (await fetch(`http://${base}/voicebot/sessions`)).json();
  assertEquals(after, { total: 0, sessions: [] });
});

Deno.test("shutdown ends live calls with 1001", async () => {
  const server = await serve({});
  const ws = await connect(`ws://127.0.0.1:${server.addr.port}/voicebot/ws`);
  assert(ws instanceof WebSocket);
  const code = closed(ws);
  await until(() => server.registry.size === 1);
  await server.shutdown();
  assertEquals(await code, 1001);
  assertEquals(server.registry.size, 0);
});

Deno.test("POST /call through the router dials via the Exotel API set in the environment", async () => {
  await using exotel = await FakeExotelApi.start();
  const { apiKey, apiToken, accountSid } = exotel.credentials;
  await using server = await serve({
    ADMIN_TOKEN: "adm",
    WEBHOOK_BASE_URL: "https://bot.example.com",
    EXOTEL_API_KEY: apiKey,
    EXOTEL_API_TOKEN: apiToken,
    EXOTEL_ACCOUNT_SID: accountSid,
    EXOTEL_CALLER_ID: "08047491899",
    EXOTEL_API_BASE_URL: exotel.baseUrl,
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  const headers = {
    authorization: "Bearer adm",
    "content-type": "application/json",
  };
  const placed = await fetch(`${base}/call`, {
    method: "POST",
    headers,
    body: JSON.stringify({ to: "+919876543210", sampleRate: 16000 }),
  });
  const body = await placed.json();
  assertEquals(placed.status, 201, JSON.stringify(body));
  assertEquals(body.mode, "stream");
  const sent = new URLSearchParams(exotel.requests.at(-1)!.body);
  assertEquals(
    sent.get("StreamUrl"),
    "wss://bot.example.com/voicebot/ws?sample-rate=16000",
  );
  assertEquals(sent.get("StreamType"), "bidirectional");
  const status = await fetch(`${base}/call/${body.sid}`, { headers });
  assertEquals(status.status, 200);
  assertEquals((await status.json()).sid, body.sid);
});

Deno.test("with TLS_CERT_FILE and TLS_KEY_FILE the server speaks https itself", async () => {
  const tls = new URL("./fixtures/tls/", import.meta.url);
  await using server = await serve({
    TLS_CERT_FILE: new URL("localhost.crt", tls).pathname,
    TLS_KEY_FILE: new URL("localhost.key", tls).pathname,
  });
  using client = Deno.createHttpClient({
    caCerts: [await Deno.readTextFile(new URL("ca.crt", tls))],
  });
  const response = await fetch(`https://localhost:${server.addr.port}/health`, {
    client,
  });
  assertEquals(response.status, 200);
  assertEquals((await response.json()).status, "ok");
});

Deno.test("the Passthru endpoint answers 200 for a call the bot transferred, 302 otherwise", async () => {
  const outcomes: Record<string, string> = { CA1: "transfer", CA2: "end_call" };
  const app = createApp(loadConfig({}), { outcomeOf: (sid) => outcomes[sid] });
  const ask = (query: string) =>
    app.handler(
      new Request(`http://localhost/api/v1/exotel/passthru${query}`),
      info,
    );
  const transferred = await ask("?CallSid=CA1");
  assertEquals(transferred.status, 200);
  assertEquals(await transferred.json(), {
    callSid: "CA1",
    outcome: "transfer",
    transfer: true,
  });
  for (const query of ["?CallSid=CA2", "?CallSid=CA3", ""]) {
    const other = await ask(query);
    assertEquals(other.status, 302, query);
    assertEquals((await other.json()).transfer, false);
  }
});
