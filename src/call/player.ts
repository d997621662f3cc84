/**
 * Paced playout of a bot's audio to Exotel: chunks of a multiple of 320 bytes,
 * sent at real time with a small lead queued at Exotel, a mark after every
 * utterance, `clear` for barge-in, pause and resume for speech that may turn
 * out not to be one, and socket backpressure.
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
import { isPushSource, type PushSource } from "../audio/pcm_pipe.ts";
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

/** A chunk sent to Exotel that, by our estimate, has not started playing. */
interface SentChunk {
  utterance: Utterance;
  chunk: Uint8Array;
  startsAt: number;
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
  /** Sent chunks that may not have started playing, oldest first. */
  #unplayed: SentChunk[] = [];
  /** While paused: the chunks a `clear` took back from Exotel, to send again on resume. */
  #held: SentChunk[] | undefined;
  #markResends = 0;
  /** Sends one chunk as a media frame; returns the bytes on the wire. */
  #sendMedia: (chunk: Uint8Array) => number;

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
    return this.#queue.length > 0 || this.#awaitingMark.length > 0;
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
    return new Promise((resolve) => {
      this.#queue.push({
        audio,
        mark,
        wireMark: mark,
        resumable: options.resumable ?? true,
        resolve,
        sentBytes: 0,
      });
      if (!this.#pumping) this.#pump(this.#generation);
    });
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
    for (const [index, { utterance, chunk }] of held.entries()) {
      this.#transmit(utterance, chunk);
      const last = held[index + 1]?.utterance !== utterance;
      if (last && this.#awaitingMark.includes(utterance)) {
        this.#sendMark(utterance, true);
      }
    }
    this.#wakePump();
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
    this.#held = undefined;
    const dropped = [...this.#awaitingMark, ...this.#queue];
    this.#awaitingMark = [];
    this.#queue = [];
    for (const utterance of dropped) {
      utterance.resolve(this.#playback(utterance, status));
    }
    this.#unplayed = [];
    this.#wakePump();
    this.#source?.return?.().catch(() => {});
    this.#source = undefined;
  }

  /** Lets a pump waiting on a timer or a pause look again. */
  #wakePump(): void {
    this.#cancelSleep?.();
    this.#cancelSleep = undefined;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
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

  async #pump(generation: number): Promise<void> {
    this.#pumping = true;
    while (generation === this.#generation && this.#queue.length > 0) {
      const utterance = this.#queue[0];
      const finished = await this.#sendUtterance(utterance, generation);
      if (!finished || generation !== this.#generation) return;
      this.#queue.shift();
      this.#sendMark(utterance, false);
      this.#awaitingMark.push(utterance);
    }
    if (generation === this.#generation) this.#pumping = false;
  }

  /** Sends all of one utterance's audio; false when cleared or stopped meanwhile. */
  async #sendUtterance(
    utterance: Utterance,
    generation: number,
  ): Promise<boolean> {
    const { audio } = utterance;
    // A synthesised stream's first words go out once 100 ms of them are
    // there, not after a whole chunk: the caller hears the answer as soon
    // as the voice starts, and the rest follows in whole chunks.
    const chunker = new Chunker(this.#options.chunkBytes, {
      firstChunkBytes: audio instanceof Uint8Array || isPushSource(audio)
        ? undefined
        : bytesForMs(FIRST_CHUNK_MS, this.#options.sampleRate),
    });
    if (audio instanceof Uint8Array) {
      for (const chunk of chunker.push(audio)) {
        if (!await this.#sendChunk(utterance, chunk, generation)) return false;
      }
    } else if (isPushSource(audio)) {
      if (!await this.#sendPushed(utterance, audio, chunker, generation)) {
        return false;
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

  /**
   * Sends a push source's audio from inside its pushes while nothing asks to
   * wait, so that a live stream costs no promise per piece (at thousands of
   * calls, promises that live from one frame to the next are most of the
   * garbage); when pacing, backpressure or a pause asks to wait, waits as for
   * any audio, then goes on. False when cleared or stopped meanwhile.
   */
  #sendPushed(
    utterance: Utterance,
    source: PushSource,
    chunker: Chunker,
    generation: number,
  ): Promise<boolean> {
    // Registered as the source so that clear and stop close it, as any stream.
    const iterator = source[Symbol.asyncIterator]();
    this.#source = iterator;
    const { promise, resolve } = Promise.withResolvers<boolean>();
    let waiting = false;
    let finished = false;
    const finish = (result: boolean) => {
      if (finished) return;
      finished = true;
      source.listen(undefined);
      if (this.#source === iterator) this.#source = undefined;
      resolve(result);
    };
    const drain = (): void => {
      while (!waiting && !finished) {
        if (generation !== this.#generation) return finish(false);
        const pcm = source.read();
        if (pcm === undefined) {
          if (source.done) finish(true);
          return;
        }
        const chunks = chunker.push(pcm);
        for (let i = 0; i < chunks.length; i++) {
          const sent = this.#sendChunk(utterance, chunks[i], generation);
          if (sent === true) continue;
          if (sent === false) return finish(false);
          waiting = true;
          this.#sendRest(sent, utterance, chunks.slice(i + 1), generation)
            .then((ok) => {
              waiting = false;
              if (ok) drain();
              else finish(false);
            });
          return;
        }
      }
    };
    source.listen(drain);
    drain();
    return promise;
  }

  /** Waits for `first` to be sent, then sends `rest`; false when cleared or stopped meanwhile. */
  async #sendRest(
    first: Promise<boolean>,
    utterance: Utterance,
    rest: Uint8Array[],
    generation: number,
  ): Promise<boolean> {
    if (!await first) return false;
    for (const chunk of rest) {
      if (!await this.#sendChunk(utterance, chunk, generation)) return false;
    }
    return true;
  }

  /**
   * Sends `chunk` now when nothing asks to wait, returning true without a
   * promise (the common case, per frame); otherwise returns a promise of
   * its sending once a pause, pacing and backpressure allow.
   */
  #sendChunk(
    utterance: Utterance,
    chunk: Uint8Array,
    generation: number,
  ): boolean | Promise<boolean> {
    if (generation !== this.#generation) return false;
    if (this.isPaused || this.#holdMs(chunk.length) > 0) {
      return this.#sendChunkLater(utterance, chunk, generation);
    }
    this.#transmit(utterance, chunk);
    return true;
  }

  async #sendChunkLater(
    utterance: Utterance,
    chunk: Uint8Array,
    generation: number,
  ): Promise<boolean> {
    while (true) {
      if (generation !== this.#generation) return false;
      if (this.isPaused) {
        await new Promise<void>((resolve) => this.#wake = resolve);
        continue;
      }
      const holdMs = this.#holdMs(chunk.length);
      if (holdMs === 0) break;
      await this.#sleep(holdMs);
    }
    this.#transmit(utterance, chunk);
    return true;
  }

  /** How long to wait before sending `bytes` more, pauses aside: 0 to send now. */
  #holdMs(bytes: number): number {
    const { clock, leadMs, sampleRate, maxBufferedBytes } = this.#options;
    if (this.#options.bufferedAmount() > maxBufferedBytes) {
      return BACKPRESSURE_POLL_MS;
    }
    const ahead = this.#playheadEnd - clock.now();
    const chunkMs = durationMs(bytes, sampleRate);
    if (ahead > 0 && ahead + chunkMs > leadMs) {
      return Math.max(1, Math.min(ahead, ahead + chunkMs - leadMs));
    }
    return 0;
  }

  /** Sends one chunk now, after whatever is queued at Exotel. */
  #transmit(utterance: Utterance, chunk: Uint8Array): void {
    const now = this.#options.clock.now();
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
    this.#options.onChunk?.(chunk, startsAt);
    utterance.sentBytes += chunk.length;
    this.counters.framesOut++;
    this.counters.bytesOut += wireBytes;
  }

  /** Forgets the sent chunks that have started playing by `now`: a `clear` no longer stops them. */
  #dropStarted(now: number): void {
    let started = 0;
    while (
      started < this.#unplayed.length &&
      this.#unplayed[started].startsAt <= now
    ) started++;
    if (started > 0) this.#unplayed.splice(0, started);
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
