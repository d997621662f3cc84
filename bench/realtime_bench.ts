/**
 * What `BOT=realtime` costs, measured through the real server and the real
 * adapters against the speech-to-speech fakes on 127.0.0.1:
 *
 * 1. 8 kHz audio on the wire: OpenAI takes G.711 μ-law at 8 kHz or PCM at
 *    24 kHz. For each: CPU per call-second (caller audio up, model audio
 *    down), bytes per second up, and the round-trip SNR of the fixture
 *    speech (μ-law encode → decode, or 8 → 24 → 8 kHz resampling).
 * 2. Pipeline overhead per provider: from the arrival at the bot of the
 *    caller frame that ended the turn (by the fake's own detection) to the
 *    first media frame of the answer at the caller, minus the fake's fixed
 *    latency ({@linkcode VENDOR_LATENCY_MS}). What is left is ours: two
 *    WebSocket hops, conversions, the player.
 * 3. Server CPU per call-second: the server in its own process
 *    (`main.ts`, `BOT=realtime`), `calls` concurrent calls of real-time
 *    speech and answers, CPU read from /proc over the steady part.
 *
 * Run: `deno run --allow-net --allow-env --allow-read --allow-run bench/realtime_bench.ts [turns] [calls]`
 * (defaults 100 turns, 20 calls). The cascade's figures, for comparison,
 * come from `bench/agent_bench.ts`.
 *
 * @module
 */

import { concat } from "@std/bytes";
import { decodeMulaw, encodeMulaw } from "../src/audio/mulaw.ts";
import { resampleAll, Resampler } from "../src/audio/resample.ts";
import { decodeWav } from "../src/audio/wav.ts";
import { loadAgentConfig } from "../src/bots/agent/config.ts";
import { createRealtimeBotFactory } from "../src/bots/realtime/mod.ts";
import { loadRealtimeConfig } from "../src/bots/realtime/config.ts";
import type { Bot } from "../src/bots/bot.ts";
import { loadConfig } from "../src/config.ts";
import { startServer } from "../src/server.ts";
import {
  FakeGeminiLive,
  FakeOpenAiRealtime,
  REALTIME_KEY,
} from "../tests/fakes/realtime_servers.ts";
import { BenchCaller, type Percentiles, percentiles } from "./agent_bench.ts";
import { readProc } from "./load/proc.ts";

/** The fakes' wait before an answer's first audio, in ms. */
export const VENDOR_LATENCY_MS = 50;

const FRAME_MS = 20;
const FRAME_BYTES = 320;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A loud 20 ms frame: what the fakes' energy detection hears as speech. */
function toneFrame(): Uint8Array {
  const pcm = new Uint8Array(FRAME_BYTES);
  const view = new DataView(pcm.buffer);
  for (let i = 0; i < FRAME_BYTES / 2; i++) {
    view.setInt16(
      i * 2,
      Math.round(8000 * Math.sin(2 * Math.PI * 440 * i / 8000)),
      true,
    );
  }
  return pcm;
}

async function fixture(name: string): Promise<Uint8Array> {
  const url = new URL(`../tests/fixtures/audio/${name}`, import.meta.url);
  return decodeWav(await Deno.readFile(url)).pcm;
}

/** Signal-to-error ratio of `got` against `want`, in dB, at the best lag within ±64 samples. */
function snrDb(want: Uint8Array, got: Uint8Array): number {
  const a = new Int16Array(want.buffer, want.byteOffset, want.length >> 1);
  const b = new Int16Array(got.buffer, got.byteOffset, got.length >> 1);
  let best = -Infinity;
  for (let lag = -64; lag <= 64; lag++) {
    let signal = 0;
    let error = 0;
    for (let i = 100; i < a.length - 100; i++) {
      const j = i + lag;
      if (j < 0 || j >= b.length) continue;
      signal += a[i] * a[i];
      error += (a[i] - b[j]) ** 2;
    }
    best = Math.max(best, 10 * Math.log10(signal / Math.max(error, 1)));
  }
  return best;
}

/** µs of CPU `fn` takes per second of 8 kHz audio, over `pcm` cut in 20 ms frames. */
function cpuPerSecond(
  pcm: Uint8Array,
  fn: (frame: Uint8Array) => void,
): number {
  const frames: Uint8Array[] = [];
  for (let at = 0; at + FRAME_BYTES <= pcm.length; at += FRAME_BYTES) {
    frames.push(pcm.subarray(at, at + FRAME_BYTES));
  }
  for (let i = 0; i < 3; i++) for (const frame of frames) fn(frame); // warm up
  const rounds = 20;
  const start = performance.now();
  for (let i = 0; i < rounds; i++) for (const frame of frames) fn(frame);
  const elapsedMs = performance.now() - start;
  return elapsedMs * 1000 / (rounds * pcm.length / 16000);
}

