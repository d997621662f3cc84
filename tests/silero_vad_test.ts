import { assert, assertEquals, assertGreater, assertThrows } from "@std/assert";
import {
  loadSileroModel,
  SileroLoadError,
  type SileroModel,
  SileroVad,
} from "../src/audio/silero_vad.ts";
import {
  BackgroundLevel,
  energyDetector,
  type SpeechDetectorFactory,
} from "../src/audio/speech_detector.ts";
import { VadConfigError, type VadEvent } from "../src/audio/vad.ts";
import { loadSpeechDetectors } from "../src/bots/agent/voice_activity.ts";
import { fixturePcm } from "./fakes/agent_call.ts";
import { startServerProcess } from "./fakes/server_process.ts";

function assertLess(actual: number, limit: number, what = ""): void {
  assert(actual < limit, `${what}: expected ${actual} < ${limit}`);
}

function assertClose(actual: number, expected: number, what: string): void {
  assert(
    Math.abs(actual - expected) <= 1e-3,
    `${what}: ${actual} vs ${expected}`,
  );
}

const native = await loadSileroModel({ runtime: "native" });
const wasm = await loadSileroModel({ runtime: "wasm" });

interface Run {
  events: VadEvent[];
  probabilities: number[];
  maxForegroundMs: number;
}

async function run(
  create: SpeechDetectorFactory,
  pcm: Uint8Array,
  rate: number,
): Promise<Run> {
  const result: Run = { events: [], probabilities: [], maxForegroundMs: 0 };
  const detector = create(rate, {
    onFrame: (frame) => result.probabilities.push(frame.probability),
    onAnalysed: (events) => {
      result.events.push(...events);
      result.maxForegroundMs = Math.max(
        result.maxForegroundMs,
        detector.foregroundMs,
      );
    },
  });
  // 20 ms pushes, as Exotel's smallest frames, then a second of silence.
  const step = rate / 50 * 2;
  for (let at = 0; at < pcm.length; at += step) {
    detector.push(pcm.subarray(at, at + step));
  }
  detector.push(new Uint8Array(rate * 2));
  await detector.close();
  return result;
}

const sileroOn =
  (model: SileroModel): SpeechDetectorFactory => (rate, options) =>
    new SileroVad(model, rate, options);

function starts(events: VadEvent[]): number[] {
  return events.filter((event) => event.type === "speech_start").map((event) =>
    event.atMs
  );
}

Deno.test("Silero finds the three short answers at their fixture times, at 8 and 16 kHz", async () => {
  const truth = [501, 2132, 3771];
  for (const rate of [8000, 16000]) {
    const pcm = await fixturePcm(`noise/short_answers_${rate}.wav`);
    const { events } = await run(sileroOn(native), pcm, rate);
    const found = starts(events);
    assertEquals(found.length, 3, `${rate}: ${JSON.stringify(events)}`);
    found.forEach((atMs, i) =>
      assertLess(Math.abs(atMs - truth[i]), 100, `${rate} Hz answer ${i}`)
    );
    assertEquals(events.filter((e) => e.type === "speech_end").length, 3);
  }
});

Deno.test("Silero on WebAssembly scores every window as the native runtime does", async () => {
  const pcm = await fixturePcm("noise/speech_in_music_snr10_8000.wav");
  const a = await run(sileroOn(native), pcm, 8000);
  const b = await run(sileroOn(wasm), pcm, 8000);
  assertEquals(a.probabilities.length, b.probabilities.length);
  a.probabilities.forEach((p, i) =>
    assertClose(p, b.probabilities[i], `window ${i}`)
  );
  assertEquals(a.events, b.events);
  assertEquals(native.runtime, "native");
  assertEquals(wasm.runtime, "wasm");
});

Deno.test("Silero hears a 24 kHz call (resampled to 16 kHz) where the 8 kHz one does", async () => {
  const low = await run(
    sileroOn(native),
    await fixturePcm("hello_8000.wav"),
    8000,
  );
  const high = await run(
    sileroOn(native),
    await fixturePcm("hello_24000.wav"),
    24000,
  );
  assertGreater(starts(low.events).length, 0);
  assertEquals(starts(high.events).length, starts(low.events).length);
  assertLess(Math.abs(starts(high.events)[0] - starts(low.events)[0]), 100);
});

