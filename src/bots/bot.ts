/**
 * The contract between a call and the bot that talks on it.
 *
 * A bot is created per call once Exotel's `start` arrives. It hears the caller
 * through {@linkcode Bot.audio} and speaks through a {@linkcode CallOutput}.
 *
 * @module
 */

import type { SampleRate } from "../audio/pcm.ts";
import type { TranscriptEntry, TurnTiming } from "../records/call_record.ts";

/** What a bot knows about its call. */
export interface CallInfo {
  /** Our id for the call: Exotel's CallSid when known. */
  callId: string;
  /** Exotel's id for the stream; every outbound frame carries it. */
  streamSid: string;
  /** The Exotel account. */
  accountSid: string;
  /** The caller's number. */
  from: string;
  /** The number called. */
  to: string;
  /** Parameters from the applet URL. */
  customParameters: Record<string, string>;
  /** The rate of the caller's audio and of every byte the bot plays. */
  sampleRate: SampleRate;
}

/** How an utterance given to {@linkcode CallOutput.play} ended. */
export interface Playback {
  /** `played`: Exotel confirmed it with the mark; `cleared`: cut by a clear; `stopped`: the call ended first. */
  status: "played" | "cleared" | "stopped";
  /** The mark sent after the utterance. */
  mark: string;
  /** Bytes of PCM handed to Exotel, including padding. */
  sentBytes: number;
  /** How much of it the caller heard, estimated from what was sent and when. */
  heardMs: number;
}

/** Audio to play: all at once, or as it is produced (a TTS stream). */
export type Audio = Uint8Array | AsyncIterable<Uint8Array>;

/** Options of {@linkcode CallOutput.play}. */
export interface PlayOptions {
  /** The name of the mark sent after the audio; generated when absent. */
  mark?: string;
  /**
   * Whether {@linkcode CallOutput.resume} may send again what a pause took
   * back (default true). That keeps each chunk until it has started playing;
   * an endless stream that is never paused, such as the echo, saves that.
   * Without it a pause takes nothing back (no `clear`), and a playback that
   * is cleared counts all it sent as heard.
   */
  resumable?: boolean;
}

/** How a bot speaks and controls the call. */
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
}

/** What a bot adds to the call's record when the call ends. */
export interface BotReport {
  /** Caller and bot turns, bot turns with what the caller actually heard. */
  transcript: TranscriptEntry[];
  /** Per-turn latency timelines. */
  turns: TurnTiming[];
}

/** What a bot is doing at this moment, for the console's live view. */
export interface BotLiveState {
  /** Hearing the caller, waiting on its models, talking, or paused over the caller's voice. */
  activity: "listening" | "thinking" | "speaking" | "paused";
  /** The caller's words heard in the current turn and not answered yet. */
  partial: string;
}

/** A conversation partner for one call. Every hook may be async; errors are logged, never fatal to the server. */
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
  /** The transcript and timings for the call record; read once, just before `stop`. */
  report?(): BotReport;
  /** What it is doing now; read by monitoring only while someone watches. */
  live?(): BotLiveState;
}

/** Creates a bot for a call. */
export type BotFactory = (info: CallInfo, output: CallOutput) => Bot;