/** Figures of one 8 kHz wire format. */
export interface WireFormatReport {
  format: "pcmu" | "pcm";
  /** µs of CPU per call-second, caller audio up plus model audio down. */
  cpuUsPerCallSecond: number;
  /** Audio bytes per second up, before base64. */
  bytesPerSecondUp: number;
  /** Round trip of the fixture speech. */
  snrDb: number;
}

/** Measures both 8 kHz wire formats on the hello fixture. */
export async function measureWireFormats(): Promise<WireFormatReport[]> {
  const speech = await fixture("hello_8000.wav");
  const model24k = resampleAll(speech, { fromRate: 8000, toRate: 24000 });
  const modelMulaw = encodeMulaw(speech);
  const up = new Resampler(8000, 24000);
  const down = new Resampler(24000, 8000);
  const model24kFrame = (i: number) =>
    model24k.subarray(i * 960, i * 960 + 960);
  let i = 0;
  const pcmCpu = cpuPerSecond(speech, (frame) => {
    up.push(frame).toBase64();
    down.push(
      Uint8Array.fromBase64(model24kFrame(i++ % 100).toBase64()),
    );
  });
  let j = 0;
  const mulawCpu = cpuPerSecond(speech, (frame) => {
    encodeMulaw(frame).toBase64();
    decodeMulaw(Uint8Array.fromBase64(
      modelMulaw.subarray((j % 100) * 160, (j++ % 100) * 160 + 160).toBase64(),
    ));
  });
  const viaMulaw = decodeMulaw(encodeMulaw(speech));
  const via24k = resampleAll(model24k, { fromRate: 24000, toRate: 8000 });
  return [
    {
      format: "pcmu",
      cpuUsPerCallSecond: mulawCpu,
      bytesPerSecondUp: 8000,
      snrDb: snrDb(speech, viaMulaw),
    },
    {
      format: "pcm",
      cpuUsPerCallSecond: pcmCpu,
      bytesPerSecondUp: 48000,
      snrDb: snrDb(speech, via24k),
    },
  ];
}

/** One provider's overhead. */
export interface OverheadReport {
  setting: string;
  overhead: Percentiles;
}

/** Measures the pipeline overhead of `turns` turns on one call. */
export async function measureOverhead(
  provider: "openai" | "gemini",
  options: { turns: number; narrowband?: "pcmu" | "pcm" },
): Promise<number[]> {
  const vendor = provider === "openai"
    ? new FakeOpenAiRealtime()
    : new FakeGeminiLive();
  vendor.script = {
    latencyMs: VENDOR_LATENCY_MS,
    defaultReply: { say: "Okay." },
  };
  const env = {
    REALTIME_PROVIDER: provider,
    REALTIME_BASE_URL: vendor.baseUrl,
    OPENAI_API_KEY: REALTIME_KEY,
    GEMINI_API_KEY: REALTIME_KEY,
    AGENT_GREETING: "Hi.",
    REALTIME_8K_FORMAT: options.narrowband ?? "pcmu",
  };
  const agent = loadAgentConfig(env, { cascade: false });
  const factory = createRealtimeBotFactory(loadRealtimeConfig(env), {
    agents: new Map([["default", agent]]),
    defaultAgent: "default",
  });
  const arrivals: number[] = [];
  const server = await startServer(
    loadConfig({
      HOST: "127.0.0.1",
      PORT: "0",
      KV_PATH: ":memory:",
      LOG_LEVEL: "error",
    }),
    {
      createBot: (info, output): Bot => {
        const bot = factory(info, output);
        return {
          start: () => bot.start(),
          audio: (pcm) => {
            arrivals.push(performance.now());
            bot.audio(pcm);
          },
          dtmf: (digit) => bot.dtmf(digit),
          stop: () => bot.stop(),
          report: () => bot.report(),
        };
      },
    },
  );
  const caller = await BenchCaller.dial(
    `ws://127.0.0.1:${server.addr.port}/voicebot/ws`,
  );
  const overhead: number[] = [];
  const warmup = 3;
  let answers = 0;
  let usedTurnEnds = 0;
  let lastMediaAt = -Infinity;
  caller.onMedia = () => {
    const now = performance.now();
    // An answer starts with the first frame after a gap; it answers the
    // latest turn end the fake detected (none for the greeting).
    if (now - lastMediaAt > 150 && vendor.turnEnds.length > usedTurnEnds) {
      usedTurnEnds = vendor.turnEnds.length;
      const end = vendor.turnEnds[usedTurnEnds - 1];
      const arrival = arrivals[end.audioMessage];
      if (++answers > warmup && arrival !== undefined) {
        overhead.push(now - arrival - VENDOR_LATENCY_MS);
      }
    }
    lastMediaAt = now;
  };
  const speech = toneFrame();
  const silence = new Uint8Array(FRAME_BYTES);
  const t0 = performance.now();
  // A second for the greeting, then each turn: 200 ms of voice and silence
  // until the answer has played.
  const leadFrames = 50;
  const turnFrames = 60;
  const frames = leadFrames + (options.turns + warmup) * turnFrames;
  for (let n = 0; n < frames; n++) {
    const wait = t0 + n * FRAME_MS - performance.now();
    if (wait > 0) await sleep(wait);
    const inTurn = n >= leadFrames && (n - leadFrames) % turnFrames < 10;
    caller.media(inTurn ? speech : silence);
  }
  await caller.hangUp();
  await server.shutdown();
  await vendor[Symbol.asyncDispose]();
  return overhead;
}

