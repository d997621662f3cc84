/**
 * The agent's own latency, measured through the real server, the real
 * adapters and fake vendors on 127.0.0.1 whose latency is fixed and known:
 *
 * 1. Pipeline overhead: from the moment the caller audio that ends a turn is
 *    sent to the first media frame of the answer, minus the vendors' own
 *    latency (speech-to-text and text-to-speech fakes answer at once, the
 *    language-model fake waits {@linkcode LLM_FIRST_TOKEN_MS} before its
 *    first token). What is left is ours: two WebSocket hops, two HTTP
 *    requests on loopback, parsing, turn-taking, sentence cutting, the
 *    player.
 * 2. Barge-in reaction: from the onset of the caller's speech over a
 *    talking bot (the fixture's first sample above ±64) to the `clear` frame,
 *    streamed in real time in 20 ms frames. The speech-to-text fake sends no
 *    transcript until later, so this is the voice guard alone: with the
 *    defaults (pause on 100 ms of voice), and with pausing off (the guard's
 *    400 ms of voice alone).
 * 3. A backchannel over a talking bot ("Hmm." then "Okay."): how long the
 *    bot stays silent, from the `clear` of its pause to its next media
 *    frame, and whether it resumed rather than being interrupted.
 *
 * Run: `deno run --allow-net --allow-env --allow-read bench/agent_bench.ts [turns] [repeats]`
 * (defaults 200 turns, 10 repeats per fixture and setting). Under
 * `deno task bench` it runs once with fewer samples and prints the same
 * figures.
 *
 * @module
 */

import { concat } from "@std/bytes";
import { decodeWav } from "../src/audio/wav.ts";
import type { AgentBot } from "../src/bots/agent/agent.ts";
import type { Bot } from "../src/bots/bot.ts";
import { createAgentBotFactory } from "../src/bots/agent/mod.ts";
import { loadConfig } from "../src/config.ts";
// @ts-types="@types/ws"
import WebSocket from "ws";
import { type RunningServer, startServer } from "../src/server.ts";
import { type AgentFakes, startAgentFakes } from "../tests/fakes/agent_call.ts";
import { textReply } from "../tests/fakes/openai_server.ts";

/** The fake model's wait before its first token, in ms. */
export const LLM_FIRST_TOKEN_MS = 50;

/** Percentiles of a set of samples. */
export interface Percentiles {
  /** Number of samples. */
  count: number;
  /** Median. */
  p50: number;
  /** 95th percentile. */
  p95: number;
  /** Largest. */
  max: number;
}

/** What {@linkcode runAgentBench} measured, in ms. */
export interface AgentBenchReport {
  /** Turn end sent → first media frame received, minus the vendors' latency. */
  overhead: Percentiles;
  /** The same turns by the agent's own timeline: first token → first TTS byte. */
  tokenToTtsByte: Percentiles;
  /** The same turns by the agent's own timeline: first TTS byte → first media frame sent. */
  ttsByteToMedia: Percentiles;
  /** Caller speech onset → `clear`, per barge-in setting. */
  bargeIn: { setting: string; reaction: Percentiles }[];
  /** A backchannel over the bot: its pause's `clear` → its next media frame. */
  backchannel: { silence: Percentiles; resumed: number; calls: number };
}

/** Nearest-rank percentiles of `values`. */
export function percentiles(values: number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? 0;
  return {
    count: sorted.length,
    p50: rank(0.5),
    p95: rank(0.95),
    max: sorted.at(-1) ?? 0,
  };
}

const sleep = (ms: number) =>
  new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A WebSocket client with Nagle's algorithm off (`npm:ws`): with Deno's, a
 * small frame sent after a pause waits for the server's delayed ACK;
 * Exotel's frames do not, and neither may the benchmark's, or that wait
 * would be measured instead of the pipeline.
 */
class NoDelaySocket {
  onText: (text: string) => void = () => {};
  readonly closed: Promise<void>;
  #ws: WebSocket;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.closed = new Promise((resolve) => ws.on("close", () => resolve()));
    ws.on("message", (data, isBinary) => {
      if (!isBinary) this.onText(String(data));
    });
    ws.on("error", () => {
      // Reported by the close that follows.
    });
  }

  static async open(address: string): Promise<NoDelaySocket> {
    const ws = new WebSocket(address);
    const socket = new NoDelaySocket(ws);
    await Promise.race([
      new Promise<void>((resolve) => ws.on("open", () => resolve())),
      socket.closed.then(() => {
        throw new Error(`${address} refused the connection`);
      }),
    ]);
    return socket;
  }

  send(text: string): void {
    this.#ws.send(text);
  }

  async close(): Promise<void> {
    this.#ws.close(1000);
    await this.closed;
  }
}

