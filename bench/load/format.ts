/**
 * Human-readable output of load and soak runs, and plain writes to stdout
 * and stderr (the project lints `console` away).
 *
 * @module
 */

import type { LoadReport } from "./run.ts";
import type { Distribution } from "./stats.ts";

const encoder = new TextEncoder();

/** Writes `text` and a newline to stdout, all of it. */
export function writeOut(text: string): void {
  writeAll(Deno.stdout, `${text}\n`);
}

/** Writes `text` and a newline to stderr, all of it. */
export function writeErr(text: string): void {
  writeAll(Deno.stderr, `${text}\n`);
}

function writeAll(target: { writeSync(p: Uint8Array): number }, text: string) {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(target.writeSync(bytes));
}

/** What the run was pointed at, for the report's first line. */
export interface RunLabel {
  /** `main`, `minimal`, or the URL of a server started elsewhere. */
  server: string;
  /** The server's pid, when known. */
  pid?: number;
  /** The CPU the server was pinned to. */
  serverCpu?: number;
  /** The CPU the generator was pinned to. */
  generatorCpu?: number;
}

/** What the two latencies mean, printed under every report. */
export const LATENCY_DEFINITIONS = [
  "echo latency: per caller media frame, from just before the generator sends it to the arrival",
  "  of the server media frame holding its last byte. When caller frames are smaller than the",
  "  server's outbound chunk (1600-byte frames into 3200-byte chunks), a frame's bytes wait in",
  "  the server's chunker for the next frame: half the frames carry one extra frame period",
  "  (100 ms at 8 kHz) of chunk-fill delay, inherent to re-chunking, not server slowness.",
  "chunk latency: per server media frame, from sending the caller frame that completed it to",
  "  its arrival: server work, both event loops and loopback, without chunk fill.",
  "playout latency: like chunk latency, but to when Exotel, playing what it is sent at real time,",
  "  would start playing the frame. A server that sends a burst early (no pacing) queues it at",
  "  Exotel instead of holding it: the caller hears it no sooner. Compare servers on this one.",
  "CPU per echoed frame: server CPU time (utime+stime, all threads, /proc/<pid>/stat) in the",
  "  window divided by the caller frames whose last byte came back in it.",
];

/** Formats a load report for people. */
export function formatLoadReport(report: LoadReport, label: RunLabel): string {
  const { settings: s, calls, bytes, latencyMs, window, server } = report;
  const pin = (cpu?: number) => cpu === undefined ? "unpinned" : `CPU ${cpu}`;
  const lines = [
    `server ${label.server}${
      label.pid === undefined ? "" : ` (pid ${label.pid})`
    } on ${pin(label.serverCpu)}, generator on ${pin(label.generatorCpu)}`,
    `${s.calls} calls × ${s.durationS} s, ${s.frameBytes}-byte frames (${s.frameMs} ms at ${s.sampleRate} Hz, ${s.framesPerCall} per call), ramp ${s.rampS} s, chunk ${s.chunkBytes} B`,
    `window     ${window.seconds} s of steady state, ${calls.minLiveInWindow} calls live at least (peak ${calls.peakLive})`,
    `calls      connected ${calls.connected}  failed ${calls.failed}  dropped ${calls.dropped}  completed ${calls.completed}`,
    `bytes      sent ${bytes.sent}  echoed ${bytes.echoed}  lost ${bytes.lost} (of which in frames the server skipped ${bytes.skipped})  corrupt ${bytes.corrupt}  extra ${bytes.extra}  (bad media frames ${report.badMedia})`,
    `latency    echo  ${distribution(latencyMs.echo)}`,
    `           chunk ${distribution(latencyMs.chunk)}`,
    `           playout ${distribution(latencyMs.playout)}`,
    `           connect ${distribution(latencyMs.connect)}`,
    `           generator send lateness ${
      distribution(latencyMs.sendLateness)
    }`,
    `           generator loop lag ${distribution(latencyMs.generatorLoopLag)}`,
    `frames     in window: sent ${window.framesSent}, echoed ${window.framesEchoed}, server media frames ${window.chunksReceived}`,
  ];
  if (server) {
    lines.push(
      `server     CPU ${server.cpuPercent}% of a core, ${server.cpuUsPerEchoedFrame} µs per echoed frame (${server.cpuUsPerChunk} µs per server media frame)`,
      `           RSS ${mib(server.idleRssKb)} idle, ${
        mib(server.loadedRssKb)
      } loaded: ${server.rssKbPerCall} KiB per live call`,
    );
  } else {
    lines.push("server     CPU and RSS unknown: give --pid of the server");
  }
  if (report.generatorCpuPercent !== undefined) {
    const warning = report.generatorCpuPercent > 85
      ? " (near saturation: figures may be the generator's limit)"
      : "";
    lines.push(
      `generator  CPU ${report.generatorCpuPercent}% of a core${warning}`,
    );
  }
  if (report.machine) {
    const { busyPercent, otherPercent, stealPercent } = report.machine;
    lines.push(
      `machine    busy ${busyPercent}% (of one core, all cores summed), other processes ${otherPercent}%, steal ${stealPercent}%`,
    );
  }
  const worst = report.timeline.reduce(
    (top, second) => second.maxMs > top.maxMs ? second : top,
    { second: 0, frames: 0, meanMs: 0, maxMs: 0 },
  );
  if (worst.frames > 0) {
    lines.push(
      `timeline   worst second ${worst.second}: mean ${worst.meanMs} ms, max ${worst.maxMs} ms (--json has every second)`,
    );
  }
  for (const { message, count } of report.errors) {
    lines.push(`error      ${count} × ${message}`);
  }
  return lines.join("\n");
}

function distribution(d: Distribution): string {
  return `p50 ${d.p50} ms  p90 ${d.p90} ms  p99 ${d.p99} ms  max ${d.max} ms  (${d.count} samples)`;
}

/** Formats KiB as MiB with one decimal. */
export function mib(kb: number): string {
  return `${(kb / 1024).toFixed(1)} MiB`;
}
