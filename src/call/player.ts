/**
 * Paced playout of a bot's audio to Exotel: chunks of a multiple of 320 bytes,
 * sent at real time with a small lead queued at Exotel, a mark after every
 * utterance, `clear` for barge-in, pause and resume for speech that may turn
 * out not to be one, and socket backpressure.
 *
 * One input path: every utterance, whatever its audio, is read as a
 * {@linkcode PcmSource} by one synchronous loop, {@linkcode Player}'s
 * `#drain`, that runs whenever something may have changed (new audio, a
 * timer, a resume) and stops where it must wait. Nothing else sends media.
 *
 * I/O-free: it is given a `send` function, the socket's `bufferedAmount` and
 * a {@linkcode Clock}.
 *
 * @module
 */

import {
  bytesForMs,
  Chunker,
  durationMs,
  type SampleRate,
} from "../audio/pcm.ts";
import {
  isPcmSource,
  type PcmSource,
  toPcmSource,
} from "../audio/pcm_source.ts";
import { encodeClear, encodeMark, encodeMedia } from "../exotel/protocol.ts";
import type { Audio, Playback, PlayOptions } from "./playback.ts";
import type { Cancel, Clock } from "./clock.ts";

/** Audio of a stream that is sent without waiting for a whole chunk, in ms. */
const FIRST_CHUNK_MS = 100;

/** Counters a player keeps for monitoring. */
export interface PlayoutCounters {
  /** Media frames sent. */
  framesOut: number;
  /** Audio bytes sent as on the wire (PCM or μ-law), padding included. */
  bytesOut: number;
  /** Marks sent. */
  marksSent: number;
  /** Marks Exotel echoed back. */
  marksAcknowledged: number;
  /** `clear` frames sent. */
  clears: number;
  /** Times Exotel's queue ran dry in the middle of an utterance. */
  underruns: number;
  /**
   * Bot audio (PCM bytes) dropped unplayed because it fell too far behind,
   * such as caller audio beyond the echo's backlog bound.
   */
  droppedBytes: number;
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
    droppedBytes: 0,
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
  /**
   * Sees every chunk as it is sent, with when Exotel will start playing it
   * (clock ms): to record the bot's side of the call, or to know its echo.
   */
  onChunk?(chunk: Uint8Array, startsAt: number): void;
  /**
   * Turns each PCM chunk into the wire's coding just before it is sent
   * (μ-law: `encodeMulaw` from `audio/mulaw.ts`); absent, chunks go out
   * as PCM. Chosen once per call, so PCM calls pay nothing for it.
   */
  encode?(pcm: Uint8Array): Uint8Array;
  /**
   * Hears of audio given as an async iterable that threw: the utterance
   * ends with what it had, marked as usual, and the player goes on.
   */
  onError?(error: unknown): void;
}

/** How often to look at `bufferedAmount` again while the socket is backed up. */
const BACKPRESSURE_POLL_MS = 20;

interface Utterance {
  audio: Audio;
  mark: string;
  /** The name the mark went out under: renamed when re-sent after a pause. */
  wireMark: string;
  /** Whether its sent chunks are kept until they start playing, for resume. */
  resumable: boolean;
  resolve(playback: Playback): void;
  /** Bytes sent and not taken back by a pause. */
  sentBytes: number;
}

/** The utterance being sent: its audio as a source, cut into chunks. */
interface Playing {
  utterance: Utterance;
  source: PcmSource;
  chunker: Chunker;
  /** Chunks cut from the last piece read; those from `next` on are unsent. */
  chunks: Uint8Array[];
  next: number;
}

/** A chunk sent to Exotel that, by our estimate, has not started playing. */
interface SentChunk {
  utterance: Utterance;
  chunk: Uint8Array;
  startsAt: number;
}

const NO_CHUNKS: Uint8Array[] = [];

/**
 * Plays utterances one after another on one call.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { systemClock } from "./clock.ts";
 *
 * const frames: string[] = [];
 * const player = new Player({
 *   streamSid: "S1",
 *   sampleRate: 8000,
 *   chunkBytes: 3200,
 *   leadMs: 400,
 *   maxBufferedBytes: 65536,
 *   send: (text) => frames.push(JSON.parse(text).event),
 *   bufferedAmount: () => 0,
 *   clock: systemClock,
 * });
 * const playback = player.play(new Uint8Array(3200), { mark: "hello" });
 * assertEquals(frames, ["media", "mark"]);
 * player.acknowledge("hello"); // Exotel echoed the mark: it has played
 * assertEquals((await playback).status, "played");
 * player.stop();
 * ```
 */
