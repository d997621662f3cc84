/**
 * What one caller frame costs in-process on the echo's path, socket aside:
 * parse the frame, decode its payload, hand it to the echo bot, through the
 * player, encode and "send" it (to a stub socket). One iteration is one
 * 3200-byte frame of a started call, in steady state (pacing never holds:
 * the lead is unbounded, as frames come faster than real time here).
 *
 * Run: `nice deno run --frozen bench/echo_frame_bench.ts [frames]`.
 * Prints the process's CPU time per frame (so that other processes on a shared machine
 * do not count) and the wall time per
 * frame. The server's whole per-frame CPU, sockets included, is what
 * `bench/independent/` measures.
 *
 * @module
 */

import process from "node:process";
import { Call } from "../src/call/call.ts";
import { systemClock } from "../src/call/clock.ts";
import { SessionRegistry } from "../src/call/registry.ts";
import type { Socket, SocketHandlers } from "../src/call/socket.ts";
import { createEchoBot } from "../src/bots/echo.ts";

/** A socket that delivers what the bench hands it and counts what is sent. */
class StubSocket implements Socket {
  handlers?: SocketHandlers;
  sentChars = 0;
  readonly bufferedAmount = 0;
  readonly isOpen = true;
  send(text: string): void {
    this.sentChars += text.length;
  }
  close(): void {}
  abort(): void {}
  listen(handlers: SocketHandlers): void {
    this.handlers = handlers;
  }
}

const socket = new StubSocket();
const call = new Call({
  socket,
  clock: systemClock,
  registry: new SessionRegistry(),
  settings: {
    chunkBytes: 3200,
    leadMs: Number.MAX_SAFE_INTEGER,
    maxBufferedBytes: 1 << 20,
    maxFrameBytes: 64 * 1024,
    maxPreStartBytes: 1 << 20,
  },
  botName: "echo",
  createBot: createEchoBot,
  request: { sampleRate: 8000, remoteAddress: "127.0.0.1" },
});
const deliver = socket.handlers!.message;
deliver(JSON.stringify({ event: "connected" }));
deliver(JSON.stringify({
  event: "start",
  sequence_number: 1,
  stream_sid: "bench-stream",
  start: {
    stream_sid: "bench-stream",
    call_sid: "bench-call",
    account_sid: "bench",
    from: "+910000000000",
    to: "+910000000001",
    media_format: { encoding: "base64", sample_rate: "8000" },
  },
}));
const pcm = new Uint8Array(3200);
for (let i = 0; i < pcm.length; i += 2) {
  new DataView(pcm.buffer).setInt16(
    i,
    Math.round(3000 * Math.sin(i / 7)),
    true,
  );
}
const frame = JSON.stringify({
  event: "media",
  sequence_number: 2,
  stream_sid: "bench-stream",
  media: { chunk: 1, timestamp: "100", payload: pcm.toBase64() },
});

/** This process's CPU time (user + system) in ms. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

const frames = Number(Deno.args[0] ?? 300_000);
for (let i = 0; i < 20_000; i++) deliver(frame); // warm up
const cpu0 = cpuMs();
const wall0 = performance.now();
for (let i = 0; i < frames; i++) deliver(frame);
const cpu = cpuMs() - cpu0;
const wall = performance.now() - wall0;
call.end("bench_done");
if (socket.sentChars === 0) throw new Error("The echo sent nothing");
// deno-lint-ignore no-console
console.log(
  `${frames} frames: cpu ${(cpu * 1000 / frames).toFixed(2)} us/frame, wall ${
    (wall * 1000 / frames).toFixed(2)
  } us/frame`,
);
