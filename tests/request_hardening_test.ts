/**
 * What a stranger can send the HTTP side, against the real server on
 * loopback: spoofed forwarding chains, auth failures from a shared address,
 * malformed upgrades and paths, oversized headers, peer text in logs.
 */
import {
  assert,
  assertEquals,
  assertFalse,
  assertStringIncludes,
} from "@std/assert";
import { captureLogs } from "./fakes/log_capture.ts";
import { rawRequest, type RawResponse, upgradeText } from "./fakes/raw_http.ts";
import {
  closed,
  closeSocket,
  connect,
  serve,
  until,
  upgradeRequest,
} from "./fakes/sockets.ts";

/** Asserts `response` is the JSON error shape with `status` and `code`, and shows nothing internal. */
function assertJsonError(
  response: RawResponse,
  status: number,
  code: string,
): void {
  assertEquals(response.status, status, response.body);
  assertEquals(
    response.headers.get("content-type"),
    "application/json; charset=utf-8",
  );
  const { error } = JSON.parse(response.body);
  assertEquals([error.status, error.code], [status, code]);
  assertEquals(typeof error.message, "string");
  assertFalse(/\n\s+at /.test(response.body), "no stack trace");
}

async function statusOf(response: Promise<Response>): Promise<number> {
  const answered = await response;
  await answered.body?.cancel();
  return answered.status;
}

// ---- Item 4: TRUST_PROXY takes the address the trusted proxy saw ----

Deno.test("TRUST_PROXY=true: a client-written first X-Forwarded-For hop does not pass the allow-list", async () => {
  await using server = await serve({
    TRUST_PROXY: "true",
    EXOTEL_IP_ALLOWLIST: "10.0.0.0/8",
  });
  const url = `ws://127.0.0.1:${server.addr.port}/voicebot/ws`;
  // The client wrote "10.1.2.3"; our proxy appended the 8.8.8.8 it saw.
  const refused = await upgradeRequest(url, {
    "x-forwarded-for": "10.1.2.3, 8.8.8.8",
  });
  assertEquals(refused.status, 403);
  assertStringIncludes((await refused.json()).error.message, '"8.8.8.8"');
  const ws = await connect(url, { "x-forwarded-for": "8.8.8.8, 10.1.2.3" });
  assert(ws instanceof WebSocket, "the address the proxy saw is allowed");
  await closeSocket(ws);
});

Deno.test("TRUST_PROXY=2: the client address is the one the outer of two proxies saw", async () => {
  await using server = await serve({
    TRUST_PROXY: "2",
    EXOTEL_IP_ALLOWLIST: "198.51.100.0/24",
  });
  const url = `ws://127.0.0.1:${server.addr.port}/voicebot/ws`;
  // Spoofed 198.51.100.7; the CDN saw 8.8.8.8; the balancer saw the CDN.
  const refused = await upgradeRequest(url, {
    "x-forwarded-for": "198.51.100.7, 8.8.8.8, 10.0.0.2",
  });
  assertEquals(refused.status, 403);
  assertStringIncludes((await refused.json()).error.message, '"8.8.8.8"');
  const ws = await connect(url, {
    "x-forwarded-for": "8.8.8.8, 198.51.100.7, 10.0.0.2",
  });
  assert(ws instanceof WebSocket);
  await closeSocket(ws);
});

Deno.test("TRUST_PROXY=true: a call's remote address is the one the proxy saw", async () => {
  await using server = await serve({ TRUST_PROXY: "true" });
  const ws = await connect(
    `ws://127.0.0.1:${server.addr.port}/voicebot/ws`,
    { "x-forwarded-for": "10.9.9.9, 203.0.113.5" },
  );
  assert(ws instanceof WebSocket);
  await until(() => server.registry.size === 1);
  assertEquals(
    [...server.registry.values()].map((session) => session.remoteAddress),
    ["203.0.113.5"],
  );
  await closeSocket(ws);
});

