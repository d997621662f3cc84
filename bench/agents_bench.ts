/**
 * Many concurrent agent calls, measured from outside: `deno task bench:agents
 * --calls 50,100,200`.
 *
 * The real server runs in its own process (`main.ts`, `BOT=agent`, the
 * neural VAD unless `--vad energy`), its real adapters talking to fake
 * vendors in this process (in a worker thread, apart from the callers) whose
 * latencies are fixed: speech-to-text sends
 * the turn's final as soon as the turn's last audio arrives, the model's
 * first token comes after {@linkcode LLM_FIRST_TOKEN_MS} and the next ones
 * {@linkcode LLM_TOKEN_GAP_MS} apart, the voice's first
 * byte after {@linkcode TTS_FIRST_BYTE_MS}. Each call plays the hello
 * fixture in a loop in real time, 20 ms frames, one turn per loop.
 *
 * Pipeline overhead per turn = (first media frame of the answer received) −
 * (the turn's last caller frame sent) − the vendors' latencies (until the
 * model has written the first sentence, plus the voice's first byte): the cost of
 * everything that is ours, by the outside measure, including the caller's
 * and the server's socket hops and the server's event loop under load.
 *
 * Server CPU per call-second comes from `/proc/<pid>/stat` over the steady
 * window (every call connected), RSS per call from `/proc/<pid>/status`
 * against the idle server. The server is pinned to one core (`taskset`), as
 * the target is calls per core; "wait %" is how much of the window its
 * threads were ready to run but waited for that core
 * (`/proc/<pid>/task/<tid>/schedstat`), and "others %" how busy the rest of
 * the machine was: on a shared machine a high wait means the overhead
 * figures measure the neighbours as much as the server.
 *
 * Flags: `--calls 50,100,200` (one row each), `--duration-s 30` (steady
 * window per row), `--vad silero|energy`, `--cpu 0` (the core to pin the
 * server to; default 0, `-1` leaves it unpinned), `--cpu-prof DIR` (write
 * the server's CPU profile there), `--v8-flags FLAGS` (the server's V8
 * flags; those of `deno task start` by default, `""` for V8's defaults),
 * `--aligned` (every call's frame sent at the same instant, instead of
 * spread over the 20 ms as independent calls' frames are), `--listen-s 0`
 * (silence the caller sends before each turn's words, as a caller does
 * while the bot answers; a turn lasts that much longer). With `BENCH_DUMP=1` each row's per-turn
 * overheads are printed to stderr too.
 *
 * @module
 */

import { decodeWav } from "../src/audio/wav.ts";
import type { FakesReady, FakesRequest } from "./agents_fakes_worker.ts";
import { BenchCaller, type Percentiles, percentiles } from "./agent_bench.ts";
import { parseFlags } from "./load/flags.ts";
import { writeErr, writeOut } from "./load/format.ts";
import { cpuPercent, readProc, tryReadMachine } from "./load/proc.ts";
import { startServerProcess, startTaskV8Flags } from "./load/server.ts";

/** The fake model's wait before its first token, in ms. */
export const LLM_FIRST_TOKEN_MS = 50;
/** The fake voice's wait before its first audio byte, in ms. */
export const TTS_FIRST_BYTE_MS = 150;
/** Audio per caller turn: the hello fixture cut to a whole number of frames. */
const TURN_MS = 5600;
/** Where the fixture's speech starts. */
const SPEECH_START_MS = 520;
const FRAME_MS = 20;
/** Slots of a frame's 20 ms the calls' frames are spread over. */
const PHASES = 10;
const FRAME_BYTES = 320;
const KEY = "bench-key";
/** The model's time between tokens, in ms. */
export const LLM_TOKEN_GAP_MS = 25;
/**
 * The answer: two sentences streamed token by token, short enough to have
 * played before the caller's next words.
 */
const ANSWER = ["Sure", ", okay.", " Anything", " else?"];
/**
 * The vendors' share of a turn: the model's first event (the role) after
 * {@linkcode LLM_FIRST_TOKEN_MS}, "Sure" and ", okay." one gap each after
 * it, then the voice's first byte.
 */
const VENDOR_MS = LLM_FIRST_TOKEN_MS + 2 * LLM_TOKEN_GAP_MS +
  TTS_FIRST_BYTE_MS;

