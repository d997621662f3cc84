/**
 * A soak run: a steady number of echo calls that keep ending and being
 * replaced (churn), with the server's RSS sampled throughout, so that a leak
 * shows as RSS that keeps climbing after warm-up.
 *
 * @module
 */

import { bytesLost, type CallResult, runLoadCall } from "./call.ts";
import { EchoMeter } from "./meter.ts";
import { type ProcSample, tryReadProc } from "./proc.ts";
import { framesPerCall, LoadOptionError, validateLoadOptions } from "./run.ts";
import type { Distribution } from "./stats.ts";

/** Options of {@linkcode runSoak}. */
export interface SoakOptions {
  /** The voicebot endpoint, `ws://127.0.0.1:port/path`. */
  url: string;
  /** The server's pid: RSS is read from `/proc/<pid>/status`. */
  serverPid: number;
  /** Calls live at once. */
  calls: number;
  /** How long calls keep being started, in seconds. */
  durationS: number;
  /** Length of each call's caller audio, in seconds. */
  callS: number;
  /** Seconds between RSS samples. */
  sampleS: number;
  /** Seconds after which RSS should have stopped growing. */
  warmupS: number;
  /** How far, in %, the end RSS may sit above the warm-up RSS and still count as flat. */
  tolerancePercent: number;
  /** PCM bytes per caller media frame. */
  frameBytes: number;
  /** Sample rate of every call. */
  sampleRate: number;
  /** The server's outbound chunk size. */
  chunkBytes: number;
  /** Extra headers on every upgrade request. */
  headers?: Record<string, string>;
  /** An HTTP URL answering `{"activeSessions": n}`, read once the calls are over. */
  healthUrl?: string;
  /** Called with each RSS sample as it is taken. */
  onSample?: (sample: RssSample, live: number) => void;
}

/** One RSS reading. */
export interface RssSample {
  /** Seconds since the soak started. */
  second: number;
  /** Resident set size in KiB. */
  rssKb: number;
  /** Server CPU since the previous sample, % of a core. */
  cpuPercent: number;
  /** Calls live when it was taken. */
  live: number;
}

/** What a soak found. */
export interface SoakReport {
  /** The settings used. */
  settings: Omit<SoakOptions, "onSample" | "headers">;
  /** Calls placed, and how they ended. */
  calls: {
    started: number;
    completed: number;
    failed: number;
    dropped: number;
  };
  /** PCM bytes over all calls. */
  bytes: {
    sent: number;
    echoed: number;
    lost: number;
    skipped: number;
    corrupt: number;
  };
  /** Echo latency after warm-up, ms. */
  echoLatencyMs: Distribution;
  /** Every sample, in order. */
  samples: RssSample[];
  /** The labelled samples: idle before the first call, at warm-up, middle and end of the load, and idle after. */
  rssKb: {
    start: number;
    warmup: number;
    middle: number;
    end: number;
    after?: number;
  };
  /** Least-squares RSS growth over the samples from warm-up to the end, KiB per minute. */
  slopeKbPerMin: number;
  /** End RSS against warm-up RSS, in %. */
  growthPercent: number;
  /** Whether the growth stayed within the tolerance. */
  flat: boolean;
  /** Sessions the server still listed after every call had ended (main server only). */
  sessionsLeft?: number;
}

/** Checks `options`, throwing a {@linkcode LoadOptionError} for the first bad one. */
export function validateSoakOptions(options: SoakOptions): void {
  validateLoadOptions({
    url: options.url,
    calls: options.calls,
    durationS: options.durationS,
    frameBytes: options.frameBytes,
    sampleRate: options.sampleRate,
    rampS: 0,
    chunkBytes: options.chunkBytes,
  });
  for (
    const [name, value] of Object.entries({
      callS: options.callS,
      sampleS: options.sampleS,
    })
  ) {
    if (!(value > 0)) {
      throw new LoadOptionError(
        `Invalid ${name} "${value}": expected seconds above 0`,
      );
    }
  }
  if (!(options.warmupS >= 0 && options.warmupS < options.durationS)) {
    throw new LoadOptionError(
      `Invalid warm-up "${options.warmupS}": expected seconds from 0 to below the duration (${options.durationS})`,
    );
  }
  if (!(options.tolerancePercent >= 0)) {
    throw new LoadOptionError(
      `Invalid tolerance "${options.tolerancePercent}": expected a percentage from 0`,
    );
  }
}

