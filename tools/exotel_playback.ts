/**
 * Exotel's side of bot playback, emulated: audio the bot sends is queued and
 * played at real time for the call's rate, a mark is reached when everything
 * queued before it has played, and `clear` drops what has not started.
 *
 * Pure: it is told the time (ms on the call's clock) on every call and never
 * reads a clock itself, so a simulation can run it on a virtual clock.
 *
 * @module
 */

import { BYTES_PER_SAMPLE, durationMs } from "../src/audio/pcm.ts";

/** Settings of an {@linkcode ExotelPlayback}. */
export interface ExotelPlaybackOptions {
  /** Called, in order, for every mark playback reaches. */
  onMark?: (name: string) => void;
  /** Keep the played PCM for {@linkcode ExotelPlayback.heard} (default true); false only counts bytes. */
  keepAudio?: boolean;
}

type Entry =
  | { kind: "audio"; pcm: Uint8Array; startMs: number; endMs: number }
  | { kind: "mark"; name: string; atMs: number };

/**
 * A playback queue on the call's clock.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const reached: string[] = [];
 * const playback = new ExotelPlayback(8000, { onMark: (name) => reached.push(name) });
 * playback.enqueue(new Uint8Array(3200), 0); // plays from 0 to 200 ms
 * playback.mark("utt-1", 0);
 * playback.advance(100);
 * assertEquals(reached, []);
 * playback.advance(200);
 * assertEquals(reached, ["utt-1"]);
 * ```
 */
export class ExotelPlayback {
  #sampleRate: number;
  #onMark: (name: string) => void;
  #keepAudio: boolean;
  #queue: Entry[] = [];
  #head = 0;
  #tailMs = 0;
  #heard: Uint8Array[] = [];
  #heardBytes = 0;
  #droppedBytes = 0;

  /** Creates an empty queue playing audio at `sampleRate`. */
  constructor(sampleRate: number, options: ExotelPlaybackOptions = {}) {
    this.#sampleRate = sampleRate;
    this.#onMark = options.onMark ?? (() => {});
    this.#keepAudio = options.keepAudio ?? true;
  }

  /** True when no audio is queued or playing and no mark is waiting. */
  get idle(): boolean {
    return this.#head === this.#queue.length;
  }

  /** When, on the call's clock, everything queued so far will have played. */
  get tailMs(): number {
    return this.#tailMs;
  }

  /** Bytes played so far, whole entries only until {@linkcode finish}. */
  get heardBytes(): number {
    return this.#heardBytes;
  }

  /** Bytes `clear` dropped before they played. */
  get droppedBytes(): number {
    return this.#droppedBytes;
  }

  /** Plays everything due by `nowMs`, calling `onMark` for the marks reached. */
  advance(nowMs: number): void {
    while (this.#head < this.#queue.length) {
      const entry = this.#queue[this.#head];
      if (entry.kind === "audio") {
        if (entry.endMs > nowMs) break;
        this.#play(entry.pcm);
      } else {
        if (entry.atMs > nowMs) break;
        this.#onMark(entry.name);
      }
      this.#head++;
    }
    this.#compact();
  }

  /** Queues `pcm` to play after everything already queued, or at `nowMs` when the queue is empty. */
  enqueue(pcm: Uint8Array, nowMs: number): void {
    this.advance(nowMs);
    const startMs = Math.max(nowMs, this.#tailMs);
    const endMs = startMs + durationMs(pcm.length, this.#sampleRate);
    this.#queue.push({ kind: "audio", pcm, startMs, endMs });
    this.#tailMs = endMs;
  }

  /** Queues a mark, reached when everything queued before it has played. */
  mark(name: string, nowMs: number): void {
    this.advance(nowMs);
    this.#queue.push({
      kind: "mark",
      name,
      atMs: Math.max(nowMs, this.#tailMs),
    });
  }

  /**
   * Drops queued audio that has not started and every mark not yet reached;
   * the chunk playing at `nowMs` plays on, as on Exotel. Returns the names of
   * the dropped marks.
   */
  clear(nowMs: number): string[] {
    this.advance(nowMs);
    const dropped: string[] = [];
    let playing: Entry | undefined;
    for (let index = this.#head; index < this.#queue.length; index++) {
      const entry = this.#queue[index];
      if (entry.kind === "mark") dropped.push(entry.name);
      else if (entry.startMs <= nowMs && !playing) playing = entry;
      else this.#droppedBytes += entry.pcm.length;
    }
    this.#queue = playing ? [playing] : [];
    this.#head = 0;
    this.#tailMs = playing?.kind === "audio" ? playing.endMs : nowMs;
    return dropped;
  }

  /**
   * Ends playback at `nowMs`: plays what is due, keeps the played part of
   * the chunk that was playing, and drops the rest.
   */
  finish(nowMs: number): void {
    this.advance(nowMs);
    const entry = this.#queue[this.#head];
    if (entry?.kind === "audio" && entry.startMs < nowMs) {
      const samples = Math.floor(
        (nowMs - entry.startMs) * this.#sampleRate / 1000,
      );
      this.#play(entry.pcm.subarray(0, samples * BYTES_PER_SAMPLE));
    }
    this.#queue = [];
    this.#head = 0;
  }

  /** The PCM played so far, in order (empty when `keepAudio` is false). */
  heard(): Uint8Array {
    return concat(this.#heard, this.#heardBytes);
  }

  #play(pcm: Uint8Array): void {
    this.#heardBytes += pcm.length;
    if (this.#keepAudio) this.#heard.push(pcm);
  }

  /** Drops played entries now and then, so long calls do not grow the queue forever. */
  #compact(): void {
    if (this.#head > 64 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }
}

/** Joins `parts` into one array of `total` bytes. */
export function concat(parts: Uint8Array[], total?: number): Uint8Array {
  const size = total ?? parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Uint8Array(parts.length === 0 ? 0 : size);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