/** One row: what N concurrent agent calls cost and how fast they answered. */
export interface AgentsRow {
  /** Concurrent calls. */
  calls: number;
  /** Server CPU ms per call-second of the steady window. */
  cpuMsPerCallSecond: number;
  /** Server CPU over the steady window, % of one core. */
  cpuPercent: number;
  /** RSS growth over the idle server, per call, KiB. */
  rssKbPerCall: number;
  /** Pipeline overhead per turn, ms. */
  overhead: Percentiles;
  /** Turns whose answer never came before the caller's next turn ended (or the row did). */
  unanswered: number;
  /** This process (callers and fakes) over the window, % of one core: near 100 it, not the server, is the limit. */
  benchCpuPercent: number;
  /** Time the server's threads were ready to run but waited for a CPU, % of the window. */
  waitPercent: number;
  /** CPU used by everything but the server and this process, % of one core. */
  othersPercent: number;
}

interface CallState {
  caller: BenchCaller;
  /** Frames sent so far. */
  sent: number;
  /** When each turn's last frame was sent, by turn. */
  turnEnds: number[];
  /** Turns answered so far. */
  answered: number;
  /** The last turn answered, -1 before the first. */
  lastAnswered: number;
  /** The tick the call starts talking at: calls are spread over a turn, as real calls are. */
  startTick: number;
}

/** Runs N calls against a fresh server and measures them. */
async function runRow(
  calls: number,
  options: {
    durationS: number;
    vad: string;
    cpu?: number;
    cpuProf?: string;
    /** The server's V8 flags; those of `deno task start` by default. */
    v8Flags?: string;
    /** Every call's frame at the same instant, instead of spread over the 20 ms. */
    aligned: boolean;
    /** One turn of caller audio: silence, then the hello fixture. */
    fixture: Uint8Array;
    /** The silence before the words, ms. */
    listenMs: number;
  },
): Promise<AgentsRow> {
  const turnMs = TURN_MS + options.listenMs;
  const turnsPerCall = Math.ceil(
    (options.durationS * 1000 + 20_000) / turnMs,
  ) + 2;
  await using fakes = await startFakes({
    key: KEY,
    turns: turnsPerCall,
    speechStartMs: SPEECH_START_MS + options.listenMs,
    turnMs,
    answer: ANSWER,
    firstTokenMs: LLM_FIRST_TOKEN_MS,
    tokenGapMs: LLM_TOKEN_GAP_MS,
    ttsFirstByteMs: TTS_FIRST_BYTE_MS,
  });
  await using server = await startServerProcess({
    kind: "main",
    cpu: options.cpu,
    ...(options.v8Flags === undefined ? {} : { v8Flags: options.v8Flags }),
    denoFlags: [
      "--allow-ffi",
      ...(options.cpuProf
        ? ["--cpu-prof", `--cpu-prof-dir=${options.cpuProf}/calls-${calls}`]
        : []),
    ],
    env: {
      BOT: "agent",
      LOG_LEVEL: "warning",
      MAX_SESSIONS: "5000",
      VAD: options.vad,
      DEEPGRAM_API_KEY: KEY,
      STT_BASE_URL: fakes.urls.stt,
      TTS_BASE_URL: fakes.urls.tts,
      LLM_BASE_URL: fakes.urls.llm,
      LLM_API_KEY: KEY,
      LLM_MODEL: "fake-model",
    },
  });
  const idle = await readProc(server.pid);
  const states: CallState[] = [];
  const overheads: number[] = [];
  // Dial in batches, so the ramp does not itself look like load.
  for (let i = 0; i < calls; i += 10) {
    const batch = await Promise.all(
      Array.from(
        { length: Math.min(10, calls - i) },
        () => BenchCaller.dial(server.url),
      ),
    );
    for (const caller of batch) {
      const state: CallState = {
        caller,
        sent: 0,
        turnEnds: [],
        answered: 0,
        lastAnswered: -1,
        startTick: Math.floor(states.length * turnMs / FRAME_MS / calls),
      };
      caller.onMedia = () => {
        // The first media after a turn's end answers it. Media before any
        // turn ended is the greeting; media of a turn already answered is
        // the rest of its answer. A turn still unanswered when the next one
        // ends stays unanswered: the answer that comes belongs to the
        // latest turn (pairing answers with turns in order would charge
        // every later answer of the call a whole turn, 5.6 s, for one
        // that was lost).
        const turn = state.turnEnds.length - 1;
        if (turn < 0 || turn === state.lastAnswered) return;
        state.lastAnswered = turn;
        state.answered++;
        overheads.push(performance.now() - state.turnEnds[turn] - VENDOR_MS);
      };
      states.push(state);
    }
  }
  // One ticker sends every talking call's next frame each 20 ms, the calls'
  // turns spread evenly over a turn's length. Real calls' frames come on
  // each call's own 20 ms clock, so by default the calls are spread over
  // PHASES slots of the 20 ms too; `--aligned` sends every call's frame at
  // the same instant, the worst case.
  const framesPerTurn = turnMs / FRAME_MS;
  const phases = options.aligned ? 1 : PHASES;
  const startedAt = performance.now();

  // Every call talking, and through its first turn.
  const warmupMs = turnMs * 2;
  let stopped = false;
  const ticker = (async () => {
    for (let slot = 0; !stopped; slot++) {
      const wait = startedAt + slot * FRAME_MS / phases - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const tick = Math.floor(slot / phases);
      for (let i = slot % phases; i < states.length; i += phases) {
        const state = states[i];
        if (tick < state.startTick) continue;
        const at = (state.sent % framesPerTurn) * FRAME_BYTES;
        state.caller.media(options.fixture.subarray(at, at + FRAME_BYTES));
        state.sent++;
        if (state.sent % framesPerTurn === 0) {
          state.turnEnds.push(performance.now());
        }
      }
    }
  })();
  await sleep(warmupMs);
  const firstTurn = overheads.length;
  const steadyFrom = await readProc(server.pid);
  const benchFrom = await readProc(Deno.pid);
  const waitFrom = await runQueueWaitMs(server.pid);
  const machineFrom = await tryReadMachine();
  await sleep(options.durationS * 1000);
  const steadyTo = await readProc(server.pid);
  const benchTo = await readProc(Deno.pid);
  const waitTo = await runQueueWaitMs(server.pid);
  const machineTo = await tryReadMachine();
  const measured = overheads.slice(firstTurn);
  if (Deno.env.get("BENCH_DUMP")) {
    writeErr(`${JSON.stringify(measured.map((v) => Math.round(v)))}\n`);
  }
  // Answers still due get a moment to come.
  await sleep(1500);
  stopped = true;
  await ticker;
  const expected = states.reduce(
    (sum, state) => sum + state.turnEnds.length,
    0,
  );
  const answered = states.reduce((sum, state) => sum + state.answered, 0);
  await Promise.all(states.map((state) => state.caller.hangUp()));
  const windowS = (steadyTo.at - steadyFrom.at) / 1000;
  const cpuMs = steadyTo.cpuMs - steadyFrom.cpuMs;
  const benchCpuMs = benchTo.cpuMs - benchFrom.cpuMs;
  const othersMs = machineFrom && machineTo
    ? machineTo.busyMs - machineFrom.busyMs - cpuMs - benchCpuMs
    : NaN;
  return {
    calls,
    cpuMsPerCallSecond: cpuMs / (calls * windowS),
    cpuPercent: cpuMs / (windowS * 10),
    rssKbPerCall: (steadyTo.rssKb - idle.rssKb) / calls,
    overhead: percentiles(measured),
    unanswered: expected - answered,
    benchCpuPercent: cpuPercent(benchFrom, benchTo),
    waitPercent: (waitTo - waitFrom) / (windowS * 10),
    othersPercent: Math.max(0, othersMs) / (windowS * 10),
  };
}

