/**
 * Paced playout of a bot's audio to Exotel: chunks of a multiple of 320 bytes,
 * sent at real time with a small lead queued at Exotel, a mark after every
 * utterance, `clear` for barge-in, and socket backpressure.
 *
 * I/O-free: it is given a `send` function, the socket's `bufferedAmount` and
 * a {@linkcode Clock}.
 *
 * @module
 */

import { Chunker, durationMs, type SampleRate } from "../audio/pcm.ts";
import { encodeClear, encodeMark, encodeMedia } from "../exotel/protocol.ts";
import type { Audio, Playback } from "../bots/bot.ts";
import type { Cancel, Clock } from "./clock.ts";

/** Counters a player keeps for monitoring. */
export interface PlayoutCounters {
  /** Media frames sent. */
  framesOut: number;
  /** PCM bytes sent, padding included. */
  bytesOut: number;
  /** Marks sent. */
  marksSent: number;
  /** Marks Exotel echoed back. */
  marksAcknowledged: number;
  /** `clear` frames sent. */
  clears: number;
  /** Times Exotel's queue ran dry in the middle of an utterance. */
  underruns: number;
}

/** Creates zeroed {@linkcode PlayoutCounters}. */
export function createPlayoutCounters(): PlayoutCounters {
  return {
    framesOut: 0,
    bytesOut: 0,
    marksSent: 0,
    marksAcknowledged: 0,
    clears: 0,
    underruns: 0,
  };
}

/** Settings of a {@linkcode Player}. */
export interface PlayerOptions {
  /** The stream every frame is addressed to. */
  streamSid: string;
  /** The call's rate: all durations derive from it. */
  sampleRate: SampleRate;
  /** Size of every chunk but an utterance's last (a valid chunk size). */
  chunkBytes: number;
  /** How much audio, in ms, to keep queued at Exotel ahead of playback. */
  leadMs: number;
  /** Stop sending while the socket has more than this many bytes unsent. */
  maxBufferedBytes: number;
  /** Sends a text frame. */
  send(text: string): void;
  /** The socket's unsent bytes. */
  bufferedAmount(): number;
  /** Time and timers. */
  clock: Clock;
  /** Counters to update; fresh ones when absent. */
  counters?: PlayoutCounters;
  /** Sees every chunk as it is sent, e.g. to record the bot's side of the call. */
  onChunk?(chunk: Uint8Array): void;
}

/** How often to look at `bufferedAmount` again while the socket is backed up. */
const BACKPRESSURE_POLL_MS = 20;

interface Utterance {
  audio: Audio;
  mark: string;
  resolve(playback: Playback): void;
  sentBytes: number;
  /** When Exotel starts (or started) playing its first chunk, by our estimate. */
  startsAt?: number;
}

/**
 * Plays utterances one after another on one call.
 *
 * @example
 * ```ts ignore
 * const player = new Player({ streamSid, sampleRate: 8000, chunkBytes: 3200, leadMs: 400,
 *   maxBufferedBytes: 65536, send: (t) => socket.send(t), bufferedAmount: () => socket.bufferedAmount,
 *   clock: systemClock });
 * const playback = await player.play(pcm); // resolves when Exotel echoes the mark
 * ```
 */
export class Player {
  /** Counters for monitoring. */
  readonly counters: PlayoutCounters;
  #options: PlayerOptions;
  #queue: Utterance[] = [];
  #awaitingMark: Utterance[] = [];
  #nextMark = 1;
  /** When Exotel will have played everything sent so far, by our estimate. */
  #playheadEnd = 0;
  /** Bumped by clear and stop so that a pump still awaiting finds it is stale. */
  #generation = 0;
  #pumping = false;
  #stopped = false;
  #wake?: () => void;
  #cancelSleep?: Cancel;
  #source?: AsyncIterator<Uint8Array>;

  /** Creates a player for one call. */
  constructor(options: PlayerOptions) {
    this.#options = options;
    this.counters = options.counters ?? createPlayoutCounters();
  }