/** A minimal Exotel at 8 kHz: sends frames when told, reports what comes back. */
export class BenchCaller {
  /** Called with the size of every media frame the bot sends. */
  onMedia: (bytes: number) => void = () => {};
  /** Called with the name of every mark the bot sends. */
  onMark: (name: string) => void = () => {};
  /** Called for every `clear` the bot sends. */
  onClear: () => void = () => {};
  /** Whether marks are echoed at once, as if played. */
  echoMarks = true;
  #socket: NoDelaySocket;
  #streamSid = crypto.randomUUID().replaceAll("-", "");
  #sequence = 0;

  private constructor(socket: NoDelaySocket) {
    this.#socket = socket;
    socket.onText = (text) => this.#receive(text);
  }

  /** Connects to the voicebot socket at `url` and sends `connected` and `start`. */
  static async dial(url: string): Promise<BenchCaller> {
    const caller = new BenchCaller(
      await NoDelaySocket.open(`${url}?sample-rate=8000`),
    );
    caller.#send({ event: "connected" });
    caller.#send({
      event: "start",
      sequence_number: String(++caller.#sequence),
      stream_sid: caller.#streamSid,
      start: {
        stream_sid: caller.#streamSid,
        call_sid: caller.#streamSid,
        account_sid: "bench",
        from: "+910000000000",
        to: "000",
        custom_parameters: {},
        media_format: {
          encoding: "audio/x-raw",
          sample_rate: "8000",
          bit_rate: "16",
        },
      },
    });
    return caller;
  }

  /** Sends caller audio. */
  media(pcm: Uint8Array): void {
    this.#send({
      event: "media",
      sequence_number: String(++this.#sequence),
      stream_sid: this.#streamSid,
      media: { payload: pcm.toBase64() },
    });
  }

  /** Sends `stop` and closes. */
  async hangUp(): Promise<void> {
    this.#send({
      event: "stop",
      sequence_number: String(++this.#sequence),
      stream_sid: this.#streamSid,
      stop: { reason: "callended" },
    });
    await this.#socket.close();
  }

  #send(frame: Record<string, unknown>): void {
    this.#socket.send(JSON.stringify(frame));
  }

  #receive(text: string): void {
    const frame = JSON.parse(text);
    if (frame.event === "media") {
      this.onMedia(Uint8Array.fromBase64(frame.media.payload).length);
    } else if (frame.event === "mark") {
      if (this.echoMarks) {
        this.#send({
          event: "mark",
          sequence_number: String(++this.#sequence),
          stream_sid: this.#streamSid,
          mark: frame.mark,
        });
      }
      this.onMark(frame.mark.name);
    } else if (frame.event === "clear") {
      this.onClear();
    }
  }
}

interface BenchServer extends AsyncDisposable {
  url: string;
  vendors: AgentFakes;
  bots: AgentBot[];
  /** When each caller frame reached the bot, for every call in order. */
  arrivals: number[];
}

async function startBenchServer(
  turns: { text: string; speechStartMs: number; turnMs: number }[],
  env: Record<string, string> = {},
): Promise<BenchServer> {
  const vendors = await startAgentFakes({
    script: { turns },
    env: { LLM_TIMEOUT_MS: "20000", ...env },
  });
  const factory = createAgentBotFactory(vendors.config, {
    providers: vendors.providers,
  });
  const bots: AgentBot[] = [];
  const arrivals: number[] = [];
  const server: RunningServer = await startServer(
    loadConfig({ HOST: "127.0.0.1", PORT: "0", KV_PATH: ":memory:" }),
    {
      createBot: (info, output): Bot => {
        const bot = factory(info, output);
        bots.push(bot);
        // The agent itself, with the arrival of each caller frame noted.
        return {
          start: () => bot.start(),
          audio: (pcm) => {
            arrivals.push(performance.now());
            bot.audio(pcm);
          },
          dtmf: (digit) => bot.dtmf(digit),
          marked: (name) => bot.marked(name),
          stop: () => bot.stop(),
        };
      },
    },
  );
  return {
    url: `ws://127.0.0.1:${server.addr.port}/voicebot/ws`,
    vendors,
    bots,
    arrivals,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await Promise.all(bots.map((bot) => bot.closed));
      await vendors[Symbol.asyncDispose]();
    },
  };
}

/** Resolves on the next call of the callback it installs. */
function next<T>(install: (resolve: (value: T) => void) => void): Promise<T> {
  return new Promise((resolve) => install(resolve));
}

const FRAME_BYTES = 320;
const SILENT_FRAME = new Uint8Array(FRAME_BYTES);

async function measureOverhead(
  turns: number,
): Promise<
  Pick<AgentBenchReport, "overhead" | "tokenToTtsByte" | "ttsByteToMedia">