Deno.test("Silero never counts babble, music, TV or fan hum as foreground voice", async () => {
  for (const rate of [8000, 16000]) {
    for (
      const name of [
        "babble_only_3s",
        "music_only_3s",
        "tv_only_3s",
        "fan_hum_3s",
      ]
    ) {
      const pcm = await fixturePcm(`noise/${name}_${rate}.wav`);
      const { maxForegroundMs } = await run(sileroOn(native), pcm, rate);
      assertLess(maxForegroundMs, 100, `${name} at ${rate} Hz`);
    }
  }
});

Deno.test("Silero's energy gate answers silent windows without running the model", async () => {
  const vad = new SileroVad(native, 8000);
  vad.push(new Uint8Array(16000)); // a second of digital silence
  await vad.close();
  assertEquals(vad.stats, { inferences: 0, gated: 31 });
  assertEquals(vad.audioMs, 992);
  const speaking = new SileroVad(native, 8000);
  speaking.push(await fixturePcm("noise/quiet_speech_8000.wav"));
  await speaking.close();
  assertGreater(speaking.stats.inferences, 0);
  assertGreater(
    speaking.stats.gated,
    0,
    "the silence around the words is gated",
  );
});

Deno.test("Silero keeps each call's state apart: interleaved calls see what they would alone", async () => {
  const speech = await fixturePcm("noise/short_answers_8000.wav");
  const babble = await fixturePcm("noise/babble_only_3s_8000.wav");
  const alone = await run(sileroOn(native), speech, 8000);
  const events: VadEvent[] = [];
  const a = new SileroVad(native, 8000, {
    onAnalysed: (e) => events.push(...e),
  });
  const b = new SileroVad(native, 8000);
  for (let at = 0; at < speech.length; at += 320) {
    a.push(speech.subarray(at, at + 320));
    b.push(babble.subarray(at % babble.length, (at % babble.length) + 320));
  }
  a.push(new Uint8Array(16000));
  await Promise.all([a.close(), b.close()]);
  assertEquals(events, alone.events);
});

Deno.test("calls that speak at once share model runs, and each gets every window's score it gets alone", async () => {
  const names = [
    "short_answers",
    "quiet_speech",
    "speech_in_babble_snr5",
    "speech_in_music_snr10",
    "babble_only_3s",
    "cough_then_speech",
  ];
  const pcms = await Promise.all(
    names.map((name) => fixturePcm(`noise/${name}_8000.wav`)),
  );
  const alone: Run[] = [];
  for (const pcm of pcms) alone.push(await run(sileroOn(native), pcm, 8000));
  const model = await loadSileroModel({ runtime: "native" });
  const together = pcms.map(() => [] as number[]);
  const calls = pcms.map((_, i) =>
    new SileroVad(model, 8000, {
      onFrame: (frame) => together[i].push(frame.probability),
    })
  );
  const longest = Math.max(...pcms.map((pcm) => pcm.length));
  for (let at = 0; at < longest + 16000; at += 320) {
    calls.forEach((call, i) => {
      const frame = pcms[i].subarray(at, at + 320);
      call.push(frame.length > 0 ? frame : new Uint8Array(320));
    });
    // Calls' frames arrive in turns of the event loop, as from sockets.
    if (at % 3200 === 0) await new Promise((resolve) => setTimeout(resolve));
  }
  await Promise.all(calls.map((call) => call.close()));
  names.forEach((name, i) =>
    alone[i].probabilities.forEach((p, w) =>
      assertClose(together[i][w], p, `${name} window ${w}`)
    )
  );
  const { runs, windows, largestBatch } = model.stats;
  assertGreater(largestBatch, 1, "calls shared runs");
  assertLess(runs, windows, "fewer runs than windows");
});

