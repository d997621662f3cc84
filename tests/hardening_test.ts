/** Limits, drain and abuse handling, against the real server on loopback. */
import { assert, assertEquals } from "@std/assert";
import { RawWebSocket } from "./fakes/raw_websocket.ts";
import { startServerProcess } from "./fakes/server_process.ts";
import { CallStore, openKv } from "../src/records/call_store.ts";
import {
  closed,
  connect,
  serve,
  until,
  upgradeRequest,
} from "./fakes/sockets.ts";

const START = JSON.stringify({
  event: "start",
  stream_sid: "S",
  start: { call_sid: "C" },
});

Deno.test("beyond MAX_SESSIONS the upgrade gets 503 with Retry-After and /health shows saturation", async () => {
  await using server = await serve({ MAX_SESSIONS: "2" });
  const base = `127.0.0.1:${server.addr.port}`;
  const url = `ws://${base}/voicebot/ws`;
  const sockets = [await connect(url), await connect(url)] as WebSocket[];
  await until(() => server.registry.size === 2);
  const refused = await upgradeRequest(url);
  assertEquals(refused.status, 503);
  assertEquals(refused.headers.get("retry-after"), "5");
  assertEquals((await refused.json()).error.code, "server_full");
  const health = await (await fetch(`http://${base}/health`)).json();
  assertEquals([health.activeSessions, health.maxSessions, health.saturation], [
    2,
    2,
    1,
  ]);
  for (const ws of sockets) {
    const done = closed(ws);
    ws.close();
    await done;
  }
  await until(() => server.registry.size === 0);
  const ws = await connect(url);
  assert(ws instanceof WebSocket, "a slot frees up when a call ends");
  const done = closed(ws);
  ws.close();
  await done;
});

Deno.test("a drain refuses new calls, says so on /health, and lets a live call finish", async () => {
  const server = await serve();
  const base = `127.0.0.1:${server.addr.port}`;
  const live = await connect(`ws://${base}/voicebot/ws`) as WebSocket;
  live.send(START);
  await until(() => server.registry.size === 1);
  const drained = server.drain(30_000);
  const health = await fetch(`http://${base}/health`);
  assertEquals(health.status, 503);
  assertEquals((await health.json()).status, "draining");
  const refused = await upgradeRequest(`ws://${base}/voicebot/ws`);
  assertEquals(refused.status, 503);
  assertEquals((await refused.json()).error.code, "draining");
  const liveClosed = closed(live);
  live.send(JSON.stringify({ event: "stop", stop: { reason: "callended" } }));
  assertEquals(await liveClosed, 1000);
  assertEquals(await drained, 0, "no call had to be cut");
});

Deno.test("a drain that times out ends the remaining calls with 1001", async () => {
  const server = await serve();
  const live = await connect(
    `ws://127.0.0.1:${server.addr.port}/voicebot/ws`,
  ) as WebSocket;
  live.send(START);
  await until(() => server.registry.size === 1);
  const code = closed(live);
  assertEquals(await server.drain(200), 1);
  assertEquals(await code, 1001);
  assertEquals(server.registry.size, 0);
});

Deno.test("a socket that never sends start is closed at the handshake deadline", async () => {
  // Only the handshake deadline is short: the close says which one fired.
  await using server = await serve({ HANDSHAKE_TIMEOUT_S: "1" });
  const ws = await connect(
    `ws://127.0.0.1:${server.addr.port}/voicebot/ws`,
  ) as WebSocket;
  const close = await new Promise<CloseEvent>((resolve) =>
    ws.addEventListener("close", resolve)
  );
  assertEquals([close.code, close.reason], [1000, "handshake_timeout"]);
  assertEquals(server.registry.size, 0);
});

Deno.test("EXOTEL_IP_ALLOWLIST refuses other addresses with 403 before the upgrade", async () => {
  await using refusing = await serve({ EXOTEL_IP_ALLOWLIST: "203.0.113.0/24" });
  const response = await upgradeRequest(
    `ws://127.0.0.1:${refusing.addr.port}/voicebot/ws`,
  );
  assertEquals(response.status, 403);
  assertEquals((await response.json()).error.code, "forbidden");
  await using allowing = await serve({ EXOTEL_IP_ALLOWLIST: "127.0.0.0/8" });
  const ws = await connect(`ws://127.0.0.1:${allowing.addr.port}/voicebot/ws`);
  assert(ws instanceof WebSocket);
  const done = closed(ws);
  ws.close();
  await done;
});

Deno.test("repeated failed auth from one address gets 429, and the right token still passes", async () => {
  await using server = await serve({
    EXOTEL_WS_TOKEN: "tok",
    AUTH_FAILURE_LIMIT_PER_MIN: "3",
  });
  const url = `ws://127.0.0.1:${server.addr.port}/voicebot/ws`;
  for (let i = 0; i < 3; i++) {
    const response = await upgradeRequest(url, {
      authorization: "Bearer wrong",
    });
    assertEquals(response.status, 401);
    await response.body?.cancel();
  }
  const limited = await upgradeRequest(url, { authorization: "Bearer wrong" });
  assertEquals(limited.status, 429);
  assert(Number(limited.headers.get("retry-after")) > 0);
  await limited.body?.cancel();
  const ws = await connect(url, { authorization: "Bearer tok" });
  assert(ws instanceof WebSocket, "only failures are limited");
  const done = closed(ws);
  ws.close();
  await done;
});

