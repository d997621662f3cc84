/**
 * What TCP_NODELAY buys the speech-to-text uplink: a client streams
 * 3200-byte binary frames (100 ms of 16 kHz PCM) every 20 ms to a Deno
 * WebSocket server on 127.0.0.1, and the server notes when each frame
 * arrives. The figure is send → receive per frame, p50/p99/max, for
 * Deno's built-in `WebSocket` (Nagle's algorithm on, no way to turn it
 * off) and for `npm:ws`, the client our STT sessions use (it sets
 * TCP_NODELAY), with
 * a server that only listens and with one that talks back the way STT
 * vendors do (a small JSON message every 100 ms, or after every frame).
 *
 * On loopback the segment size is ~64 KiB, so what Nagle holds back is
 * any write made while earlier data is still unacknowledged, which the
 * receiver's delayed ACK (up to 40 ms on Linux) keeps it for; replies
 * from the server make that the common case. Over a WAN the wait is up
 * to a round trip to the vendor instead.
 *
 * Run: `deno run --allow-net bench/websocket_client_bench.ts [frames]`
 * (default 500 frames, 10 s per client and scenario). Under
 * `deno task bench` it runs once with 100 frames and prints the same
 * figures.
 *
 * @module
 */

// @ts-types="@types/ws"
import NodeWebSocket from "ws";

/** Bytes per frame: 100 ms of 16 kHz 16-bit PCM, the adapters' chunk. */
const FRAME_BYTES = 3200;
/** Gap between frames, as a caller's audio arrives. */
const INTERVAL_MS = 20;

/** The two clients compared. */
export type ClientKind = "built-in" | "ws";

/** A small message like Deepgram's interim results. */
const REPLY = JSON.stringify({
  type: "Results",
  is_final: false,
  channel: { alternatives: [{ transcript: "hello", confidence: 0.9 }] },
});

/** Options of {@linkcode measureStream}. */
export interface StreamOptions {
  /** Frames to send. */
  frames: number;
  /** The server replies after every `replyEvery`-th frame; never when omitted. */
  replyEvery?: number;
}

/** Send → receive latency of each frame, in ms, in order. */
export async function measureStream(
  kind: ClientKind,
  options: StreamOptions,
): Promise<number[]> {
  const { frames, replyEvery } = options;
  const sentAt: number[] = [];
  const receivedAt: number[] = [];
  const all = Promise.withResolvers<void>();
  let received = 0;
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const { socket, response } = Deno.upgradeWebSocket(request);
      socket.binaryType = "arraybuffer";
      socket.onmessage = (event) => {
        const index = new DataView(event.data as ArrayBuffer).getUint32(0);
        receivedAt[index] = performance.now();
        if (replyEvery && (index + 1) % replyEvery === 0) socket.send(REPLY);
        if (++received === frames) all.resolve();
      };
      return response;
    },
  );
  const ws = await connect(kind, `ws://127.0.0.1:${server.addr.port}/`);
  const frame = new Uint8Array(FRAME_BYTES);
  const start = performance.now();
  for (let i = 0; i < frames; i++) {
    // On a fixed schedule, so a late frame does not push the next ones.
    const wait = start + i * INTERVAL_MS - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    new DataView(frame.buffer).setUint32(0, i);
    sentAt[i] = performance.now();
    ws.send(frame);
  }
  await all.promise;
  await ws.close();
  return sentAt.map((sent, i) => receivedAt[i] - sent);
}

/** The part of both clients the benchmark uses. */
interface Sender {
  send(data: Uint8Array): void;
  close(): Promise<void>;
}

async function connect(kind: ClientKind, url: string): Promise<Sender> {
  const ws = kind === "built-in" ? new WebSocket(url) : new NodeWebSocket(url);
  const opened = Promise.withResolvers<void>();
  const closed = Promise.withResolvers<void>();
  ws.onopen = () => opened.resolve();
  ws.onerror = () => opened.reject(new Error(`Could not connect to ${url}`));
  ws.onclose = () => closed.resolve();
  await opened.promise;
  return {
    send: (data) => ws.send(data),
    close() {
      ws.close(1000);
      return closed.promise;
    },
  };
}

/** Percentiles of a sample, in its unit. */
export interface Summary {
  p50: number;
  p99: number;
  max: number;
  count: number;
  /** Share of values over {@linkcode LATE_MS}, in percent. */
  latePercent: number;
}

/** A frame this late was held back, not merely scheduled late. */
const LATE_MS = 5;

/** p50, p99 and max of `values` (nearest rank). */
export function summarize(values: number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
  return {
    p50: rank(0.5),
    p99: rank(0.99),
    max: sorted.at(-1) ?? NaN,
    count: sorted.length,
    latePercent: 100 * sorted.filter((value) => value > LATE_MS).length /
      sorted.length,
  };
}

/** Measures both clients, one after the other, and prints the figures. */
export async function runWebSocketClientBench(frames: number): Promise<void> {
  const labels: Record<ClientKind, string> = {
    "built-in": "Deno's WebSocket (Nagle on)   ",
    ws: "npm:ws (TCP_NODELAY)         ",
  };
  const scenarios: [string, number | undefined][] = [
    ["server only listens", undefined],
    ["server replies every 100 ms", 100 / INTERVAL_MS],
    ["server replies to every frame", 1],
  ];
  const lines = [
    `WebSocket uplink on loopback, ${FRAME_BYTES}-byte frames every ${INTERVAL_MS} ms, send → server receive:`,
  ];
  const ms = (value: number) => `${value.toFixed(2)} ms`.padStart(9);
  for (const [scenario, replyEvery] of scenarios) {
    lines.push(`  ${scenario}:`);
    for (const kind of ["built-in", "ws"] as const) {
      const { p50, p99, max, count, latePercent } = summarize(
        await measureStream(kind, { frames, replyEvery }),
      );
      lines.push(
        `    ${labels[kind]}  p50 ${ms(p50)}  p99 ${ms(p99)}  max ${
          ms(max)
        }  >${LATE_MS} ms ${latePercent.toFixed(0).padStart(3)}%  (n=${count})`,
      );
    }
  }
  // A benchmark's output is its result.
  // deno-lint-ignore no-console
  console.log(lines.join("\n"));
}

if (import.meta.main) {
  await runWebSocketClientBench(Number(Deno.args[0]) || 500);
} else {
  // `deno bench` calls the function three times even with n: 1 and no
  // warm-up; one run of the figures is enough.
  let ran = false;
  Deno.bench({
    name:
      "websocket client: uplink latency, built-in vs npm:ws (figures printed above the table)",
    n: 1,
    warmup: 0,
    async fn() {
      if (ran) return;
      ran = true;
      await runWebSocketClientBench(100);
    },
  });
}