Deno.test("calls share one model on either runtime: five at once each find the three answers", async () => {
  const speech = await fixturePcm("noise/short_answers_8000.wav");
  for (const model of [native, wasm]) {
    const found: number[] = [0, 0, 0, 0, 0];
    const calls = found.map((_, i) =>
      new SileroVad(model, 8000, {
        onAnalysed: (events) => found[i] += starts(events).length,
      })
    );
    for (let at = 0; at < speech.length; at += 320) {
      for (const call of calls) call.push(speech.subarray(at, at + 320));
    }
    for (const call of calls) call.push(new Uint8Array(16000));
    await Promise.all(calls.map((call) => call.close()));
    assertEquals(found, [3, 3, 3, 3, 3], model.runtime);
  }
});

Deno.test("a model run holds at most 32 calls natively, 8 on WebAssembly, or the maxBatch asked for", async () => {
  const speech = await fixturePcm("noise/quiet_speech_8000.wav");
  const cases: [Promise<SileroModel>, number][] = [
    [loadSileroModel({ runtime: "native" }), 32],
    [loadSileroModel({ runtime: "wasm" }), 8],
    [loadSileroModel({ runtime: "native", maxBatch: 3 }), 3],
  ];
  for (const [loading, cap] of cases) {
    const model = await loading;
    const calls = Array.from(
      { length: 40 },
      () => new SileroVad(model, 8000),
    );
    for (let at = 0; at < speech.length; at += 320) {
      for (const call of calls) call.push(speech.subarray(at, at + 320));
    }
    await Promise.all(calls.map((call) => call.close()));
    assertEquals(model.stats.largestBatch, cap, model.runtime);
    assertEquals(model.stats.failures, 0);
  }
});

Deno.test("a detector whose handler throws still analyses every window and closes", async () => {
  const errors: unknown[] = [];
  const model = await loadSileroModel({
    runtime: "native",
    onError: (error) => errors.push(error),
  });
  let frames = 0;
  const vad = new SileroVad(model, 8000, {
    onFrame: () => frames++,
    onAnalysed: (events) => {
      if (events.length > 0) throw new Error("handler broke");
    },
  });
  const speech = await fixturePcm("noise/short_answers_8000.wav");
  for (let at = 0; at < speech.length; at += 320) {
    try {
      vad.push(speech.subarray(at, at + 320));
    } catch {
      // Windows the gate answers at once report to the caller of push.
    }
  }
  await vad.close();
  assertEquals(frames * 256 * 2, speech.length - (speech.length % 512));
  assertGreater(errors.length, 0);
});

Deno.test("closing twice while windows wait resolves both closes once all is analysed", async () => {
  const vad = new SileroVad(native, 8000);
  vad.push(await fixturePcm("noise/quiet_speech_8000.wav"));
  await Promise.all([vad.close(), vad.close()]);
  assertGreater(vad.stats.inferences, 0);
  assertEquals(vad.audioMs, vad.stats.inferences * 32 + vad.stats.gated * 32);
});

Deno.test("Silero ignores audio pushed after close, and rejects rates and thresholds it cannot use", async () => {
  const vad = new SileroVad(native, 16000);
  await vad.close();
  vad.push(new Uint8Array(32000));
  assertEquals(vad.audioMs, 0);
  const rate = assertThrows(() => new SileroVad(native, 44100), VadConfigError);
  assertEquals(
    rate.message,
    'Invalid sample rate "44100": expected 8000, 16000 or 24000',
  );
  const threshold = assertThrows(
    () => new SileroVad(native, 8000, { threshold: 0.05 }),
    VadConfigError,
  );
  assertEquals(
    threshold.message,
    'Invalid threshold "0.05": expected 0.2 to 0.95',
  );
});

Deno.test("the background level is the recent median: a steady noise is not prominent, a voice over silence is", () => {
  const background = new BackgroundLevel(20);
  assertEquals(background.prominence(70), 0, "the first window is background");
  for (let i = 0; i < 50; i++) {
    assertLess(background.prominence(70 + (i % 3)), 3);
  }
  const quiet = new BackgroundLevel(20);
  for (let i = 0; i < 50; i++) quiet.prominence(30);
  assertEquals(quiet.prominence(66), 36);
});

