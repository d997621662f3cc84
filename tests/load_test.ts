import {
  assert,
  assertEquals,
  assertGreater,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { loadConfig } from "../src/config.ts";
import { startServer } from "../src/server.ts";
import { serveMinimalEcho } from "../bench/minimal_echo.ts";
import { FlagError, parseFlags } from "../bench/load/flags.ts";
import { parseCpuMs, parseRssKb } from "../bench/load/proc.ts";
import {
  framesPerCall,
  LoadOptionError,
  type LoadOptions,
  type LoadReport,
  runLoad,
} from "../bench/load/run.ts";
import { startServerProcess } from "../bench/load/server.ts";
import { runSoak } from "../bench/load/soak.ts";
import { distributionOf } from "../bench/load/stats.ts";
import { connectWs, WsConnectError } from "../bench/load/ws_client.ts";

const SMALL_RUN: Omit<LoadOptions, "url"> = {
  calls: 20,
  durationS: 2,
  frameBytes: 3200,
  sampleRate: 8000,
  rampS: 0.2,
  settleS: 0.2,
  chunkBytes: 3200,
};

function startExovoice() {
  return startServer(
    loadConfig({ HOST: "127.0.0.1", PORT: "0", KV_PATH: ":memory:" }),
  );
}

function assertClean(report: LoadReport, calls: number): void {
  assertEquals(report.calls.connected, calls);
  assertEquals(report.calls.failed, 0);
  assertEquals(report.calls.dropped, 0);
  assertEquals(report.calls.completed, calls);
  assertEquals(report.bytes.lost, 0);
  assertEquals(report.bytes.corrupt, 0);
  assertEquals(report.bytes.extra, 0);
  assertEquals(report.bytes.echoed, report.bytes.sent);
  assertEquals(report.badMedia, 0);
  assertGreater(report.latencyMs.echo.count, 0);
}

async function waitForEmpty(registry: { size: number }): Promise<number> {
  for (let i = 0; i < 50 && registry.size > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return registry.size;
}

Deno.test("load run echoes every byte of 20 calls with 3200-byte frames and leaves no session", async () => {
  const server = await startExovoice();
  try {
    const report = await runLoad({
      ...SMALL_RUN,
      url: `ws://127.0.0.1:${server.addr.port}/voicebot/ws`,
    });
    assertClean(report, 20);
    assertEquals(report.settings.framesPerCall, 10);
    assertEquals(await waitForEmpty(server.registry), 0);
  } finally {
    await server.shutdown();
  }
});

Deno.test("load run gets 1600-byte frames back whole after the server re-chunks them to 3200", async () => {
  const server = await startExovoice();
  try {
    const report = await runLoad({
      ...SMALL_RUN,
      frameBytes: 1600,
      url: `ws://127.0.0.1:${server.addr.port}/voicebot/ws`,
    });
    assertClean(report, 20);
    // Two caller frames per echoed chunk.
    assertEquals(report.window.chunksReceived * 2, report.window.framesEchoed);
  } finally {
    await server.shutdown();
  }
});

Deno.test("minimal echo returns every byte frame for frame", async () => {
  const server = serveMinimalEcho({ port: 0 });
  try {
    const report = await runLoad({
      ...SMALL_RUN,
      frameBytes: 1600,
      url: `ws://127.0.0.1:${server.addr.port}/voicebot/ws`,
    });
    assertClean(report, 20);
    assertEquals(report.window.chunksReceived, report.window.framesEchoed);
  } finally {
    await server.shutdown();
  }
});

Deno.test("load run against main.ts in a child process reports the server's CPU and RSS", async () => {
  const server = await startServerProcess({ kind: "main" });
  try {
    const report = await runLoad({
      ...SMALL_RUN,
      calls: 5,
      url: server.url,
      serverPid: server.pid,
    });
    assertClean(report, 5);
    assert(report.server, "server figures missing");
    assertGreater(report.server.loadedRssKb, 0);
    assertGreater(report.server.cpuUsPerEchoedFrame, 0);
  } finally {
    const status = await server.stop();
    assertEquals(status.code, 0);
  }
});

Deno.test("load run counts frames a server drops whole as skipped and lost, not corrupt", async () => {
  // An echo that drops every third media frame, as a server that fell behind drops its backlog.
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const { socket, response } = Deno.upgradeWebSocket(request);
      let media = 0;
      socket.onmessage = (event) => {
        const frame = JSON.parse(event.data);
        if (frame.event === "stop") socket.close(1000);
        if (frame.event !== "media" || media++ % 3 === 2) return;
        socket.send(JSON.stringify({
          event: "media",
          stream_sid: frame.stream_sid,
          media: { payload: frame.media.payload },
        }));
      };
      return response;
    },
  );
  try {
    const report = await runLoad({
      ...SMALL_RUN,
      calls: 2,
      drainMs: 300,
      url: `ws://127.0.0.1:${server.addr.port}/voicebot/ws`,
    });
    // Ten frames per call; frames 2, 5 and 8 are dropped.
    assertEquals(report.bytes.skipped, 2 * 3 * 3200);
    assertEquals(report.bytes.lost, 2 * 3 * 3200);
    assertEquals(report.bytes.corrupt, 0);
    assertEquals(report.bytes.echoed, 2 * 7 * 3200);
  } finally {
    await server.shutdown();
  }
});