Deno.test("without TRUST_PROXY, X-Forwarded-For is ignored: the socket's peer is the client", async () => {
  await using server = await serve({ EXOTEL_IP_ALLOWLIST: "10.0.0.0/8" });
  const refused = await upgradeRequest(
    `ws://127.0.0.1:${server.addr.port}/voicebot/ws`,
    { "x-forwarded-for": "10.1.2.3" },
  );
  assertEquals(refused.status, 403);
  assertStringIncludes((await refused.json()).error.message, '"127.0.0.1"');
});

Deno.test("TRUST_PROXY=true: rotating a spoofed first hop does not dodge the POST /call rate limit", async () => {
  await using server = await serve({
    TRUST_PROXY: "true",
    CALL_RATE_LIMIT_PER_MIN: "2",
  });
  const url = `http://127.0.0.1:${server.addr.port}/call`;
  const post = (forwardedFor: string) =>
    statusOf(fetch(url, {
      method: "POST",
      headers: { "x-forwarded-for": forwardedFor },
      body: JSON.stringify({ to: "+919876543210" }),
    }));
  const statuses = [];
  for (let i = 0; i < 3; i++) {
    statuses.push(await post(`192.0.2.${i}, 203.0.113.9`));
  }
  assertEquals(statuses, [503, 503, 429], "not configured twice, then limited");
  assertEquals(
    await post("203.0.113.10"),
    503,
    "another client is not limited",
  );
});

Deno.test("TRUST_PROXY=true: failing auth with a victim's address spoofed charges the attacker, not the victim", async () => {
  await using server = await serve({
    TRUST_PROXY: "true",
    EXOTEL_WS_TOKEN: "tok",
    AUTH_FAILURE_LIMIT_PER_MIN: "3",
  });
  const url = `ws://127.0.0.1:${server.addr.port}/voicebot/ws`;
  const attempt = (forwardedFor: string) =>
    statusOf(upgradeRequest(url, {
      authorization: "Bearer wrong",
      "x-forwarded-for": forwardedFor,
    }));
  const attacker = [];
  for (let i = 0; i < 5; i++) {
    attacker.push(await attempt("198.51.100.7, 203.0.113.66"));
  }
  assertEquals(attacker, [401, 401, 401, 429, 429]);
  assertEquals(
    await attempt("198.51.100.7"),
    401,
    "the victim's own failures are still counted from zero",
  );
});

// ---- Item 6: only failures are limited ----

Deno.test("25 failed attempts from one address: the right credentials still upgrade (101), /health and callbacks still answer", async () => {
  await using server = await serve({
    EXOTEL_WS_TOKEN: "tok",
    ADMIN_TOKEN: "admin",
  });
  const base = `127.0.0.1:${server.addr.port}`;
  const url = `ws://${base}/voicebot/ws`;
  const statuses = [];
  for (let i = 0; i < 25; i++) {
    statuses.push(
      await statusOf(upgradeRequest(url, { authorization: "Bearer wrong" })),
    );
  }
  assertEquals(statuses, [...Array(20).fill(401), ...Array(5).fill(429)]);
  const ws = await connect(url, { authorization: "Bearer tok" });
  assert(ws instanceof WebSocket, `the right token upgrades: ${ws}`);
  assertEquals(await statusOf(fetch(`http://${base}/health`)), 200);
  assertEquals(
    await statusOf(fetch(`http://${base}/voicebot/sessions`, {
      headers: { authorization: "Bearer admin" },
    })),
    200,
    "the right admin token passes too",
  );
  assertEquals(
    await statusOf(fetch(`http://${base}/voicebot/sessions`, {
      headers: { authorization: "Bearer guess" },
    })),
    429,
    "a wrong admin token from the same address is still limited",
  );
  const callback = await statusOf(
    fetch(`http://${base}/api/v1/exotel/status`, {
      method: "POST",
      body: new URLSearchParams({ CallSid: "CA1", Status: "completed" }),
    }),
  );
  assert(callback !== 429, `status callbacks are not locked out (${callback})`);
  await closeSocket(ws);
});

// ---- Item 8: 4xx, not 500, for bad input ----