Deno.test("the background level keeps the median of exactly the last 2 s, through many wraps of its history", () => {
  // 100 ms windows: a history of 20.
  const background = new BackgroundLevel(100);
  const history: number[] = [];
  let seed = 7;
  for (let i = 0; i < 500; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    // Few distinct values, so ties are common too.
    const level = 20 + (seed % 13) * 5;
    const sorted = [...history].sort((a, b) => a - b);
    const expected = sorted.length === 0
      ? 0
      : Math.max(0, level - sorted[sorted.length >> 1]);
    assertEquals(background.prominence(level), expected, `window ${i}`);
    history.push(level);
    if (history.length > 20) history.shift();
  }
});

Deno.test("the energy detector behind the common interface reports synchronously, with foreground voice over silence", async () => {
  const pcm = await fixturePcm("noise/quiet_speech_8000.wav");
  const events: VadEvent[] = [];
  let maxForegroundMs = 0;
  const detector = energyDetector(8000, {
    onAnalysed: (batch) => {
      events.push(...batch);
      maxForegroundMs = Math.max(maxForegroundMs, detector.foregroundMs);
    },
  });
  for (let at = 0; at < pcm.length; at += 320) {
    detector.push(pcm.subarray(at, at + 320));
  }
  // Nothing awaited yet: every event came from inside push.
  assertGreater(starts(events).length, 0);
  assertGreater(maxForegroundMs, 400);
  await detector.close();
  const analysed = detector.audioMs;
  detector.push(pcm);
  assertEquals(detector.audioMs, analysed, "nothing after close");
});

Deno.test("VAD=silero falls back from native to WebAssembly to the energy detector; VAD=energy loads nothing", async () => {
  const asked: string[] = [];
  const failing =
    (runtime: "native" | "wasm") => (options?: { runtime?: string }) => {
      asked.push(options?.runtime ?? "auto");
      return Promise.reject(
        new SileroLoadError(runtime, "Cannot load ONNX Runtime"),
      );
    };
  const none = await loadSpeechDetectors({
    vad: "silero",
    vadRuntime: "auto",
    load: failing("native"),
  });
  assertEquals(none.kind, "energy");
  assertEquals(asked, ["auto", "wasm"]);
  asked.length = 0;
  const onlyWasm = await loadSpeechDetectors({
    vad: "silero",
    vadRuntime: "wasm",
    load: failing("wasm"),
  });
  assertEquals(onlyWasm.kind, "energy");
  assertEquals(asked, ["wasm"]);
  asked.length = 0;
  const energy = await loadSpeechDetectors({
    vad: "energy",
    vadRuntime: "auto",
    load: failing("native"),
  });
  assertEquals(energy.kind, "energy");
  assertEquals(asked, []);
  const real = await loadSpeechDetectors({ vad: "silero", vadRuntime: "wasm" });
  assertEquals([real.kind, real.runtime], ["silero", "wasm"]);
});

Deno.test("Silero loads on WebAssembly without FFI, and the native runtime names what it needs without it", async () => {
  // Without --allow-ffi, "auto" picks WebAssembly and "native" fails cleanly.
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--frozen",
      "--allow-read",
      "--allow-env",
      "--deny-ffi",
      new URL("./fakes/silero_probe.ts", import.meta.url).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout).trim();
  assert(output.success, new TextDecoder().decode(output.stderr));
  assertEquals(text, "wasm SileroLoadError");
});

Deno.test("the server started as `deno task start` runs the agent on native Silero, and on WebAssembly when VAD_RUNTIME=wasm", async () => {
  for (const [runtime, expected] of [["auto", "native"], ["wasm", "wasm"]]) {
    const server = startServerProcess({
      BOT: "agent",
      DEEPGRAM_API_KEY: "dg-key",
      LLM_API_KEY: "sk-key",
      KV_PATH: ":memory:",
      VAD_RUNTIME: runtime,
    });
    await server.port;
    // The exit code is another test's business: the log has been read.
    await server.stop();
    assert(
      server.output().includes(
        `Voice activity: Silero VAD on ONNX Runtime (\\"${expected}\\")`,
      ),
      server.output(),
    );
  }
});
