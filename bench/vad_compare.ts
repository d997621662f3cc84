/**
 * Energy vs Silero voice-activity detection over the noise fixtures
 * (`tests/fixtures/audio/noise/`, described in its README), at 8 and 16
 * kHz: false detections on files with no caller speech, missed speech,
 * onset and end error against the fixtures' timings, and CPU per second of
 * call audio, for one call alone and for many calls at once (where Silero's
 * calls share model runs). Prints Markdown tables.
 *
 * ```sh
 * deno task bench:vad            # energy, Silero native and Silero WASM
 * deno task bench:vad --runtime wasm
 * deno task bench:vad --calls 100  # many calls at once: 100 (default 50)
 * ```
 *
 * @module
 */

import { loadSileroModel, type SileroModel } from "../src/audio/silero_vad.ts";
import {
  energyDetector,
  type SpeechDetector,
  type SpeechDetectorFactory,
} from "../src/audio/speech_detector.ts";
import { sileroDetector } from "../src/audio/silero_vad.ts";
import type { VadEvent } from "../src/audio/vad.ts";
import { decodeWav } from "../src/audio/wav.ts";
import { setImmediate } from "node:timers";
import { writeErr, writeOut } from "./load/format.ts";

/** A fixture and its caller speech, [start, end] in seconds (from the README; 16 kHz ends where they differ). */
interface Fixture {
  name: string;
  speech: [number, number][];
  speech16k?: [number, number][];
}

/** The fixtures, with the timings from `tests/fixtures/audio/noise/README.md`. */
export const NOISE_FIXTURES: readonly Fixture[] = [
  { name: "babble_only_3s", speech: [] },
  { name: "music_only_3s", speech: [] },
  { name: "tv_only_3s", speech: [] },
  { name: "fan_hum_3s", speech: [] },
  { name: "bot_echo_over_silence", speech: [] },
  {
    name: "speech_in_babble_snr10",
    speech: [[0.5, 3.267]],
    speech16k: [[0.5, 3.279]],
  },
  {
    name: "speech_in_babble_snr5",
    speech: [[0.5, 3.267]],
    speech16k: [[0.5, 3.279]],
  },
  { name: "speech_in_music_snr10", speech: [[0.5, 3.779]] },
  { name: "quiet_speech", speech: [[0.503, 3.412]] },
  {
    name: "short_answers",
    speech: [[0.501, 0.919], [2.132, 2.562], [3.771, 4.224]],
    speech16k: [[0.501, 0.931], [2.132, 2.562], [3.771, 4.224]],
  },
  {
    // The cough is not caller speech: detecting it counts as a false detection.
    name: "cough_then_speech",
    speech: [[1.551, 5.089]],
    speech16k: [[1.551, 5.1]],
  },
];

/** What one detector made of one fixture. */
export interface FixtureResult {
  /** Detected segments that overlap no true speech. */
  falseDetections: number;
  /** True speech segments no detection overlaps. */
  missed: number;
  /** Detected start minus true start, per detected true segment, ms. */
  onsetErrorsMs: number[];
  /** Detected end minus true end, ms. */
  endErrorsMs: number[];
  /** Most foreground speech (what a voice-only barge-in counts) at any moment, ms. */
  maxForegroundMs: number;
  /** Wall time spent analysing, ms. */
  cpuMs: number;
  /** Audio length, ms. */
  audioMs: number;
}

const FIXTURE_DIR = new URL("../tests/fixtures/audio/noise/", import.meta.url);

/** Reads a fixture's PCM. */
export async function fixturePcm(
  name: string,
  rate: number,
): Promise<Uint8Array> {
  const wav = decodeWav(
    await Deno.readFile(new URL(`${name}_${rate}.wav`, FIXTURE_DIR)),
  );
  return wav.pcm;
}

