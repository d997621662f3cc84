/**
 * Descriptors and connections under abuse: running out of descriptors,
 * sockets whose peer never answers our close, oversized frames, dropped and
 * broken peers, and connections per address. The process-level tests run
 * `main.ts` as its own process (see `fakes/server_under_limits.ts`).
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { loadConfig } from "../src/config.ts";
import { ConnectionsPerAddress } from "../src/http/connections_per_address.ts";
import { listenerFailureKind } from "../src/http/resilient_server.ts";
import { ExovoiceMetrics } from "../src/metrics/exovoice_metrics.ts";
import {
  descriptorsNeeded,
  parseOpenFilesLimit,
} from "../src/metrics/process_descriptors.ts";
import { startServer } from "../src/server.ts";
import { RawWebSocket } from "./fakes/raw_websocket.ts";
import { spawnServer } from "./fakes/server_under_limits.ts";

const ADMIN = "admin-secret";

/** Polls `check` every 100 ms until it holds; gives up after `limitMs` (a liveness bound, not a timing claim). */
async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  limitMs = 30_000,
): Promise<void> {
  const giveUpAt = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > giveUpAt) throw new Error(`Never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function metricsText(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  return await response.text();
}

function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((candidate) =>
    candidate.startsWith(`${series} `)
  );
  return line === undefined ? undefined : Number(line.split(" ").at(-1));
}

async function healthy(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/health`);
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

Deno.test("the descriptor limit is read from /proc's limits text", () => {
  const text = "Limit                     Soft Limit           Hard Limit\n" +
    "Max open files            1024                 524288               files\n";
  assertEquals(parseOpenFilesLimit(text), 1024);
  assertEquals(
    parseOpenFilesLimit(
      "Max open files            unlimited            unlimited            files",
    ),
    Infinity,
  );
  assertEquals(parseOpenFilesLimit("Max processes 10 10 processes"), undefined);
});

Deno.test("descriptors needed grow with MAX_SESSIONS, the agent's vendor connections and recording", () => {
  const echo = descriptorsNeeded({
    maxSessions: 1000,
    agent: false,
    recording: false,
  });
  const agent = descriptorsNeeded({
    maxSessions: 1000,
    agent: true,
    recording: true,
  });
  assert(echo > 1000);
  assertEquals(agent - echo, 4000);
});

Deno.test("a listener failure is told apart when descriptors ran out", () => {
  assertEquals(
    listenerFailureKind(new Error("Too many open files (os error 24)")),
    "descriptors",
  );
  assertEquals(
    listenerFailureKind(
      new Error("Too many open files in system (os error 23)"),
    ),
    "descriptors",
  );
  assertEquals(listenerFailureKind(new Error("Address in use")), "other");
});

Deno.test("connections per address are bounded, counted down as they close, and 0 means no bound", () => {
  const bounded = new ConnectionsPerAddress(2);
  assert(bounded.tryOpen("198.51.100.1"));
  assert(bounded.tryOpen("198.51.100.1"));
  assert(!bounded.tryOpen("198.51.100.1"));
  assert(bounded.tryOpen("198.51.100.2"));
  bounded.closed("198.51.100.1");
  assertEquals(bounded.openFrom("198.51.100.1"), 1);
  assert(bounded.tryOpen("198.51.100.1"));
  const unbounded = new ConnectionsPerAddress(0);
  for (let i = 0; i < 1000; i++) assert(unbounded.tryOpen("198.51.100.1"));
});

Deno.test("out of descriptors, the server stays up, logs it once, counts it, and serves again when they free up", async () => {
  await using server = await spawnServer({
    fdLimit: 256,
    env: { ADMIN_TOKEN: ADMIN },
  });
  const idle: Deno.TcpConn[] = [];
  // Idle connections (connect, send nothing) until the listener gives out.
  for (let i = 0; i < 400; i++) {
    try {
      idle.push(
        await Deno.connect({ hostname: "127.0.0.1", port: server.port }),
      );
    } catch {
      break;
    }
  }
  await eventually(
    "the listener fails, or the process dies",
    () => server.log().includes("Out of file descriptors") || !server.alive(),
  );
  for (const conn of idle) conn.close();
  assert(server.alive(), `the server died:\n${server.log()}`);
  await eventually("the server serves again", () => healthy(server.port));
  assert(server.alive(), `the server died:\n${server.log()}`);
  const metrics = await metricsText(server.port);
  assert(
    (sample(metrics, 'exovoice_listener_failures_total{kind="descriptors"}') ??
      0) >= 1,
    metrics,
  );
  assertEquals(sample(metrics, "exovoice_listening"), 1);
  assertEquals(
    server.log().split("Out of file descriptors").length - 1,
    1,
    "logged once per interval",
  );
  assert(!server.log().includes("Uncaught"), server.log());
});

Deno.test("a descriptor limit below what MAX_SESSIONS needs is warned about at startup and shown in /metrics", async () => {
  await using server = await spawnServer({
    fdLimit: 256,
    allowAll: true,
    env: { ADMIN_TOKEN: ADMIN, MAX_SESSIONS: "1000" },
  });
  assertMatch(
    server.log(),
    /file descriptor limit is 256, below the 1128 that MAX_SESSIONS=1000 needs/,
  );
  const metrics = await metricsText(server.port);
  assertEquals(sample(metrics, "process_max_fds"), 256);
  assert((sample(metrics, "process_open_fds") ?? 0) > 0, metrics);
});