> {
  const warmup = 10;
  const frames = 10;
  await using bench = await startBenchServer(
    Array.from({ length: turns + warmup }, () => ({
      text: "Hello there.",
      speechStartMs: 60,
      turnMs: frames * 20,
    })),
  );
  for (let i = 0; i < turns + warmup; i++) {
    // "Okay." is 100 ms of the fake voice: one media frame per answer.
    bench.vendors.llm.enqueue(
      textReply(["Okay."], { firstDelayMs: LLM_FIRST_TOKEN_MS }),
    );
  }
  const caller = await BenchCaller.dial(bench.url);
  await next<string>((resolve) => caller.onMark = resolve);
  const overhead: number[] = [];
  const tokenToTtsByte: number[] = [];
  const ttsByteToMedia: number[] = [];
  let answered = 0;
  const done = next<void>((resolve) => {
    caller.onMedia = () => {
      const receivedAt = performance.now();
      const turn = answered++;
      if (turn >= warmup) {
        const turnEnd = bench.arrivals[(turn + 1) * frames - 1];
        overhead.push(receivedAt - turnEnd - LLM_FIRST_TOKEN_MS);
        const timeline = bench.bots[0].timeline().at(-1);
        const tokenToByte = timeline?.firstTokenToFirstTtsByteMs;
        const byteToMedia = timeline?.firstTtsByteToFirstMediaMs;
        if (tokenToByte !== undefined) tokenToTtsByte.push(tokenToByte);
        if (byteToMedia !== undefined) ttsByteToMedia.push(byteToMedia);
      }
      if (answered === turns + warmup) resolve();
    };
  });
  // Caller audio goes out every 20 ms without a break, as Exotel sends it.
  // The turn ends when its last frame reaches the bot, not when it is sent:
  // Deno's WebSocket client holds small frames back (Nagle's algorithm)
  // until the server's delayed ACK, which would be measured instead.
  const t0 = performance.now();
  let finished = false;
  done.then(() => finished = true);
  for (let n = 0; !finished; n++) {
    const wait = t0 + n * 20 - performance.now();
    if (wait > 0) await sleep(wait);
    caller.media(SILENT_FRAME);
  }
  await caller.hangUp();
  return {
    overhead: percentiles(overhead),
    tokenToTtsByte: percentiles(tokenToTtsByte),
    ttsByteToMedia: percentiles(ttsByteToMedia),
  };
}

/** Where the speech in `pcm` (8 kHz) starts: its first sample above ±64. */
function onsetMs(pcm: Uint8Array): number {
  const samples = new Int16Array(pcm.slice().buffer);
  const first = samples.findIndex((sample) => Math.abs(sample) > 64);
  return first / 8;
}

const LONG_ANSWER = [
  "Our clinic is open from nine in the morning until six in the evening on weekdays.",
  " On Saturdays we close at one in the afternoon, and on Sundays we stay closed.",
  " Doctor Rao sees patients on Mondays and Thursdays, and Doctor Iyer on the other days.",
];

/** A bench server whose bot is in the middle of a long answer, for each call dialled. */
async function startTalkingBot(
  env: Record<string, string>,
): Promise<BenchServer & { dial(): Promise<BenchCaller> }> {
  const bench = await startBenchServer([
    { text: "Tell me about the clinic.", speechStartMs: 100, turnMs: 400 },
    // The transcript of what the caller says over the bot comes too late
    // to matter: the voice guard alone is measured.
    { text: "Wait.", speechStartMs: 20_000, turnMs: 30_000 },
  ], env);
  return Object.assign(bench, {
    async dial(): Promise<BenchCaller> {
      bench.vendors.llm.enqueue(textReply(LONG_ANSWER));
      const caller = await BenchCaller.dial(bench.url);
      await next<string>((resolve) => caller.onMark = resolve);
      caller.echoMarks = false;
      const answering = next<void>((resolve) =>
        caller.onMedia = () => resolve()
      );
      for (let f = 0; f < 20; f++) caller.media(SILENT_FRAME);
      await answering;
      caller.onMedia = () => {};
      await sleep(300);
      return caller;
    },
  });
}

/**
 * Sends `speech` in real time, 20 ms frames each sent when it starts (as the
 * simulator does), until `done` says to stop; returns when it started.
 */
async function speak(
  caller: BenchCaller,
  speech: Uint8Array,
  done: () => boolean = () => false,
): Promise<number> {
  const startedAt = performance.now();
  for (let at = 0; at < speech.length && !done(); at += FRAME_BYTES) {
    const wait = startedAt + at / 16 - performance.now();
    if (wait > 0) await sleep(wait);
    caller.media(speech.subarray(at, at + FRAME_BYTES));
  }
  return startedAt;
}