export class Player {
  /** Counters for monitoring. */
  readonly counters: PlayoutCounters;
  #options: PlayerOptions;
  /** Utterances waiting for the one playing. */
  #queue: Utterance[] = [];
  #playing?: Playing;
  #awaitingMark: Utterance[] = [];
  #nextMark = 1;
  /** When Exotel will have played everything sent so far, by our estimate. */
  #playheadEnd = 0;
  #stopped = false;
  /** Set while `#drain` runs, so that a callback it makes cannot run it twice. */
  #draining = false;
  /** The timer that runs `#drain` once pacing or backpressure allows. */
  #cancelTimer?: Cancel;
  /** Sent chunks that may not have started playing, oldest first. */
  #unplayed: SentChunk[] = [];
  /** While paused: the chunks a `clear` took back from Exotel, to send again on resume. */
  #held: SentChunk[] | undefined;
  #markResends = 0;
  /** Sends one chunk as a media frame; returns the bytes on the wire. */
  #sendMedia: (chunk: Uint8Array) => number;
  /** `#drain`, bound once: given to every source as its listener. */
  #wake = () => this.#drain();
  #timerFired = () => {
    this.#cancelTimer = undefined;
    this.#drain();
  };

  /** Creates a player for one call. */
  constructor(options: PlayerOptions) {
    this.#options = options;
    this.counters = options.counters ?? createPlayoutCounters();
    const { send, streamSid, encode } = options;
    this.#sendMedia = encode
      ? (chunk) => {
        const wire = encode(chunk);
        send(encodeMedia(streamSid, wire));
        return wire.length;
      }
      : (chunk) => {
        send(encodeMedia(streamSid, chunk));
        return chunk.length;
      };
  }

  /** Milliseconds of sent audio Exotel has not played yet, by our estimate. */
  get queuedMs(): number {
    return Math.max(0, this.#playheadEnd - this.#options.clock.now());
  }

  /** True while anything is queued, being sent, or sent but not confirmed by its mark. */
  get isBusy(): boolean {
    return this.#playing !== undefined || this.#queue.length > 0 ||
      this.#awaitingMark.length > 0;
  }

  /** True between {@linkcode Player.pause} and {@linkcode Player.resume} or {@linkcode Player.clear}. */
  get isPaused(): boolean {
    return this.#held !== undefined;
  }

  /** Queues `audio` after what is already queued; see {@linkcode CallOutput.play}. */
  play(audio: Audio, options: PlayOptions = {}): Promise<Playback> {
    const mark = options.mark ?? `utt-${this.#nextMark++}`;
    if (this.#stopped) {
      return Promise.resolve({
        status: "stopped",
        mark,
        sentBytes: 0,
        heardMs: 0,
      });
    }
    const { promise, resolve } = Promise.withResolvers<Playback>();
    this.#queue.push({
      audio,
      mark,
      wireMark: mark,
      resumable: options.resumable ?? true,
      resolve,
      sentBytes: 0,
    });
    this.#drain();
    return promise;
  }

  /**
   * Exotel echoed the mark sent as `name`: that utterance, and any before it,
   * has played. Returns the utterance's mark, or `undefined` for a name we
   * are not waiting for (such as one renamed by a pause).
   */
  acknowledge(name: string): string | undefined {
    const index = this.#awaitingMark.findIndex((utterance) =>
      utterance.wireMark === name
    );
    if (index === -1) return undefined;
    this.counters.marksAcknowledged++;
    const played = this.#awaitingMark.splice(0, index + 1);
    for (const utterance of played) {
      utterance.resolve(this.#playback(utterance, "played"));
    }
    return played[index].mark;
  }

  /**
   * Barge-in: drops every queued and unconfirmed utterance and, when Exotel
   * may still have audio of ours queued, sends `clear`. Returns whether it did.
   * After {@linkcode Player.pause} Exotel's queue is already empty.
   */
  clear(): boolean {
    if (this.#stopped) return false;
    const playing = !this.isPaused && (this.isBusy || this.queuedMs > 0);
    this.#abandon("cleared");
    if (!playing) return false;
    this.#playheadEnd = 0;
    this.#sendClear();
    return true;
  }

  /**
   * The caller started talking over the bot, and it may be a real
   * interruption or only "hmm": stop at once, but keep everything so that
   * {@linkcode Player.resume} can go on from the exact chunk the caller
   * stopped hearing. Sends `clear` when Exotel has audio of ours that has not
   * started (the chunk playing finishes, as `clear` does on Exotel); holds
   * all sending until {@linkcode Player.resume}, {@linkcode Player.clear} or
   * {@linkcode Player.stop}. Returns whether it sent `clear`.
   */
  pause(): boolean {
    if (this.#stopped || this.isPaused) return false;
    this.#stopTimer();
    this.#dropStarted(this.#options.clock.now());
    const held = this.#unplayed;
    this.#unplayed = [];
    this.#held = held;
    if (held.length === 0) return false;
    for (const { utterance, chunk } of held) {
      utterance.sentBytes -= chunk.length;
    }
    this.#playheadEnd = held[0].startsAt;
    this.#sendClear();
    // `clear` may have dropped marks queued behind the chunk that plays on;
    // those of utterances that hold nothing back go out again now.
    const holding = new Set(held.map((sent) => sent.utterance));
    for (const utterance of this.#awaitingMark) {
      if (!holding.has(utterance)) this.#sendMark(utterance, true);
    }
    return true;
  }

  /**
   * The interruption was not one: sends again what the pause took back,
   * with the marks that followed it, and goes on playing.
   */
  resume(): void {
    const held = this.#held;
    if (this.#stopped || held === undefined) return;
    this.#held = undefined;
    const now = this.#options.clock.now();
    for (const [index, { utterance, chunk }] of held.entries()) {
      this.#transmit(utterance, chunk, now);
      const last = held[index + 1]?.utterance !== utterance;
      if (last && this.#awaitingMark.includes(utterance)) {
        this.#sendMark(utterance, true);
      }
    }
    this.#drain();
  }

  /** The call ended: drops everything, sends nothing more. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#abandon("stopped");
  }

  #abandon(status: "cleared" | "stopped"): void {
    this.#stopTimer();
    this.#held = undefined;
    const playing = this.#playing;
    this.#playing = undefined;
    if (playing) {
      playing.source.listen(undefined);
      playing.source.cancel();
    }
    const dropped = [...this.#awaitingMark];
    if (playing) dropped.push(playing.utterance);
    dropped.push(...this.#queue);
    this.#awaitingMark = [];
    this.#queue = [];
    for (const utterance of dropped) {
      utterance.resolve(this.#playback(utterance, status));
    }
    this.#unplayed = [];
  }

  #stopTimer(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
  }

  /** Called before the unplayed chunks are dropped, so they still count as unheard. */
  #playback(utterance: Utterance, status: Playback["status"]): Playback {
    let heardBytes = utterance.sentBytes;
    if (status !== "played") {
      const now = this.#options.clock.now();
      for (const sent of this.#unplayed) {
        if (sent.utterance === utterance && sent.startsAt > now) {
          heardBytes -= sent.chunk.length;
        }
      }
    }
    return {
      status,
      mark: utterance.mark,
      sentBytes: utterance.sentBytes,
      heardMs: durationMs(heardBytes, this.#options.sampleRate),
    };
  }

  /**
   * The one loop that sends media: sends what the playing utterance has,
   * starting the next one as each ends, until it must wait — for audio
   * (the source calls back), for pacing or backpressure (a timer does), or
   * for a resume. Runs again from wherever anything may have changed; a
   * nested call (a callback it makes playing or clearing) returns at once,
   * and the loop it interrupted reads the new state.
   */
  #drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (
        !this.#stopped && this.#held === undefined &&
        this.#cancelTimer === undefined
      ) {
        const playing = this.#playing ?? this.#startNext();
        if (playing === undefined) return;
        const chunk = playing.chunks[playing.next];
        if (chunk === undefined) {
          const pcm = playing.source.read();
          if (pcm !== undefined) {
            playing.chunks = playing.chunker.push(pcm);
            playing.next = 0;
          } else if (!playing.source.done) {
            return;
          } else {
            const last = playing.chunker.flush();
            if (last) {
              playing.chunks = [last];
              playing.next = 0;
            } else this.#finish(playing);
          }
          continue;
        }
        const now = this.#options.clock.now();
        const holdMs = this.#holdMs(chunk.length, now);
        if (holdMs > 0) {
          this.#cancelTimer = this.#options.clock.schedule(
            this.#timerFired,
            holdMs,
          );
          return;
        }
        if (++playing.next === playing.chunks.length) {
          // Let go of the piece it came from: a call keeps no audio between frames.
          playing.chunks = NO_CHUNKS;
          playing.next = 0;
        }
        this.#transmit(playing.utterance, chunk, now);
      }
    } finally {
      this.#draining = false;
    }
  }

  /** Makes the first queued utterance the playing one, reading its audio as a source. */
  #startNext(): Playing | undefined {
    const utterance = this.#queue.shift();
    if (utterance === undefined) return undefined;
    const { audio } = utterance;
    // A synthesised stream's first words go out once 100 ms of them are
    // there, not after a whole chunk: the caller hears the answer as soon
    // as the voice starts, and the rest follows in whole chunks. Audio
    // given whole, or pushed in whole frames (the echo), is chunked evenly.
    const streamed = !(audio instanceof Uint8Array) && !isPcmSource(audio);
    const { chunkBytes, sampleRate, onError } = this.#options;
    const source = toPcmSource(audio, { onError });
    const playing: Playing = {
      utterance,
      source,
      chunker: new Chunker(chunkBytes, {
        firstChunkBytes: streamed
          ? bytesForMs(FIRST_CHUNK_MS, sampleRate)
          : undefined,
      }),
      chunks: NO_CHUNKS,
      next: 0,
    };
    this.#playing = playing;
    source.listen(this.#wake);
    return playing;
  }

  /** All of the playing utterance is sent: its mark follows it. */
  #finish(playing: Playing): void {
    playing.source.listen(undefined);
    this.#playing = undefined;
    this.#sendMark(playing.utterance, false);
    this.#awaitingMark.push(playing.utterance);
  }

  /** How long to wait at `now` before sending `bytes` more: 0 to send now. */
  #holdMs(bytes: number, now: number): number {
    const { leadMs, sampleRate, maxBufferedBytes } = this.#options;
    if (this.#options.bufferedAmount() > maxBufferedBytes) {
      return BACKPRESSURE_POLL_MS;
    }
    const ahead = this.#playheadEnd - now;
    const chunkMs = durationMs(bytes, sampleRate);
    if (ahead > 0 && ahead + chunkMs > leadMs) {
      return Math.max(1, Math.min(ahead, ahead + chunkMs - leadMs));
    }
    return 0;
  }

  /** Sends one chunk at `now`, after whatever is queued at Exotel. */
  #transmit(utterance: Utterance, chunk: Uint8Array, now: number): void {
    // Exotel ran dry in the middle of the utterance.
    if (utterance.sentBytes > 0 && this.#playheadEnd < now) {
      this.counters.underruns++;
    }
    this.#dropStarted(now);
    const startsAt = Math.max(now, this.#playheadEnd);
    this.#playheadEnd = startsAt +
      durationMs(chunk.length, this.#options.sampleRate);
    // Held chunks live past a young-generation collection: at thousands of
    // calls, keeping them for audio that is never resumed costs memory.
    if (utterance.resumable) {
      this.#unplayed.push({ utterance, chunk, startsAt });
    }
    const wireBytes = this.#sendMedia(chunk);
    utterance.sentBytes += chunk.length;
    this.counters.framesOut++;
    this.counters.bytesOut += wireBytes;
    this.#options.onChunk?.(chunk, startsAt);
  }

  /** Forgets the sent chunks that have started playing by `now`: a `clear` no longer stops them. */
  #dropStarted(now: number): void {
    const unplayed = this.#unplayed;
    let started = 0;
    while (started < unplayed.length && unplayed[started].startsAt <= now) {
      started++;
    }
    if (started > 0) unplayed.splice(0, started);
  }

  /** Sends `utterance`'s mark; `again` renames it, so an echo of the old name is ignored. */
  #sendMark(utterance: Utterance, again: boolean): void {
    if (again) utterance.wireMark = `${utterance.mark}~${++this.#markResends}`;
    this.#options.send(
      encodeMark(this.#options.streamSid, utterance.wireMark),
    );
    this.counters.marksSent++;
  }

  #sendClear(): void {
    this.#options.send(encodeClear(this.#options.streamSid));
    this.counters.clears++;
  }
}
