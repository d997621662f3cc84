/**
 * The contract between a call and the bot that talks on it.
 *
 * A bot is created per call once Exotel's `start` arrives, by a
 * {@linkcode BotFactory} given the call's {@linkcode CallInfo} and a
 * {@linkcode CallOutput}. It hears the caller through {@linkcode Bot.audio}
 * and {@linkcode Bot.dtmf} and speaks through the output. Audio both ways is
 * 16-bit little-endian mono PCM at the call's sample rate.
 *
 * @module
 */

import type { SampleRate } from "../audio/pcm.ts";
import type { CallSnapshot } from "./call_snapshot.ts";
import type { Audio, Playback, PlayOptions } from "./playback.ts";
import type { BotLiveState, BotReport } from "./bot_report.ts";

/**
 * What a bot knows about its call, from Exotel's `start` event: the part of
 * the call's {@linkcode CallSnapshot} a bot is given. Bots always
 * hear and play 16-bit PCM at {@linkcode CallInfo.sampleRate}, whatever the
 * wire carries: the call decodes and encodes μ-law for them.
 *
 * @example Greet by the number called, and pick a language from the URL
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const info: CallInfo = {
 *   callId: "CA123",
 *   streamSid: "ST1",
 *   accountSid: "exotel",
 *   from: "+919800000001",
 *   to: "08012345678",
 *   customParameters: { lang: "hi" },
 *   sampleRate: 8000,
 * };
 * const language = info.customParameters.lang ?? "en";
 * assertEquals(language, "hi");
 * ```
 */
export type CallInfo = Pick<
  CallSnapshot,
  | "callId"
  | "streamSid"
  | "accountSid"
  | "from"
  | "to"
  | "customParameters"
  | "sampleRate"
  | "agent"
>;

/**
 * How a bot speaks and controls the call. Everything played is queued in
 * order, sent in Exotel-sized chunks paced at real time, and followed by a
 * mark, so {@linkcode CallOutput.play} resolves when the caller has heard it.
 *
 * @example Play a beep, then hang up once Exotel has played it
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * async function beepAndHangUp(output: CallOutput, sampleRate: number) {
 *   const samples = sampleRate / 5; // 200 ms
 *   const pcm = new Int16Array(samples).map((_, i) =>
 *     Math.round(8000 * Math.sin((2 * Math.PI * 1000 * i) / sampleRate))
 *   );
 *   const playback = await output.play(new Uint8Array(pcm.buffer));
 *   output.hangup(playback.status === "played" ? "done" : "interrupted");
 * }
 *
 * const calls: string[] = [];
 * await beepAndHangUp({
 *   play: (audio) => {
 *     calls.push("play");
 *     return Promise.resolve({ status: "played", mark: "m1", sentBytes: 3200, heardMs: 200 });
 *   },
 *   clear: () => calls.push("clear"),
 *   pause: () => calls.push("pause"),
 *   resume: () => calls.push("resume"),
 *   hangup: (reason) => calls.push(`hangup:${reason}`),
 *   dropped: () => calls.push("dropped"),
 * }, 8000);
 * assertEquals(calls, ["play", "hangup:done"]);
 * ```
 */
export interface CallOutput {
  /**
   * Queues `audio` (16-bit PCM at the call's rate) after anything already
   * queued. Resolves when Exotel has played all of it, or it was cleared or
   * the call ended.
   */
  play(audio: Audio, options?: PlayOptions): Promise<Playback>;
  /** Barge-in: drops everything not yet played and tells Exotel to do the same. */
  clear(): void;
  /**
   * The caller may be interrupting: silences the bot at once (Exotel drops
   * what it has queued) but keeps the audio, for {@linkcode CallOutput.resume}
   * or {@linkcode CallOutput.clear}. Audio played meanwhile waits.
   */
  pause(): void;
  /** It was not an interruption: goes on from where the caller stopped hearing. */
  resume(): void;
  /** Ends the stream; Exotel's flow moves on to its next applet or hangs up. */
  hangup(reason?: string): void;
  /**
   * Reports `bytes` of PCM the bot threw away unplayed because they fell too
   * far behind (such as the echo's backlog beyond its bound): counted in
   * `/metrics` (`exovoice_playout_dropped_bytes_total`), logged once per call.
   */
  dropped(bytes: number): void;
  /**
   * Calls `listener` with every chunk of the bot's audio as it is sent to
   * Exotel, and the clock time Exotel will start playing it; `undefined`
   * stops. What a bot needs to tell its own voice coming back in the
   * caller's audio from the caller. Outputs that cannot tell leave it out.
   */
  onSent?(
    listener: ((pcm: Uint8Array, startsAt: number) => void) | undefined,
  ): void;
}