/**
 * Keeps the callers and fakes (this process, every thread) off the
 * server's core, so that the server shares it only with the machine's
 * other work. Without `taskset`, or on one core, nothing changes.
 */
async function pinElsewhere(serverCpu: number): Promise<void> {
  const cores = navigator.hardwareConcurrency;
  const others = Array.from({ length: cores }, (_, i) => i).filter((i) =>
    i !== serverCpu
  );
  if (others.length === 0) return;
  try {
    await new Deno.Command("taskset", {
      args: ["-a", "-p", "-c", others.join(","), String(Deno.pid)],
      stdout: "null",
      stderr: "null",
    }).output();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/**
 * Time the threads of process `pid` have spent ready to run but waiting
 * for a CPU, in ms (the second field of each thread's `schedstat`).
 */
async function runQueueWaitMs(pid: number): Promise<number> {
  let waitNs = 0;
  for await (const task of Deno.readDir(`/proc/${pid}/task`)) {
    try {
      const text = await Deno.readTextFile(
        `/proc/${pid}/task/${task.name}/schedstat`,
      );
      waitNs += Number(text.split(" ")[1]);
    } catch (error) {
      // A thread that ended between the listing and the read.
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return waitNs / 1e6;
}

/** The fake vendors, in a worker thread so that they do not slow the callers. */
async function startFakes(
  request: FakesRequest,
): Promise<AsyncDisposable & { urls: FakesReady }> {
  const worker = new Worker(
    new URL("./agents_fakes_worker.ts", import.meta.url),
    { type: "module" },
  );
  const next = () =>
    new Promise<unknown>((resolve) =>
      worker.onmessage = (event) => resolve(event.data)
    );
  const ready = next();
  worker.postMessage(request);
  const urls = await ready as FakesReady;
  return {
    urls,
    async [Symbol.asyncDispose]() {
      const closed = next();
      worker.postMessage("close");
      await closed;
      worker.terminate();
    },
  };
}

async function v8Label(flags: string | undefined): Promise<string> {
  const used = flags ?? await startTaskV8Flags();
  return used === "" ? "V8's defaults" : `"${used}"`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One table line per row. */
export function formatRow(row: AgentsRow): string {
  const { overhead } = row;
  return [
    String(row.calls).padStart(5),
    row.cpuMsPerCallSecond.toFixed(2).padStart(14),
    row.cpuPercent.toFixed(0).padStart(8),
    (row.rssKbPerCall / 1024).toFixed(2).padStart(12),
    String(overhead.count).padStart(6),
    overhead.p50.toFixed(1).padStart(8),
    overhead.p95.toFixed(1).padStart(8),
    overhead.max.toFixed(1).padStart(8),
    String(row.unanswered).padStart(10),
    row.benchCpuPercent.toFixed(0).padStart(8),
    row.waitPercent.toFixed(0).padStart(7),
    (Number.isNaN(row.othersPercent) ? "–" : row.othersPercent.toFixed(0))
      .padStart(9),
  ].join(" ");
}

const HEADER = [
  "calls",
  "cpu ms/call·s",
  "cpu %",
  "RSS MiB/call",
  "turns",
  "p50 ms",
  "p95 ms",
  "max ms",
  "unanswered",
  "bench %",
  "wait %",
  "others %",
].map((title, i) => title.padStart([5, 14, 8, 12, 6, 8, 8, 8, 10, 8, 7, 9][i]))
  .join(" ");

if (import.meta.main) {
  const flags = parseFlags(Deno.args, {
    numbers: ["duration-s", "cpu", "listen-s"],
    strings: ["calls", "vad", "cpu-prof", "v8-flags"],
    booleans: ["aligned"],
  });
  const counts = (flags.strings.calls ?? "50,100,200").split(",").map(
    (text) => {
      const count = Number(text.trim());
      if (!Number.isInteger(count) || count < 1) {
        writeErr(
          `Invalid --calls "${text}": expected whole numbers, e.g. 50,100,200\n`,
        );
        Deno.exit(2);
      }
      return count;
    },
  );
  const cpu = (flags.numbers.cpu ?? 0) < 0 ? undefined : flags.numbers.cpu ?? 0;
  if (cpu !== undefined) await pinElsewhere(cpu);
  const vad = flags.strings.vad ?? "silero";
  if (vad !== "silero" && vad !== "energy") {
    writeErr(`Invalid --vad "${vad}": expected silero or energy\n`);
    Deno.exit(2);
  }
  const wav = decodeWav(
    await Deno.readFile(
      new URL("../tests/fixtures/audio/hello_8000.wav", import.meta.url),
    ),
  );
  const listenS = flags.numbers["listen-s"] ?? 0;
  if (!(listenS >= 0) || !Number.isInteger(listenS * 1000 / FRAME_MS)) {
    writeErr(
      `Invalid --listen-s "${listenS}": expected seconds of at least 0, whole 20 ms frames\n`,
    );
    Deno.exit(2);
  }
  const listenMs = listenS * 1000;
  // Silence (zeros) while the caller listens, then the words.
  const fixture = new Uint8Array((listenMs + TURN_MS) * 16);
  fixture.set(wav.pcm.subarray(0, TURN_MS * 16), listenMs * 16);
  writeOut(
    `Agent calls, VAD=${vad}, V8 flags ${await v8Label(
      flags.strings["v8-flags"],
    )}, frames ${
      flags.booleans.has("aligned") ? "aligned" : `spread over ${PHASES} phases`
    }, caller silent ${listenS} s before each turn; vendors: STT final at once, LLM first token ${LLM_FIRST_TOKEN_MS} ms then one per ${LLM_TOKEN_GAP_MS} ms, TTS first byte ${TTS_FIRST_BYTE_MS} ms. Overhead = first answer frame received − turn's last frame sent − those.\n`,
  );
  writeOut(`${HEADER}\n`);
  for (const calls of counts) {
    const row = await runRow(calls, {
      durationS: flags.numbers["duration-s"] ?? 30,
      vad,
      cpu,
      cpuProf: flags.strings["cpu-prof"],
      v8Flags: flags.strings["v8-flags"],
      aligned: flags.booleans.has("aligned"),
      fixture,
      listenMs,
    });
    writeOut(`${formatRow(row)}\n`);
  }
}