async function measureBargeIn(
  env: Record<string, string>,
  repeats: number,
  fixtures: Uint8Array[],
): Promise<Percentiles> {
  await using bench = await startTalkingBot(env);
  const reactions: number[] = [];
  for (let i = 0; i < repeats; i++) {
    for (const speech of fixtures) {
      const caller = await bench.dial();
      let clearedAt: number | undefined;
      caller.onClear = () => clearedAt ??= performance.now();
      const startedAt = await speak(
        caller,
        speech,
        () => clearedAt !== undefined,
      );
      if (clearedAt !== undefined) {
        reactions.push(clearedAt - (startedAt + onsetMs(speech)));
      }
      await caller.hangUp();
    }
  }
  return percentiles(reactions);
}

async function measureBackchannel(
  repeats: number,
  backchannel: Uint8Array,
): Promise<AgentBenchReport["backchannel"]> {
  await using bench = await startTalkingBot({});
  const silences: number[] = [];
  let resumed = 0;
  for (let i = 0; i < repeats; i++) {
    const caller = await bench.dial();
    let clearedAt: number | undefined;
    let resumedAt: number | undefined;
    caller.onClear = () => clearedAt ??= performance.now();
    caller.onMedia = () => {
      if (clearedAt !== undefined) resumedAt ??= performance.now();
    };
    // The backchannel, then up to 3 s of silence for the bot to resume in.
    await speak(
      caller,
      concat([backchannel, new Uint8Array(3 * 16_000)]),
      () => resumedAt !== undefined,
    );
    if (clearedAt !== undefined && resumedAt !== undefined) {
      silences.push(resumedAt - clearedAt);
      resumed++;
    }
    await caller.hangUp();
  }
  return { silence: percentiles(silences), resumed, calls: repeats };
}

/** Runs both measurements. */
export async function runAgentBench(
  options: { turns: number; repeats: number },
): Promise<AgentBenchReport> {
  const fixtures = await Promise.all(
    ["hello_8000.wav", "question_8000.wav"].map(async (name) =>
      decodeWav(
        await Deno.readFile(
          new URL(`../tests/fixtures/audio/${name}`, import.meta.url),
        ),
      ).pcm
    ),
  );
  const pipeline = await measureOverhead(options.turns);
  const settings: [string, Record<string, string>][] = [
    ["defaults: pause on 100 ms of voice", {}],
    ["AGENT_BARGE_IN_PAUSE_MS=0: the 400 ms guard alone", {
      AGENT_BARGE_IN_PAUSE_MS: "0",
    }],
  ];
  const bargeIn = [];
  for (const [setting, env] of settings) {
    bargeIn.push({
      setting,
      reaction: await measureBargeIn(env, options.repeats, fixtures),
    });
  }
  const backchannel = decodeWav(
    await Deno.readFile(
      new URL("../tests/fixtures/audio/backchannel_8000.wav", import.meta.url),
    ),
  ).pcm;
  return {
    ...pipeline,
    bargeIn,
    backchannel: await measureBackchannel(
      options.repeats * fixtures.length,
      backchannel,
    ),
  };
}

function format(p: Percentiles): string {
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  return `p50 ${ms(p.p50)}, p95 ${ms(p.p95)}, max ${ms(p.max)} (n=${p.count})`;
}

/** Prints the figures. */
export function printAgentBench(report: AgentBenchReport): void {
  const lines = [
    `agent pipeline overhead, turn end → first media frame, minus the vendors' ${LLM_FIRST_TOKEN_MS} ms: ${
      format(report.overhead)
    }`,
    `  of which first token → first TTS byte (TTS request on loopback): ${
      format(report.tokenToTtsByte)
    }`,
    `  of which first TTS byte → first media frame sent: ${
      format(report.ttsByteToMedia)
    }`,
    ...report.bargeIn.map(({ setting, reaction }) =>
      `barge-in reaction, speech onset → clear (${setting}): ${
        format(reaction)
      }`
    ),
    `backchannel over the bot, silent from its pause to its resumption: ${
      format(report.backchannel.silence)
    }; resumed ${report.backchannel.resumed} of ${report.backchannel.calls}`,
  ];
  // A benchmark's output is its result.
  // deno-lint-ignore no-console
  console.log(lines.join("\n"));
}

if (import.meta.main) {
  const [turns, repeats] = Deno.args.map(Number);
  printAgentBench(
    await runAgentBench({ turns: turns || 200, repeats: repeats || 10 }),
  );
} else {
  // `deno bench` calls the function three times even with n: 1 and no
  // warm-up; one run of the figures is enough.
  let ran = false;
  Deno.bench({
    name:
      "agent: pipeline overhead and barge-in reaction (figures printed above the table)",
    n: 1,
    warmup: 0,
    async fn() {
      if (ran) return;
      ran = true;
      printAgentBench(await runAgentBench({ turns: 100, repeats: 2 }));
    },
  });
}