/** Server CPU per call-second with `calls` concurrent realtime calls, the server in its own process. */
export async function measureServerCpu(
  provider: "openai" | "gemini",
  calls: number,
): Promise<{ cpuMsPerCallSecond: number; rssMiB: number }> {
  const vendor = provider === "openai"
    ? new FakeOpenAiRealtime()
    : new FakeGeminiLive();
  vendor.script = {
    latencyMs: VENDOR_LATENCY_MS,
    defaultReply: { say: "Okay, noted." },
  };
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-write",
      new URL("../main.ts", import.meta.url).pathname,
    ],
    env: {
      PORT: String(port),
      HOST: "127.0.0.1",
      KV_PATH: ":memory:",
      LOG_LEVEL: "error",
      BOT: "realtime",
      REALTIME_PROVIDER: provider,
      REALTIME_BASE_URL: vendor.baseUrl,
      OPENAI_API_KEY: REALTIME_KEY,
      GEMINI_API_KEY: REALTIME_KEY,
    },
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      await sleep(100);
    }
  }
  const speech = await fixture("hello_8000.wav");
  const pause = new Uint8Array(16000 * 3); // 3 s for the answer
  const turn = concat([speech, pause]);
  const callers = await Promise.all(
    Array.from(
      { length: calls },
      () => BenchCaller.dial(`ws://127.0.0.1:${port}/voicebot/ws`),
    ),
  );
  const durationS = 20;
  const windowStart = 5;
  let before = 0;
  let after = 0;
  const t0 = performance.now();
  for (let n = 0; n < durationS * 50; n++) {
    const wait = t0 + n * FRAME_MS - performance.now();
    if (wait > 0) await sleep(wait);
    if (n === windowStart * 50) before = (await readProc(child.pid)).cpuMs;
    const at = (n * FRAME_BYTES) % (turn.length - FRAME_BYTES);
    for (const caller of callers) {
      caller.media(turn.subarray(at, at + FRAME_BYTES));
    }
  }
  const end = await readProc(child.pid);
  after = end.cpuMs;
  await Promise.all(callers.map((caller) => caller.hangUp()));
  child.kill("SIGTERM");
  await child.status;
  await vendor[Symbol.asyncDispose]();
  return {
    cpuMsPerCallSecond: (after - before) / (calls * (durationS - windowStart)),
    rssMiB: end.rssKb / 1024,
  };
}

if (import.meta.main) {
  const [turns, calls] = Deno.args.map(Number);
  const lines: string[] = [];
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  const p = (values: number[]) => {
    const { p50, p95, count } = percentiles(values);
    return `p50 ${ms(p50)}  p95 ${ms(p95)}  (n=${count})`;
  };
  lines.push("8 kHz on the wire to OpenAI Realtime (hello_8000.wav):");
  for (const row of await measureWireFormats()) {
    lines.push(
      `  ${row.format.padEnd(5)} CPU ${
        row.cpuUsPerCallSecond.toFixed(1)
      } µs per call-second, ${row.bytesPerSecondUp} B/s up, round-trip SNR ${
        row.snrDb.toFixed(1)
      } dB`,
    );
  }
  lines.push(
    `Pipeline overhead, turn end at the bot → first media frame at the caller, minus the fake's ${VENDOR_LATENCY_MS} ms:`,
  );
  for (
    const [label, provider, narrowband] of [
      ["openai, 8 kHz μ-law", "openai", "pcmu"],
      ["openai, 8 kHz as 24 kHz PCM", "openai", "pcm"],
      ["gemini, 8 kHz as 16 kHz PCM", "gemini", undefined],
    ] as const
  ) {
    lines.push(
      `  ${label}: ${
        p(await measureOverhead(provider, { turns: turns || 100, narrowband }))
      }`,
    );
  }
  lines.push(
    `Server CPU with ${calls || 20} concurrent calls (server process only):`,
  );
  for (const provider of ["openai", "gemini"] as const) {
    const { cpuMsPerCallSecond, rssMiB } = await measureServerCpu(
      provider,
      calls || 20,
    );
    lines.push(
      `  ${provider}: ${
        cpuMsPerCallSecond.toFixed(2)
      } ms CPU per call-second, RSS ${rssMiB.toFixed(0)} MiB`,
    );
  }
  // A benchmark's output is its result.
  // deno-lint-ignore no-console
  console.log(lines.join("\n"));
}