Deno.test("POST /call is rate limited per address", async () => {
  await using server = await serve({ CALL_RATE_LIMIT_PER_MIN: "2" });
  const statuses = [];
  for (let i = 0; i < 3; i++) {
    const response = await fetch(`http://127.0.0.1:${server.addr.port}/call`, {
      method: "POST",
      body: JSON.stringify({ to: "+919876543210" }),
    });
    statuses.push(response.status);
    await response.body?.cancel();
  }
  assertEquals(statuses, [503, 503, 429], "not configured twice, then limited");
});

Deno.test("1000 connections opened and dropped in a burst leave nothing behind", async () => {
  await using server = await serve({ MAX_SESSIONS: "5000" });
  const url = `ws://127.0.0.1:${server.addr.port}/voicebot/ws`;
  const batch = 100;
  for (let round = 0; round < 10; round++) {
    const sockets = await Promise.all(
      Array.from({ length: batch }, () => connect(url)),
    );
    await Promise.all(sockets.map((ws) => {
      assert(ws instanceof WebSocket, String(ws));
      ws.send(START);
      const done = closed(ws);
      ws.close();
      return done;
    }));
  }
  await until(() => server.registry.size === 0);
  const health =
    await (await fetch(`http://127.0.0.1:${server.addr.port}/health`)).json();
  assertEquals(health.activeSessions, 0);
});

Deno.test("SIGTERM with a call live: drained, cut with 1001, exit 0, and the call's record is in KV", async () => {
  const dir = await Deno.makeTempDir();
  const kvPath = `${dir}/calls.kv`;
  const server = startServerProcess({ DRAIN_TIMEOUT_S: "1", KV_PATH: kvPath });
  const port = await server.port;
  const ws = await connect(
    `ws://127.0.0.1:${port}/voicebot/ws?call_id=CA-TERM`,
  ) as WebSocket;
  ws.send(START);
  const code = closed(ws);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const exit = server.stop();
  assertEquals(await code, 1001);
  assertEquals(await exit, 0);
  const store = new CallStore(await openKv(kvPath), { ownsKv: true });
  const record = await store.get("CA-TERM");
  await store.close();
  await Deno.remove(dir, { recursive: true });
  assertEquals(record?.ended.reason, "server_shutdown");
});

Deno.test("records and live-session writes still queued for their batch land when the server shuts down", async () => {
  const dir = await Deno.makeTempDir();
  const kvPath = `${dir}/calls.kv`;
  const server = await serve({ KV_PATH: kvPath });
  const url = `ws://127.0.0.1:${server.addr.port}/voicebot/ws`;
  for (const callId of ["CA-Q1", "CA-Q2"]) {
    const ws = await connect(`${url}?call_id=${callId}`) as WebSocket;
    ws.send(START);
    const done = closed(ws);
    ws.send(JSON.stringify({ event: "stop", stop: { reason: "callended" } }));
    await done;
  }
  await until(() => server.registry.size === 0);
  // At once: well inside the batches' 500 ms wait.
  await server.shutdown();
  const kv = await openKv(kvPath);
  const store = new CallStore(kv);
  const reasons = await Promise.all(
    ["CA-Q1", "CA-Q2"].map(async (id) => (await store.get(id))?.ended.reason),
  );
  const live = [];
  for await (const entry of kv.list({ prefix: ["live_sessions"] })) {
    live.push(entry.key);
  }
  kv.close();
  await Deno.remove(dir, { recursive: true });
  assertEquals(reasons, ["stop:callended", "stop:callended"]);
  assertEquals(live, [], "no live session left behind");
});

Deno.test("a peer that never reads: what we hand the socket stays bounded, and dropping it cleans up", async () => {
  await using server = await serve({ PLAYOUT_LEAD_MS: "5000" });
  const peer = await RawWebSocket.open(
    server.addr.port,
    "/voicebot/ws?sample-rate=24000",
  );
  await peer.sendText(
    START.replace(
      'start":{',
      'start":{"media_format":{"sample_rate":"24000"},',
    ),
  );
  const second = new Uint8Array(48_000).fill(3).toBase64();
  // Ten minutes of caller audio as fast as the socket takes it, while never reading the echo.
  for (let i = 0; i < 600; i++) {
    await peer.sendText(
      JSON.stringify({ event: "media", media: { payload: second } }),
    );
  }
  const session = [...server.registry.values()][0];
  await until(() => session.bytesIn === 600 * 48_000);
  // The echo is paced: at most the lead plus the 2 s backlog the echo keeps, not ten minutes.
  assert(
    session.playout.bytesOut < 48_000 * 10,
    `sent ${session.playout.bytesOut} bytes`,
  );
  peer.drop();
  await until(() => server.registry.size === 0);
});