Deno.test("load run counts a refused upgrade as a failed connect", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("busy", { status: 503 }),
  );
  try {
    const report = await runLoad({
      ...SMALL_RUN,
      calls: 3,
      url: `ws://127.0.0.1:${server.addr.port}/voicebot/ws`,
    });
    assertEquals(report.calls.failed, 3);
    assertEquals(report.calls.connected, 0);
    assertEquals(report.errors[0], {
      message: "Upgrade refused with HTTP 503",
      count: 3,
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("soak keeps calls churning, samples RSS and finds no session left", async () => {
  const server = await startExovoice();
  try {
    const report = await runSoak({
      url: `ws://127.0.0.1:${server.addr.port}/voicebot/ws`,
      healthUrl: `http://127.0.0.1:${server.addr.port}/health`,
      // The server runs in this process: its RSS is ours.
      serverPid: Deno.pid,
      calls: 4,
      durationS: 3,
      callS: 1,
      sampleS: 0.5,
      warmupS: 1,
      tolerancePercent: 1000,
      frameBytes: 3200,
      sampleRate: 8000,
      chunkBytes: 3200,
    });
    // Four slots of 1 s calls over 3 s: each slot ran more than one call.
    assertGreater(report.calls.started, 4);
    assertEquals(report.calls.completed, report.calls.started);
    assertEquals(report.bytes.lost, 0);
    assertEquals(report.bytes.corrupt, 0);
    assertGreater(report.samples.length, 3);
    assertGreater(report.rssKb.end, 0);
    assertEquals(report.sessionsLeft, 0);
  } finally {
    await server.shutdown();
  }
});

Deno.test("lean client round-trips a text frame over 64 KiB", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const { socket, response } = Deno.upgradeWebSocket(request);
      socket.onmessage = (event) => socket.send(event.data);
      return response;
    },
  );
  try {
    const ws = await connectWs(new URL(`ws://127.0.0.1:${server.addr.port}/`));
    const text = "é".repeat(40_000) + "x".repeat(1000);
    const { promise, resolve } = Promise.withResolvers<string>();
    const closed = Promise.withResolvers<number>();
    ws.listen({ text: resolve, close: (code) => closed.resolve(code) });
    ws.sendText(text);
    assertEquals(await promise, text);
    ws.close(1000, "done");
    assertEquals(await closed.promise, 1000);
  } finally {
    await server.shutdown();
  }
});

Deno.test("lean client rejects a refused upgrade with its HTTP status", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("no", { status: 401 }),
  );
  try {
    const error = await assertRejects(
      () => connectWs(new URL(`ws://127.0.0.1:${server.addr.port}/`)),
      WsConnectError,
      "HTTP 401",
    );
    assertEquals(error.status, 401);
  } finally {
    await server.shutdown();
  }
});

Deno.test("load options outside loopback are refused", async () => {
  await assertRejects(
    () => runLoad({ ...SMALL_RUN, url: "ws://example.com/voicebot/ws" }),
    LoadOptionError,
    'Invalid URL "ws://example.com/voicebot/ws"',
  );
});

Deno.test("a run too short to be steady after its ramp is refused", async () => {
  await assertRejects(
    () =>
      runLoad({
        ...SMALL_RUN,
        url: "ws://127.0.0.1:9/voicebot/ws",
        durationS: 2,
        rampS: 2,
      }),
    LoadOptionError,
    'Invalid duration "2"',
  );
});

Deno.test("calls send whole chunks' worth of frames", () => {
  const base = { sampleRate: 8000, chunkBytes: 3200 };
  assertEquals(framesPerCall({ ...base, durationS: 1, frameBytes: 3200 }), 5);
  // 0.9 s of 100 ms frames is 9, rounded up to 10 for whole 3200-byte chunks.
  assertEquals(
    framesPerCall({ ...base, durationS: 0.9, frameBytes: 1600 }),
    10,
  );
  // Sixteen 1000-byte frames make five 3200-byte chunks: 18 frames round up to 32.
  assertEquals(
    framesPerCall({ ...base, durationS: 1.1, frameBytes: 1000 }),
    32,
  );
});

Deno.test("proc readers take CPU ticks and VmRSS", () => {
  const stat = "42 (deno (main) x) S 1 42 42 0 -1 4194560 10 0 0 0 250 50 0 0";
  assertEquals(parseCpuMs(stat), 3000);
  assertEquals(
    parseRssKb("Name:\tdeno\nVmRSS:\t  51234 kB\nVmSwap:\t0 kB\n"),
    51234,
  );
});

Deno.test("distribution uses nearest-rank percentiles", () => {
  const values = Float64Array.from({ length: 100 }, (_, i) => 100 - i);
  const distribution = distributionOf(values);
  assertEquals(distribution.p50, 50);
  assertEquals(distribution.p99, 99);
  assertEquals(distribution.max, 100);
  assertEquals(distributionOf(new Float64Array(0)).count, 0);
});

Deno.test("flag parser reads numbers, strings and switches and rejects unknown flags", () => {
  const spec = {
    numbers: ["calls"],
    strings: ["server"],
    booleans: ["json"],
  };
  const flags = parseFlags(
    ["--calls=500", "--server", "minimal", "--json"],
    spec,
  );
  assertEquals(flags.numbers.calls, 500);
  assertEquals(flags.strings.server, "minimal");
  assert(flags.booleans.has("json"));
  assertThrows(() => parseFlags(["--cals", "5"], spec), FlagError, "--cals");
  assertThrows(
    () => parseFlags(["--calls", "many"], spec),
    FlagError,
    'Invalid --calls "many"',
  );
});
