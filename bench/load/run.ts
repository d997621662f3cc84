/**
 * One load run: N echo calls started over a ramp, real-time media, a
 * steady-state measurement window, and the figures from it.
 *
 * @module
 */

import { bytesLost, type CallResult, runLoadCall } from "./call.ts";
import { EchoMeter, type TimelineSecond } from "./meter.ts";
import {
  cpuPercent,
  type MachineSample,
  type ProcSample,
  tryReadMachine,
  tryReadProc,
} from "./proc.ts";
import { type Distribution, Samples } from "./stats.ts";

/** Options of {@linkcode runLoad}. */
export interface LoadOptions {
  /** The voicebot endpoint, `ws://127.0.0.1:port/path`. */
  url: string;
  /** Calls to place. */
  calls: number;
  /** Caller audio per call, in seconds. */
  durationS: number;
  /** PCM bytes per caller media frame. */
  frameBytes: number;
  /** Sample rate of every call. */
  sampleRate: number;
  /** Seconds over which call starts are spread evenly. */
  rampS: number;
  /**
   * The server's outbound chunk size: each call sends a whole number of
   * chunks' worth, so a re-chunking echo has nothing held back at the end.
   */
  chunkBytes: number;
  /** Seconds after the ramp before measuring starts (default 1). */
  settleS?: number;
  /** After its last frame, how long a call waits for the rest of its echo (default 3000 ms). */
  drainMs?: number;
  /** Handshake deadline per call (default 10000 ms). */
  connectTimeoutMs?: number;
  /** Extra headers on every upgrade request, e.g. `Authorization`. */
  headers?: Record<string, string>;
  /** The server's pid, for CPU and RSS from `/proc`. */
  serverPid?: number;
  /** Called about every 5 s with a progress line. */
  onProgress?: (line: string) => void;
}

/** The figures of one run. */
export interface LoadReport {
  /** The settings the run used. */
  settings: {
    calls: number;
    durationS: number;
    frameBytes: number;
    frameMs: number;
    sampleRate: number;
    rampS: number;
    chunkBytes: number;
    framesPerCall: number;
  };
  /** Call outcomes. */
  calls: {
    /** Calls placed. */
    started: number;
    /** Calls whose socket opened. */
    connected: number;
    /** Calls whose socket never opened. */
    failed: number;
    /** Calls the server closed, or that broke, before they hung up. */
    dropped: number;
    /** Calls that ran to their hang-up. */
    completed: number;
    /** Most calls live at once. */
    peakLive: number;
    /** Fewest calls live at any check inside the window. */
    minLiveInWindow: number;
  };
  /** PCM byte accounting over all calls, whole calls. */
  bytes: {
    sent: number;
    echoed: number;
    /** Never echoed, including `skipped`. */
    lost: number;
    /** In whole caller frames the server dropped (it fell behind). */
    skipped: number;
    corrupt: number;
    extra: number;
  };
  /** Server media frames breaking Exotel's chunk rules or carrying another stream's id. */
  badMedia: number;
  /** Frames other than media from the server (marks). */
  otherFrames: number;
  /** Latencies in the window, in ms. */
  latencyMs: {
    /** Per caller frame: sent → its last byte echoed (includes chunk fill). */
    echo: Distribution;
    /** Per server media frame: the caller frame holding its last byte sent → it arrived. */
    chunk: Distribution;
    /** Per server media frame: like `chunk`, but to when Exotel, playing at real time, would start playing it. */
    playout: Distribution;
    /** Handshake time over all calls. */
    connect: Distribution;
    /** How late the generator sent caller frames against their schedule. */
    sendLateness: Distribution;
    /** How late a 10 ms timer in the generator fired: its own event-loop stalls. */
    generatorLoopLag: Distribution;
  };
  /** The measurement window. */
  window: {
    seconds: number;
    framesSent: number;
    framesEchoed: number;
    chunksReceived: number;
  };
  /** Server resources, when its pid is known and `/proc` exists. */
  server?: {
    pid: number;
    cpuPercent: number;
    cpuUsPerEchoedFrame: number;
    cpuUsPerChunk: number;
    idleRssKb: number;
    loadedRssKb: number;
    rssKbPerCall: number;
  };
  /** The generator's own CPU in the window, % of a core: near 100 means it, not the server, limits. */
  generatorCpuPercent?: number;
  /**
   * The machine's CPU in the window, % of one core summed over cores:
   * `other` is what neither the server nor the generator used (other
   * processes, kernel work for them), `steal` what the hypervisor took.
   * Noise shows here.
   */
  machine?: { busyPercent: number; otherPercent: number; stealPercent: number };
  /** Echo latency second by second over the whole run. */
  timeline: TimelineSecond[];
  /** The commonest failure messages, with counts. */
  errors: { message: string; count: number }[];
}