Deno.test("malformed and unsupported WebSocket upgrades get a JSON 400 or 426, never 101 or 500, and log no ERROR", async () => {
  await using logs = await captureLogs();
  await using server = await serve();
  const { port } = server.addr;
  const path = "/voicebot/ws";
  assertJsonError(
    await rawRequest(
      port,
      upgradeText(path, { headers: { "Sec-WebSocket-Key": null } }),
    ),
    400,
    "invalid_upgrade",
  );
  assertJsonError(
    await rawRequest(
      port,
      upgradeText(path, { headers: { "Sec-WebSocket-Key": "c2hvcnQ=" } }),
    ),
    400,
    "invalid_upgrade",
  );
  assertJsonError(
    await rawRequest(
      port,
      upgradeText(path, { headers: { Connection: null } }),
    ),
    400,
    "invalid_upgrade",
  );
  const version8 = await rawRequest(
    port,
    upgradeText(path, { headers: { "Sec-WebSocket-Version": "8" } }),
  );
  assertJsonError(version8, 426, "unsupported_websocket_version");
  assertEquals(version8.headers.get("sec-websocket-version"), "13");
  assertJsonError(
    await rawRequest(
      port,
      upgradeText(path, { version: "HTTP/1.0", headers: { Host: null } }),
    ),
    400,
    "invalid_upgrade",
  );
  const good = await rawRequest(port, upgradeText(path));
  assertEquals(good.status, 101, "a well-formed upgrade still succeeds");
  await until(() => server.registry.size === 0);
  assertEquals(logs.lines("error"), []);
});

Deno.test("a malformed upgrade without credentials gets 401 before anything about the handshake", async () => {
  await using server = await serve({ EXOTEL_WS_TOKEN: "tok" });
  assertJsonError(
    await rawRequest(
      server.addr.port,
      upgradeText("/voicebot/ws", { headers: { "Sec-WebSocket-Key": null } }),
    ),
    401,
    "unauthorized",
  );
});

Deno.test("bad % escapes and 10 KB ids in /calls/:id and /call/:sid get 400 after auth, 401 before", async () => {
  await using logs = await captureLogs();
  await using server = await serve({ ADMIN_TOKEN: "admin" });
  const { port } = server.addr;
  const get = (path: string, token?: string) =>
    rawRequest(
      port,
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${
        token ? `Authorization: Bearer ${token}\r\n` : ""
      }Connection: close\r\n\r\n`,
    );
  const long = "A".repeat(10 * 1024);
  for (const path of ["/calls/%ZZ", "/call/%E0%A4%A", "/calls/%"]) {
    assertJsonError(await get(path), 401, "unauthorized");
    assertJsonError(await get(path, "admin"), 400, "invalid_path");
  }
  for (const path of [`/calls/${long}`, `/call/${long}`]) {
    assertJsonError(await get(path, "admin"), 400, "invalid_path");
  }
  assertJsonError(
    await get("/calls/unknown-id", "admin"),
    404,
    "call_not_found",
  );
  assertEquals(logs.lines("error"), []);
});

Deno.test("GET /calls with from later than to, or a from no date can hold, gets 400", async () => {
  await using logs = await captureLogs();
  await using server = await serve();
  const { port } = server.addr;
  const get = (query: string) =>
    rawRequest(
      port,
      `GET /calls?${query} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
    );
  assertJsonError(
    await get("from=2026-02-01&to=2026-01-01"),
    400,
    "invalid_query",
  );
  assertJsonError(
    await get("from=99999999999999999999"),
    400,
    "invalid_query",
  );
  assertJsonError(await get("to=8640000000000001"), 400, "invalid_query");
  assertEquals((await get("from=2026-01-01&to=2026-01-01")).status, 200);
  assertEquals(logs.lines("error"), []);
});