/** Runs `create` over a fixture in 20 ms pushes and scores it. */
export async function scoreFixture(
  create: SpeechDetectorFactory,
  fixture: Fixture,
  rate: 8000 | 16000,
): Promise<FixtureResult> {
  const pcm = await fixturePcm(fixture.name, rate);
  const events: VadEvent[] = [];
  let maxForegroundMs = 0;
  const detector: SpeechDetector = create(rate, {
    onAnalysed: (batch) => {
      events.push(...batch);
      maxForegroundMs = Math.max(maxForegroundMs, detector.foregroundMs);
    },
  });
  const step = rate / 50 * 2;
  const started = performance.now();
  for (let at = 0; at < pcm.length; at += step) {
    detector.push(pcm.subarray(at, at + step));
  }
  // Trailing silence closes the last segment.
  detector.push(new Uint8Array(rate * 2));
  await detector.close();
  const cpuMs = performance.now() - started;
  const segments: [number, number][] = [];
  let start: number | undefined;
  for (const event of events) {
    if (event.type === "speech_start") start = event.atMs;
    else if (start !== undefined) {
      segments.push([start, event.atMs]);
      start = undefined;
    }
  }
  const truth = (rate === 16000 ? fixture.speech16k : undefined) ??
    fixture.speech;
  const trueMs = truth.map(([a, b]) => [a * 1000, b * 1000]);
  const overlaps = (x: number[], y: number[]) => x[0] < y[1] && y[0] < x[1];
  const result: FixtureResult = {
    falseDetections: segments.filter((s) => !trueMs.some((t) => overlaps(s, t)))
      .length,
    missed: 0,
    maxForegroundMs,
    onsetErrorsMs: [],
    endErrorsMs: [],
    cpuMs,
    audioMs: pcm.length / 2 / rate * 1000,
  };
  for (const t of trueMs) {
    const hits = segments.filter((s) => overlaps(s, t));
    if (hits.length === 0) {
      result.missed++;
      continue;
    }
    result.onsetErrorsMs.push(hits[0][0] - t[0]);
    result.endErrorsMs.push(hits[hits.length - 1][1] - t[1]);
  }
  return result;
}

/**
 * Wall time per call-second of `calls` detectors fed at once, 20 ms per call
 * per turn of the event loop, as a server's sockets feed them: call `i`
 * plays fixture `i` (mod the fixtures), each fixture once.
 */