/** Runs the soak and returns what it measured. */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  validateSoakOptions(options);
  const frameMs = options.frameBytes / (options.sampleRate * 2 / 1000);
  const frames = framesPerCall({ ...options, durationS: options.callS });
  const callMs = frames * frameMs;
  const pattern = new Uint8Array(65536);
  crypto.getRandomValues(pattern);
  const meter = new EchoMeter();
  const first = await tryReadProc(options.serverPid);
  if (first === undefined) {
    throw new LoadOptionError(
      `Invalid server pid "${options.serverPid}": its /proc entry cannot be read`,
    );
  }
  const t0 = performance.now();
  const endAt = t0 + options.durationS * 1000;
  meter.origin = t0;
  meter.windowStart = t0 + options.warmupS * 1000;
  meter.windowEnd = endAt;

  let live = 0;
  const samples: RssSample[] = [];
  let previous: ProcSample = first;
  const take = async () => {
    const sample = await tryReadProc(options.serverPid);
    // The end sample may land on an interval sample: keep one of them.
    if (!sample || sample.at - previous.at < 500) return;
    const wallMs = sample.at - previous.at;
    const entry: RssSample = {
      second: Math.round((sample.at - t0) / 100) / 10,
      rssKb: sample.rssKb,
      cpuPercent: wallMs > 0
        ? Math.round((sample.cpuMs - previous.cpuMs) / wallMs * 1000) / 10
        : 0,
      live,
    };
    previous = sample;
    samples.push(entry);
    options.onSample?.(entry, live);
  };
  samples.push({ second: 0, rssKb: first.rssKb, cpuPercent: 0, live: 0 });
  const sampler = setInterval(take, options.sampleS * 1000);
  const endSample = setTimeout(take, endAt - performance.now());

  const results: CallResult[] = [];
  let nextId = 0;
  const slot = async (index: number) => {
    // Slots start spread over one call length, so calls end and start all the time.
    await sleep(index * callMs / options.calls);
    while (performance.now() < endAt) {
      live++;
      const result = await runLoadCall({
        url: options.url,
        id: nextId++,
        sampleRate: options.sampleRate,
        frameBytes: options.frameBytes,
        frames,
        drainMs: 3000,
        connectTimeoutMs: 10_000,
        pattern,
        meter,
        headers: options.headers,
      });
      live--;
      results.push(result);
      // A call that could not connect should not spin: wait a frame first.
      if (result.outcome === "connect_failed") await sleep(frameMs);
    }
  };
  try {
    await Promise.all(
      Array.from({ length: options.calls }, (_, index) => slot(index)),
    );
  } finally {
    clearInterval(sampler);
    clearTimeout(endSample);
  }
  // Let the server finish closing before the idle reading.
  await sleep(2000);
  const after = await tryReadProc(options.serverPid);
  const sessionsLeft = options.healthUrl === undefined
    ? undefined
    : await activeSessions(options.healthUrl);
  return summarize(options, {
    results,
    meter,
    samples,
    after: after?.rssKb,
    sessionsLeft,
  });
}

interface Outcome {
  results: CallResult[];
  meter: EchoMeter;
  samples: RssSample[];
  after?: number;
  sessionsLeft?: number;
}

function summarize(options: SoakOptions, outcome: Outcome): SoakReport {
  const { results, samples } = outcome;
  const { onSample: _onSample, headers: _headers, ...settings } = options;
  const at = (second: number) =>
    samples.reduce((best, sample) =>
      Math.abs(sample.second - second) < Math.abs(best.second - second)
        ? sample
        : best
    );
  const warmup = samples.find((sample) => sample.second >= options.warmupS) ??
    samples[samples.length - 1];
  const end = samples.reduce((last, sample) =>
    sample.second <= options.durationS + 1 ? sample : last
  );
  const middle = at((warmup.second + end.second) / 2);
  const steady = samples.filter((sample) =>
    sample.second >= warmup.second && sample.second <= end.second
  );
  const growthPercent = (end.rssKb - warmup.rssKb) / warmup.rssKb * 100;
  const count = (name: CallResult["outcome"]) =>
    results.filter((result) => result.outcome === name).length;
  const sum = (pick: (result: CallResult) => number) =>
    results.reduce((total, result) => total + pick(result), 0);
  return {
    settings,
    calls: {
      started: results.length,
      completed: count("completed"),
      failed: count("connect_failed"),
      dropped: count("dropped"),
    },
    bytes: {
      sent: sum((result) => result.bytesSent),
      echoed: sum((result) => result.bytesEchoed),
      lost: sum(bytesLost),
      skipped: sum((result) => result.bytesSkipped),
      corrupt: sum((result) => result.bytesCorrupt),
    },
    echoLatencyMs: outcome.meter.frameLatency.distribution(),
    samples,
    rssKb: {
      start: samples[0].rssKb,
      warmup: warmup.rssKb,
      middle: middle.rssKb,
      end: end.rssKb,
      after: outcome.after,
    },
    slopeKbPerMin: Math.round(slope(steady) * 60 * 10) / 10,
    growthPercent: Math.round(growthPercent * 10) / 10,
    flat: growthPercent <= options.tolerancePercent,
    sessionsLeft: outcome.sessionsLeft,
  };
}

/** Least-squares slope of RSS over time, KiB per second. */
function slope(samples: RssSample[]): number {
  if (samples.length < 2) return 0;
  const n = samples.length;
  const meanX = samples.reduce((sum, s) => sum + s.second, 0) / n;
  const meanY = samples.reduce((sum, s) => sum + s.rssKb, 0) / n;
  let numerator = 0;
  let denominator = 0;
  for (const sample of samples) {
    numerator += (sample.second - meanX) * (sample.rssKb - meanY);
    denominator += (sample.second - meanX) ** 2;
  }
  return denominator === 0 ? 0 : numerator / denominator;
}

async function activeSessions(url: string): Promise<number | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
    const body: unknown = await response.json();
    if (typeof body === "object" && body !== null && "activeSessions" in body) {
      const value = body.activeSessions;
      return typeof value === "number" ? value : undefined;
    }
  } catch {
    // A server without /health reports nothing.
  }
  return undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