  /** Milliseconds of sent audio Exotel has not played yet, by our estimate. */
  get queuedMs(): number {
    return Math.max(0, this.#playheadEnd - this.#options.clock.now());
  }

  /** True while anything is queued, being sent, or sent but not confirmed by its mark. */
  get isBusy(): boolean {
    return this.#queue.length > 0 || this.#awaitingMark.length > 0;
  }

  /** Queues `audio` after what is already queued; see {@linkcode CallOutput.play}. */
  play(audio: Audio, options: { mark?: string } = {}): Promise<Playback> {
    const mark = options.mark ?? `utt-${this.#nextMark++}`;
    if (this.#stopped) {
      return Promise.resolve({
        status: "stopped",
        mark,
        sentBytes: 0,
        heardMs: 0,
      });
    }
    return new Promise((resolve) => {
      this.#queue.push({ audio, mark, resolve, sentBytes: 0 });
      if (!this.#pumping) this.#pump(this.#generation);
    });
  }

  /**
   * Exotel echoed mark `name`: that utterance, and any before it, has played.
   * Returns false for a name we are not waiting for.
   */
  acknowledge(name: string): boolean {
    const index = this.#awaitingMark.findIndex((utterance) =>
      utterance.mark === name
    );
    if (index === -1) return false;
    this.counters.marksAcknowledged++;
    for (const utterance of this.#awaitingMark.splice(0, index + 1)) {
      utterance.resolve(this.#playback(utterance, "played"));
    }
    return true;
  }

  /**
   * Barge-in: drops every queued and unconfirmed utterance and, when Exotel
   * may still have audio of ours queued, sends `clear`. Returns whether it did.
   */
  clear(): boolean {
    if (this.#stopped) return false;
    const playing = this.isBusy || this.queuedMs > 0;
    this.#abandon("cleared");
    if (!playing) return false;
    this.#playheadEnd = 0;
    this.#options.send(encodeClear(this.#options.streamSid));
    this.counters.clears++;
    return true;
  }

  /** The call ended: drops everything, sends nothing more. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#abandon("stopped");
  }

  #abandon(status: "cleared" | "stopped"): void {
    this.#generation++;
    this.#pumping = false;
    const dropped = [...this.#awaitingMark, ...this.#queue];
    this.#awaitingMark = [];
    this.#queue = [];
    for (const utterance of dropped) {
      utterance.resolve(this.#playback(utterance, status));
    }
    this.#cancelSleep?.();
    this.#wake?.();
    this.#source?.return?.().catch(() => {});
    this.#source = undefined;
  }

  #playback(utterance: Utterance, status: Playback["status"]): Playback {
    const sentMs = durationMs(utterance.sentBytes, this.#options.sampleRate);
    const heardMs = status === "played"
      ? sentMs
      : utterance.startsAt === undefined
      ? 0
      : Math.min(
        sentMs,
        Math.max(0, this.#options.clock.now() - utterance.startsAt),
      );
    return {
      status,
      mark: utterance.mark,
      sentBytes: utterance.sentBytes,
      heardMs,
    };
  }

  async #pump(generation: number): Promise<void> {
    this.#pumping = true;
    while (generation === this.#generation && this.#queue.length > 0) {
      const utterance = this.#queue[0];
      const finished = await this.#sendUtterance(utterance, generation);
      if (!finished || generation !== this.#generation) return;
      this.#queue.shift();
      this.#options.send(encodeMark(this.#options.streamSid, utterance.mark));
      this.counters.marksSent++;
      this.#awaitingMark.push(utterance);
    }
    if (generation === this.#generation) this.#pumping = false;
  }

  /** Sends all of one utterance's audio; false when cleared or stopped meanwhile. */
  async #sendUtterance(
    utterance: Utterance,
    generation: number,
  ): Promise<boolean> {
    const chunker = new Chunker(this.#options.chunkBytes);
    const { audio } = utterance;
    if (audio instanceof Uint8Array) {
      for (const chunk of chunker.push(audio)) {
        if (!await this.#sendChunk(utterance, chunk, generation)) return false;
      }
    } else {
      const source = audio[Symbol.asyncIterator]();
      this.#source = source;
      try {
        while (true) {
          const next = await source.next();
          if (generation !== this.#generation) return false;
          if (next.done) break;
          for (const chunk of chunker.push(next.value)) {
            if (!await this.#sendChunk(utterance, chunk, generation)) {
              return false;
            }
          }
        }
      } finally {
        if (this.#source === source) this.#source = undefined;
      }
    }
    const last = chunker.flush();
    return last ? await this.#sendChunk(utterance, last, generation) : true;
  }

  async #sendChunk(
    utterance: Utterance,
    chunk: Uint8Array,
    generation: number,
  ): Promise<boolean> {
    const { clock, leadMs, sampleRate, maxBufferedBytes } = this.#options;
    const chunkMs = durationMs(chunk.length, sampleRate);
    while (true) {
      if (generation !== this.#generation) return false;
      const ahead = this.#playheadEnd - clock.now();
      if (this.#options.bufferedAmount() > maxBufferedBytes) {
        await this.#sleep(BACKPRESSURE_POLL_MS);
      } else if (ahead > 0 && ahead + chunkMs > leadMs) {
        await this.#sleep(
          Math.max(1, Math.min(ahead, ahead + chunkMs - leadMs)),
        );
      } else {
        break;
      }
    }
    const now = clock.now();
    if (utterance.sentBytes > 0 && this.#playheadEnd < now) {
      this.counters.underruns++;
    }
    const startsAt = Math.max(now, this.#playheadEnd);
    utterance.startsAt ??= startsAt;
    this.#playheadEnd = startsAt + chunkMs;
    this.#options.send(encodeMedia(this.#options.streamSid, chunk));
    this.#options.onChunk?.(chunk);
    utterance.sentBytes += chunk.length;
    this.counters.framesOut++;
    this.counters.bytesOut += chunk.length;
    return true;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#cancelSleep = this.#options.clock.schedule(() => {
        this.#wake = undefined;
        this.#cancelSleep = undefined;
        resolve();
      }, ms);
    });
  }
}