export async function concurrentCost(
  create: SpeechDetectorFactory,
  options: { rate: 8000 | 16000; calls: number },
): Promise<{ msPerCallSecond: number }> {
  const { rate, calls } = options;
  const pcms = await Promise.all(
    NOISE_FIXTURES.map((fixture) => fixturePcm(fixture.name, rate)),
  );
  const feeds = Array.from({ length: calls }, (_, i) => pcms[i % pcms.length]);
  const detectors = feeds.map(() => create(rate));
  const step = rate / 50 * 2;
  const longest = Math.max(...feeds.map((pcm) => pcm.length));
  const started = performance.now();
  for (let at = 0; at < longest; at += step) {
    detectors.forEach((detector, i) => {
      if (at < feeds[i].length) {
        detector.push(feeds[i].subarray(at, at + step));
      }
    });
    await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(detectors.map((detector) => detector.close()));
  const elapsed = performance.now() - started;
  const audioS = feeds.reduce((sum, pcm) => sum + pcm.length / 2 / rate, 0);
  return { msPerCallSecond: elapsed / audioS };
}

/** How long one model run of `rows` 8 kHz windows takes, over 200 runs. */
export async function runTimes(
  model: SileroModel,
  rows: number,
): Promise<{ p50: number; max: number }> {
  const input = new Float32Array(rows * 288).map((_, i) =>
    0.2 * Math.sin(i / 7)
  );
  const state = new Float32Array(2 * rows * 128);
  const times: number[] = [];
  for (let i = 0; i < 220; i++) {
    const started = performance.now();
    await model.runBatch({ rate: 8000, rows, input, state });
    // The first runs warm the caches.
    if (i >= 20) times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { p50: times[times.length >> 1], max: times[times.length - 1] };
}

function mean(values: number[]): string {
  if (values.length === 0) return "–";
  const m = values.reduce((a, b) => a + b, 0) / values.length;
  return `${m >= 0 ? "+" : ""}${Math.round(m)}`;
}

async function main(): Promise<void> {
  const runtimeFlag = Deno.args.indexOf("--runtime");
  const only = runtimeFlag >= 0 ? Deno.args[runtimeFlag + 1] : undefined;
  const callsFlag = Deno.args.indexOf("--calls");
  const calls = callsFlag >= 0 ? Number(Deno.args[callsFlag + 1]) : 50;
  if (!Number.isInteger(calls) || calls < 1) {
    writeErr(
      `Invalid --calls "${
        Deno.args[callsFlag + 1]
      }": expected a whole number, e.g. 50`,
    );
    Deno.exit(2);
  }
  const detectors: [string, SpeechDetectorFactory][] = [];
  const models: SileroModel[] = [];
  if (only === undefined || only === "energy") {
    detectors.push(["energy", energyDetector]);
  }
  for (const runtime of ["native", "wasm"] as const) {
    if (only !== undefined && only !== runtime) continue;
    let model: SileroModel;
    try {
      const started = performance.now();
      model = await loadSileroModel({ runtime });
      writeErr(
        `Silero ${runtime}: loaded in ${
          Math.round(performance.now() - started)
        } ms`,
      );
    } catch (error) {
      writeErr(`Silero ${runtime}: ${(error as Error).message}`);
      continue;
    }
    detectors.push([`silero (${runtime})`, sileroDetector(model)]);
    models.push(model);
  }
  const rows: string[] = [];
  const totals = new Map<string, { cpuMs: number; audioMs: number }>();
  for (const rate of [8000, 16000] as const) {
    for (const fixture of NOISE_FIXTURES) {
      const cells: string[] = [];
      for (const [name, create] of detectors) {
        // A first pass warms the code paths; the second is scored.
        await scoreFixture(create, fixture, rate);
        const r = await scoreFixture(create, fixture, rate);
        const key = `${name} ${rate}`;
        const total = totals.get(key) ?? { cpuMs: 0, audioMs: 0 };
        total.cpuMs += r.cpuMs;
        total.audioMs += r.audioMs;
        totals.set(key, total);
        const speech = fixture.speech.length > 0;
        cells.push(
          speech
            ? `${r.falseDetections} / ${r.missed} of ${fixture.speech.length} / ${
              mean(r.onsetErrorsMs)
            } / ${mean(r.endErrorsMs)}`
            : `**${r.falseDetections}** (${r.maxForegroundMs} ms)`,
        );
      }
      rows.push(
        `| ${fixture.name} | ${rate / 1000} kHz | ${cells.join(" | ")} |`,
      );
    }
  }
  const names = detectors.map(([name]) => name);
  const out = [
    `| fixture | rate | ${names.join(" | ")} |`,
    `| --- | --- | ${names.map(() => "---").join(" | ")} |`,
    ...rows,
    "",
    "Noise-only rows: false speech detections (bold), and in brackets the most foreground speech at any moment (what a voice-only barge-in counts; the agent pauses at 100 ms). Speech rows: false detections / missed / onset error ms / end error ms (mean, + is late).",
    "",
    `| CPU per call-second | ${names.join(" | ")} |`,
    `| --- | ${names.map(() => "---").join(" | ")} |`,
    ...[8000, 16000].map((rate) =>
      `| ${rate / 1000} kHz | ${
        names.map((name) => {
          const t = totals.get(`${name} ${rate}`)!;
          return `${(t.cpuMs / (t.audioMs / 1000)).toFixed(2)} ms`;
        }).join(" | ")
      } |`
    ),
  ];
  out.push(
    "",
    `| CPU per call-second, ${calls} calls at once | ${names.join(" | ")} |`,
    `| --- | ${names.map(() => "---").join(" | ")} |`,
  );
  for (const rate of [8000, 16000] as const) {
    const cells: string[] = [];
    for (const [, create] of detectors) {
      await concurrentCost(create, { rate, calls: Math.min(calls, 10) });
      const { msPerCallSecond } = await concurrentCost(create, { rate, calls });
      cells.push(`${msPerCallSecond.toFixed(2)} ms`);
    }
    out.push(`| ${rate / 1000} kHz | ${cells.join(" | ")} |`);
  }
  if (models.length > 0) {
    out.push(
      "",
      "| one model run (8 kHz), p50 / max: how long it holds the event loop | rows | " +
        models.map((model) => model.runtime).join(" | ") + " |",
      `| --- | --- | ${models.map(() => "---").join(" | ")} |`,
    );
    for (const rows of [1, 8, 32]) {
      const cells: string[] = [];
      for (const model of models) {
        const { p50, max } = await runTimes(model, rows);
        cells.push(`${p50.toFixed(2)} / ${max.toFixed(2)} ms`);
      }
      out.push(`| | ${rows} | ${cells.join(" | ")} |`);
    }
  }
  writeOut(out.join("\n"));
}

if (import.meta.main) await main();