/** Error thrown for options a run cannot use. */
export class LoadOptionError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "LoadOptionError";
  }
}

const PROGRESS_MS = 5000;
const LIVE_CHECK_MS = 250;
const LAG_PROBE_MS = 10;

/** Checks `options`, throwing a {@linkcode LoadOptionError} for the first bad one. */
export function validateLoadOptions(options: LoadOptions): void {
  const whole = (name: string, value: number, min: number) => {
    if (!Number.isInteger(value) || value < min) {
      throw new LoadOptionError(
        `Invalid ${name} "${value}": expected a whole number of at least ${min}`,
      );
    }
  };
  whole("calls", options.calls, 1);
  whole("frame bytes", options.frameBytes, 2);
  whole("chunk bytes", options.chunkBytes, 2);
  if (options.frameBytes % 2 !== 0) {
    throw new LoadOptionError(
      `Invalid frame bytes "${options.frameBytes}": expected whole 16-bit samples (an even number)`,
    );
  }
  if (![8000, 16000, 24000].includes(options.sampleRate)) {
    throw new LoadOptionError(
      `Invalid sample rate "${options.sampleRate}": expected 8000, 16000 or 24000`,
    );
  }
  if (!(options.durationS > 0)) {
    throw new LoadOptionError(
      `Invalid duration "${options.durationS}": expected seconds above 0`,
    );
  }
  if (!(options.rampS >= 0)) {
    throw new LoadOptionError(
      `Invalid ramp "${options.rampS}": expected seconds from 0`,
    );
  }
  const url = URL.parse(options.url);
  if (!url || (url.protocol !== "ws:" && url.protocol !== "wss:")) {
    throw new LoadOptionError(
      `Invalid URL "${options.url}": expected ws://127.0.0.1:<port>/<path>`,
    );
  }
  if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) {
    throw new LoadOptionError(
      `Invalid URL "${options.url}": the load generator only dials loopback`,
    );
  }
}

/** Caller frames per call: at least `durationS` worth, ending on a whole chunk. */
export function framesPerCall(
  options: Pick<
    LoadOptions,
    "durationS" | "frameBytes" | "sampleRate" | "chunkBytes"
  >,
): number {
  const frameMs = options.frameBytes / (options.sampleRate * 2 / 1000);
  const frames = Math.max(1, Math.ceil(options.durationS * 1000 / frameMs));
  const step = options.chunkBytes /
    gcd(options.frameBytes, options.chunkBytes);
  return Math.ceil(frames / step) * step;
}