Deno.test("without --allow-all the descriptor limit is reported as unknown, with what MAX_SESSIONS needs", async () => {
  await using server = await spawnServer({ env: { MAX_SESSIONS: "1000" } });
  assertMatch(
    server.log(),
    /Could not read the file descriptor limit .*MAX_SESSIONS=1000 needs about 1128/,
  );
});

Deno.test("sockets whose peer never answers our close are dropped at WS_CLOSE_TIMEOUT_S: descriptors return to the baseline", async () => {
  await using server = await spawnServer({
    env: {
      ADMIN_TOKEN: ADMIN,
      MAX_SESSIONS: "40",
      HANDSHAKE_TIMEOUT_S: "1",
      IDLE_TIMEOUT_S: "2",
      WS_CLOSE_TIMEOUT_S: "1",
    },
  });
  // One call with a well-behaved peer first, so that everything opened
  // lazily is open before the baseline is taken.
  const warm = new WebSocket(`ws://127.0.0.1:${server.port}/voicebot/ws`);
  await new Promise((resolve) => warm.onclose = resolve);
  const baseline = await server.openFds();
  for (let round = 1; round <= 3; round++) {
    // Each peer upgrades, sends no start, and never answers the close that
    // the handshake deadline sends.
    const peers = await Promise.all(
      Array.from(
        { length: 40 },
        () => RawWebSocket.open(server.port, "/voicebot/ws"),
      ),
    );
    await eventually(
      `round ${round}: descriptors back to ${baseline}`,
      async () => (await server.openFds()) <= baseline,
    );
    const ends = await Promise.all(peers.map((peer) => peer.waitForEnd()));
    assertEquals(
      ends.map((end) => end.closeCode),
      Array(40).fill(1000),
      "each got our close frame before the drop",
    );
  }
  const metrics = await metricsText(server.port);
  assertEquals(sample(metrics, "exovoice_websockets_released_total"), 120);
  assert(await healthy(server.port));
});

async function inProcess(env: Record<string, string> = {}) {
  const dir = await Deno.makeTempDir({ prefix: "exovoice_desc_" });
  const metrics = new ExovoiceMetrics();
  const config = loadConfig({
    HOST: "127.0.0.1",
    PORT: "0",
    KV_PATH: `${dir}/exovoice.kv`,
    ...env,
  });
  const server = await startServer(config, { services: { metrics } });
  return {
    server,
    port: server.addr.port,
    metrics,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("a peer that vanishes is recorded as closed 1006, not as close code 0", async () => {
  await using running = await inProcess();
  const peer = await RawWebSocket.open(running.port, "/voicebot/ws");
  await eventually(
    "the call is live",
    () => running.server.registry.size === 1,
  );
  peer.drop();
  await eventually("the call ended", () => running.server.registry.size === 0);
  const text = await running.metrics.render();
  assertEquals(
    sample(
      text,
      'exovoice_calls_ended_total{outcome="closed",detail="1006"}',
    ),
    1,
    text,
  );
});

Deno.test("a text frame that is not UTF-8 is recorded as closed 1007", async () => {
  await using running = await inProcess();
  const peer = await RawWebSocket.open(running.port, "/voicebot/ws");
  await eventually(
    "the call is live",
    () => running.server.registry.size === 1,
  );
  await peer.sendTextBytes(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]));
  // The runtime drops the connection itself: no close frame reaches the peer.
  await peer.waitForEnd();
  await eventually("the call ended", () => running.server.registry.size === 0);
  const text = await running.metrics.render();
  assertEquals(
    sample(
      text,
      'exovoice_calls_ended_total{outcome="closed",detail="1007"}',
    ),
    1,
    text,
  );
});

Deno.test("the first frame over MAX_FRAME_BYTES ends the call with 1009 and drops the connection at once", async () => {
  await using running = await inProcess({ MAX_FRAME_BYTES: "1024" });
  const peer = await RawWebSocket.open(running.port, "/voicebot/ws");
  await peer.sendText(
    JSON.stringify({ event: "connected", pad: "x".repeat(2000) }),
  );
  // The peer never answers the close: the drop does not wait for it.
  const { closeCode } = await peer.waitForEnd();
  assertEquals(closeCode, 1009);
  await eventually("the call ended", () => running.server.registry.size === 0);
  const text = await running.metrics.render();
  assertEquals(
    sample(
      text,
      'exovoice_calls_ended_total{outcome="frames_too_large",detail="none"}',
    ),
    1,
    text,
  );
  assertEquals(sample(text, "exovoice_websockets_released_total"), 1);
  assertEquals(sample(text, 'exovoice_bad_frames_total{kind="too_large"}'), 1);
});

Deno.test("MAX_CONNECTIONS_PER_IP refuses an address's extra sockets with 429 until one is really gone", async () => {
  await using running = await inProcess({ MAX_CONNECTIONS_PER_IP: "2" });
  const first = await RawWebSocket.open(running.port, "/voicebot/ws");
  const second = await RawWebSocket.open(running.port, "/voicebot/ws");
  const refused = await fetch(`http://127.0.0.1:${running.port}/voicebot/ws`, {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    },
  });
  assertEquals(refused.status, 429);
  assertEquals((await refused.json()).error.code, "too_many_connections");
  assertEquals(
    sample(
      await running.metrics.render(),
      "exovoice_connections_refused_total",
    ),
    1,
  );
  first.drop();
  await eventually(
    "the first socket is gone",
    () => running.server.registry.size === 1,
  );
  const third = await RawWebSocket.open(running.port, "/voicebot/ws");
  second.drop();
  third.drop();
  await eventually("all gone", () => running.server.registry.size === 0);
});