Deno.test("GET /call/:sid with characters no CallSid has gets 400", async () => {
  await using server = await serve({
    EXOTEL_API_KEY: "k",
    EXOTEL_API_TOKEN: "t",
    EXOTEL_ACCOUNT_SID: "acct",
    EXOTEL_CALLER_ID: "08030752400",
    EXOTEL_API_BASE_URL: "http://127.0.0.1:9",
  });
  assertJsonError(
    await rawRequest(
      server.addr.port,
      "GET /call/..%2F..%2Fsecret HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    ),
    400,
    "invalid_sid",
  );
});

Deno.test("a Host header that makes no URL gets a JSON 400, not Deno's plain 500", async () => {
  await using logs = await captureLogs();
  await using server = await serve();
  for (const path of ["/health", "/api/v1/exotel/voice/connect"]) {
    assertJsonError(
      await rawRequest(
        server.addr.port,
        `GET ${path} HTTP/1.1\r\nHost: [::1\r\nConnection: close\r\n\r\n`,
      ),
      400,
      "invalid_host",
    );
  }
  assertEquals(logs.lines("error"), []);
});

// ---- Item 9: headers, X-Forwarded-Host, log templates ----

Deno.test("request headers over 16 KiB get a JSON 431; past Deno's own limit Deno answers a bare 400 and the server keeps serving", async () => {
  await using server = await serve();
  const { port } = server.addr;
  const withHeader = (bytes: number) =>
    rawRequest(
      port,
      `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${
        "a".repeat(bytes)
      }\r\nConnection: close\r\n\r\n`,
    );
  assertJsonError(await withHeader(20 * 1024), 431, "headers_too_large");
  const manyFields = Array.from({ length: 110 }, (_, i) => `X-F${i}: a\r\n`)
    .join("");
  assertJsonError(
    await rawRequest(
      port,
      `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n${manyFields}Connection: close\r\n\r\n`,
    ),
    431,
    "headers_too_large",
  );
  const beyondDeno = await withHeader(80 * 1024);
  assertEquals(
    [beyondDeno.status, beyondDeno.body],
    [400, ""],
    "Deno itself refuses this before any handler runs",
  );
  assertEquals((await withHeader(100)).status, 200);
});

Deno.test("with WEBHOOK_BASE_URL unset, the dynamic URL endpoint follows X-Forwarded-Host only with TRUST_PROXY", async () => {
  const headers = {
    "x-forwarded-proto": "https",
    "x-forwarded-host": "evil.example.net",
  };
  const path = "/api/v1/exotel/voice/connect?CallSid=CA1";
  {
    await using server = await serve();
    const response = await fetch(
      `http://127.0.0.1:${server.addr.port}${path}`,
      { headers },
    );
    assertEquals(
      (await response.json()).url,
      `ws://127.0.0.1:${server.addr.port}/voicebot/ws?call_id=CA1&sample-rate=8000`,
    );
  }
  {
    await using server = await serve({ TRUST_PROXY: "true" });
    const response = await fetch(
      `http://127.0.0.1:${server.addr.port}${path}`,
      { headers },
    );
    assertEquals(
      (await response.json()).url,
      "wss://evil.example.net/voicebot/ws?call_id=CA1&sample-rate=8000",
    );
    const bad = await rawRequest(
      server.addr.port,
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-Host: a b/c\r\nConnection: close\r\n\r\n`,
    );
    assertJsonError(bad, 400, "invalid_host");
  }
});

Deno.test("an event named with {placeholders} is logged as sent, never filled with the call's own values", async () => {
  await using logs = await captureLogs();
  await using server = await serve();
  const ws = await connect(`ws://127.0.0.1:${server.addr.port}/voicebot/ws`);
  assert(ws instanceof WebSocket);
  ws.send(JSON.stringify({
    event: "start",
    stream_sid: "S",
    start: { call_sid: "CA-real" },
  }));
  await until(() => server.registry.size === 1);
  const [session] = [...server.registry.values()];
  ws.send(JSON.stringify({ event: "{sessionId} {callId} {kind}" }));
  await until(() =>
    logs.lines("warning").some((line) => line.includes("Unknown event"))
  );
  const line = logs.lines("warning").find((text) =>
    text.includes("Unknown event")
  )!;
  assertStringIncludes(line, "{sessionId} {callId} {kind}");
  assertFalse(line.includes(session.id), line);
  assertFalse(line.includes("CA-real"), line);
  const done = closed(ws);
  ws.close();
  await done;
});