/** Plays `options.calls` echo calls and returns what was measured. */
export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  validateLoadOptions(options);
  const frames = framesPerCall(options);
  const frameMs = options.frameBytes / (options.sampleRate * 2 / 1000);
  const rampMs = options.rampS * 1000;
  const settleMs = (options.settleS ?? 1) * 1000;
  const streamMs = frames * frameMs;
  if (streamMs - frameMs - rampMs - settleMs < 1000) {
    throw new LoadOptionError(
      `Invalid duration "${options.durationS}": the calls must all be live for at least 1 s after the ramp (${options.rampS} s) and settling (${
        settleMs / 1000
      } s)`,
    );
  }
  const pattern = new Uint8Array(65536);
  crypto.getRandomValues(pattern);
  const pid = options.serverPid;
  const readServer = () =>
    pid === undefined ? Promise.resolve(undefined) : tryReadProc(pid);
  const idle = await readServer();
  const meter = new EchoMeter();
  const t0 = performance.now();
  meter.origin = t0;
  meter.windowStart = t0 + rampMs + settleMs;
  // Before the first call's last frame: its echo may end the call right after.
  meter.windowEnd = t0 + streamMs - frameMs;

  const serverAt: Window<Promise<ProcSample | undefined>> = {};
  const selfAt: Window<Promise<ProcSample | undefined>> = {};
  const machineAt: Window<Promise<MachineSample | undefined>> = {};
  const sampleStart = setTimeout(() => {
    serverAt.start = readServer();
    selfAt.start = tryReadProc(Deno.pid);
    machineAt.start = tryReadMachine();
  }, meter.windowStart - performance.now());
  const sampleEnd = setTimeout(() => {
    serverAt.end = readServer();
    selfAt.end = tryReadProc(Deno.pid);
    machineAt.end = tryReadMachine();
  }, meter.windowEnd - performance.now());

  // Lag of a 10 ms timer: how long the generator's own event loop stalls.
  const loopLag = new Samples();
  let lastTick = performance.now();
  const lagProbe = setInterval(() => {
    const now = performance.now();
    if (meter.inWindow(now)) {
      loopLag.add(Math.max(0, now - lastTick - LAG_PROBE_MS));
    }
    lastTick = now;
  }, LAG_PROBE_MS);

  let live = 0;
  let peakLive = 0;
  let minLiveInWindow = Infinity;
  const liveCheck = setInterval(() => {
    if (meter.inWindow(performance.now())) {
      minLiveInWindow = Math.min(minLiveInWindow, live);
    }
  }, LIVE_CHECK_MS);
  const progress = options.onProgress
    ? setInterval(async () => {
      const s = ((performance.now() - t0) / 1000).toFixed(0);
      const rss = (await readServer())?.rssKb;
      options.onProgress?.(
        `t=${s}s live=${live} echoed frames in window=${meter.frameLatency.count}${
          rss === undefined ? "" : ` server RSS=${(rss / 1024).toFixed(0)} MiB`
        }`,
      );
    }, PROGRESS_MS)
    : undefined;

  const connects = new Samples();
  const runs: Promise<CallResult>[] = [];
  const gapMs = options.calls > 1 ? rampMs / (options.calls - 1) : 0;
  try {
    for (let id = 0; id < options.calls; id++) {
      const due = t0 + id * gapMs;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      live++;
      peakLive = Math.max(peakLive, live);
      runs.push(
        runLoadCall({
          url: options.url,
          id,
          sampleRate: options.sampleRate,
          frameBytes: options.frameBytes,
          frames,
          drainMs: options.drainMs ?? 3000,
          connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
          pattern,
          meter,
          headers: options.headers,
        }).then((result) => {
          live--;
          if (result.connectMs !== undefined) connects.add(result.connectMs);
          return result;
        }),
      );
    }
    const results = await Promise.all(runs);
    return summarize(results, {
      options,
      frames,
      frameMs,
      meter,
      connects,
      loopLag,
      peakLive,
      minLiveInWindow: Number.isFinite(minLiveInWindow) ? minLiveInWindow : 0,
      idle,
      serverAt: { start: await serverAt.start, end: await serverAt.end },
      selfAt: { start: await selfAt.start, end: await selfAt.end },
      machineAt: { start: await machineAt.start, end: await machineAt.end },
    });
  } finally {
    clearTimeout(sampleStart);
    clearTimeout(sampleEnd);
    clearInterval(liveCheck);
    clearInterval(lagProbe);
    clearInterval(progress);
  }
}

interface Window<T> {
  start?: T;
  end?: T;
}

interface RunState {
  options: LoadOptions;
  frames: number;
  frameMs: number;
  meter: EchoMeter;
  connects: Samples;
  loopLag: Samples;
  peakLive: number;
  minLiveInWindow: number;
  idle?: ProcSample;
  serverAt: Window<ProcSample | undefined>;
  selfAt: Window<ProcSample | undefined>;
  machineAt: Window<MachineSample | undefined>;
}