/**
 * A conversation partner for one call. Every hook may be async; errors are
 * logged, never fatal to the server. Hooks run on the call's frame path: a
 * hook that blocks delays the call, so do slow work without awaiting it in
 * {@linkcode Bot.audio}.
 *
 * @example A bot that reads back each digit pressed as beeps and hangs up on `#`
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const beeps: BotFactory = (info, output): Bot => {
 *   const beep = (ms: number) =>
 *     new Uint8Array(new Int16Array(info.sampleRate * ms / 1000).map((_, i) =>
 *       i % 16 < 8 ? 4000 : -4000
 *     ).buffer);
 *   return {
 *     audio() {}, // this bot does not listen
 *     dtmf(digit) {
 *       if (digit === "#") return output.hangup("caller_done");
 *       for (let n = Number(digit) || 1; n > 0; n--) void output.play(beep(100));
 *     },
 *     stop() {},
 *   };
 * };
 *
 * const played: number[] = [];
 * let ended = "";
 * const bot = beeps(
 *   { callId: "CA1", streamSid: "ST1", accountSid: "a", from: "1", to: "2", customParameters: {}, sampleRate: 8000 },
 *   {
 *     play: (audio) => {
 *       played.push((audio as Uint8Array).length);
 *       return Promise.resolve({ status: "played", mark: "m", sentBytes: 1600, heardMs: 100 });
 *     },
 *     clear() {},
 *     pause() {},
 *     resume() {},
 *     hangup: (reason) => void (ended = reason ?? ""),
 *     dropped() {},
 *   },
 * );
 * bot.dtmf?.("3");
 * bot.dtmf?.("#");
 * assertEquals(played, [1600, 1600, 1600]); // three 100 ms beeps for "3"
 * assertEquals(ended, "caller_done");
 * ```
 */
export interface Bot {
  /** Called once, right after `start`, before any audio. */
  start?(): void | Promise<void>;
  /** Caller audio, as it arrives, in any size. */
  audio(pcm: Uint8Array): void;
  /** A DTMF digit pressed by the caller (`0-9`, `*`, `#`, `A-D`). */
  dtmf?(digit: string): void;
  /** Exotel echoed a mark we sent: the audio before it has been played. */
  marked?(name: string): void;
  /** The call is over; release everything. */
  stop(): void | Promise<void>;
  /** The transcript and timings for the call record; read just before `stop`, and again once `stop` settles (the call record uses the later one). */
  report?(): BotReport;
  /** What it is doing now; read by monitoring only while someone watches. */
  live?(): BotLiveState;
}

/**
 * Creates a bot for a call; called once per call, right after `start`. Give
 * one to `serve({ bot })` (see `mod.ts`) to answer calls with it.
 */
export type BotFactory = (info: CallInfo, output: CallOutput) => Bot;

/** What is known of a call at Exotel's `connected` event, before `start`: what the socket URL said. */
export interface ConnectedCall {
  /** The rate the socket URL asked for (`sample-rate`); `start` may still say otherwise. */
  sampleRate: SampleRate;
  /** The agent the socket URL named (`agent=`), if it named one. */
  agent?: string;
}

/** What a {@linkcode PreparingBotFactory} readied for one call at `connected`. */
export interface BotPreparation {
  /** Creates the call's bot at `start`, with what was readied. */
  create(info: CallInfo, output: CallOutput): Bot;
  /** The call ended before `start`: releases what was readied. */
  cancel(): void;
}

/**
 * A {@linkcode BotFactory} that gets ready for a call as soon as Exotel
 * says `connected`, before `start` (the agent opens speech-to-text then, so
 * it is ready when the caller's audio arrives).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const silent: BotFactory = () => ({ audio() {}, stop() {} });
 * let readied = 0;
 * const factory: PreparingBotFactory = Object.assign(
 *   (info: CallInfo, output: CallOutput) => silent(info, output),
 *   {
 *     connected: (_call: ConnectedCall): BotPreparation => {
 *       readied++;
 *       return { create: silent, cancel() {} };
 *     },
 *   },
 * );
 * factory.connected({ sampleRate: 8000 }).create(
 *   { callId: "CA1", streamSid: "ST1", accountSid: "a", from: "1", to: "2", customParameters: {}, sampleRate: 8000 },
 *   { play: () => Promise.resolve({ status: "played", mark: "m", sentBytes: 0, heardMs: 0 }), clear() {}, pause() {}, resume() {}, hangup() {}, dropped() {} },
 * );
 * assertEquals(readied, 1);
 * ```
 */
export type PreparingBotFactory = BotFactory & {
  /** Readies what the call's bot will need; the call hands it to the bot at `start`, or cancels it. */
  connected(call: ConnectedCall): BotPreparation;
};