function summarize(results: CallResult[], state: RunState): LoadReport {
  const { options, meter, serverAt, selfAt } = state;
  const count = (outcome: CallResult["outcome"]) =>
    results.filter((result) => result.outcome === outcome).length;
  const sum = (pick: (result: CallResult) => number) =>
    results.reduce((total, result) => total + pick(result), 0);
  const errors = new Map<string, number>();
  for (const result of results) {
    if (result.error === undefined) continue;
    errors.set(result.error, (errors.get(result.error) ?? 0) + 1);
  }
  const windowS = (meter.windowEnd - meter.windowStart) / 1000;
  const framesEchoed = meter.frameLatency.count;
  let server: LoadReport["server"];
  if (
    options.serverPid !== undefined && state.idle && serverAt.start &&
    serverAt.end
  ) {
    const cpuUs = (serverAt.end.cpuMs - serverAt.start.cpuMs) * 1000;
    const loadedRssKb = serverAt.end.rssKb;
    server = {
      pid: options.serverPid,
      cpuPercent: round(cpuPercent(serverAt.start, serverAt.end), 1),
      cpuUsPerEchoedFrame: round(cpuUs / Math.max(1, framesEchoed), 1),
      cpuUsPerChunk: round(cpuUs / Math.max(1, meter.chunksReceived), 1),
      idleRssKb: state.idle.rssKb,
      loadedRssKb,
      rssKbPerCall: round(
        (loadedRssKb - state.idle.rssKb) / Math.max(1, state.minLiveInWindow),
        1,
      ),
    };
  }
  return {
    settings: {
      calls: options.calls,
      durationS: options.durationS,
      frameBytes: options.frameBytes,
      frameMs: state.frameMs,
      sampleRate: options.sampleRate,
      rampS: options.rampS,
      chunkBytes: options.chunkBytes,
      framesPerCall: state.frames,
    },
    calls: {
      started: results.length,
      connected: results.filter((result) => result.connectMs !== undefined)
        .length,
      failed: count("connect_failed"),
      dropped: count("dropped"),
      completed: count("completed"),
      peakLive: state.peakLive,
      minLiveInWindow: state.minLiveInWindow,
    },
    bytes: {
      sent: sum((result) => result.bytesSent),
      echoed: sum((result) => result.bytesEchoed),
      lost: sum(bytesLost),
      skipped: sum((result) => result.bytesSkipped),
      corrupt: sum((result) => result.bytesCorrupt),
      extra: sum((result) => result.bytesExtra),
    },
    badMedia: sum((result) => result.badMedia),
    otherFrames: sum((result) => result.otherReceived),
    latencyMs: {
      echo: rounded(meter.frameLatency.distribution()),
      chunk: rounded(meter.chunkLatency.distribution()),
      playout: rounded(meter.playoutLatency.distribution()),
      connect: rounded(state.connects.distribution()),
      sendLateness: rounded(meter.sendLateness.distribution()),
      generatorLoopLag: rounded(state.loopLag.distribution()),
    },
    window: {
      seconds: round(windowS, 2),
      framesSent: meter.framesSent,
      framesEchoed,
      chunksReceived: meter.chunksReceived,
    },
    server,
    generatorCpuPercent: selfAt.start && selfAt.end
      ? round(cpuPercent(selfAt.start, selfAt.end), 1)
      : undefined,
    machine: machineLoad(state),
    timeline: meter.timeline(),
    errors: [...errors].sort((a, b) => b[1] - a[1]).slice(0, 5).map((
      [message, count],
    ) => ({ message, count })),
  };
}

function machineLoad(state: RunState): LoadReport["machine"] {
  const { start, end } = state.machineAt;
  if (!start || !end) return undefined;
  const wallMs = end.at - start.at;
  if (wallMs <= 0) return undefined;
  const busy = (end.busyMs - start.busyMs) / wallMs * 100;
  const own = [state.serverAt, state.selfAt].reduce(
    (sum, { start, end }) =>
      start && end ? sum + (end.cpuMs - start.cpuMs) / wallMs * 100 : sum,
    0,
  );
  return {
    busyPercent: round(busy, 1),
    otherPercent: round(Math.max(0, busy - own), 1),
    stealPercent: round((end.stealMs - start.stealMs) / wallMs * 100, 1),
  };
}

function rounded(distribution: Distribution): Distribution {
  return {
    count: distribution.count,
    p50: round(distribution.p50, 2),
    p90: round(distribution.p90, 2),
    p99: round(distribution.p99, 2),
    max: round(distribution.max, 2),
  };
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
