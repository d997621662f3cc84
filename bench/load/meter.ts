/**
 * What every call of a load run reports into while it runs: echo latencies
 * and counts, kept only inside the measurement window.
 *
 * @module
 */

import { Samples } from "./stats.ts";

/** Echo latency of the caller frames echoed in one second of a run. */
export interface TimelineSecond {
  /** Seconds since the run started. */
  second: number;
  /** Caller frames whose last byte came back in it. */
  frames: number;
  /** Their mean echo latency, in ms. */
  meanMs: number;
  /** Their largest echo latency, in ms. */
  maxMs: number;
}

/**
 * Shared by all calls of one run. Samples are kept only while
 * `performance.now()` lies in `[windowStart, windowEnd)`, the steady state
 * after ramp-up, so connect bursts and hang-ups do not colour the figures.
 */
export class EchoMeter {
  /** Start of the measurement window, `performance.now()` ms. */
  windowStart = Infinity;
  /** End of the measurement window, `performance.now()` ms. */
  windowEnd = Infinity;
  /** Per caller frame: sent → its last byte received back, in ms. */
  readonly frameLatency: Samples = new Samples();
  /** Per echoed chunk: the caller frame holding its last byte sent → chunk received, in ms. */
  readonly chunkLatency: Samples = new Samples();
  /**
   * Per echoed chunk: the caller frame holding its last byte sent → Exotel,
   * playing what it is sent at real time, would start playing the chunk.
   */
  readonly playoutLatency: Samples = new Samples();
  /** Per caller frame: how late the generator sent it against its schedule, in ms. */
  readonly sendLateness: Samples = new Samples();
  /** Caller media frames sent in the window. */
  framesSent = 0;
  /** Start of the run, `performance.now()` ms: second 0 of the timeline. */
  origin = 0;
  #timeline: TimelineSecond[] = [];
  /** Media frames from the server received in the window. */
  chunksReceived = 0;

  /** True when `now` lies in the window. */
  inWindow(now: number): boolean {
    return now >= this.windowStart && now < this.windowEnd;
  }

  /** A caller frame sent at `sentAt` came back whole at `now`. */
  frameEchoed(sentAt: number, now: number): void {
    const latency = now - sentAt;
    if (this.inWindow(now)) this.frameLatency.add(latency);
    const second = Math.max(0, Math.floor((now - this.origin) / 1000));
    const bucket = this.#timeline[second] ??= {
      second,
      frames: 0,
      meanMs: 0,
      maxMs: 0,
    };
    bucket.frames++;
    bucket.meanMs += (latency - bucket.meanMs) / bucket.frames;
    bucket.maxMs = Math.max(bucket.maxMs, latency);
  }

  /** Echo latency second by second over the whole run, window or not. */
  timeline(): TimelineSecond[] {
    return this.#timeline.filter((bucket) => bucket !== undefined).map((
      bucket,
    ) => ({
      second: bucket.second,
      frames: bucket.frames,
      meanMs: Math.round(bucket.meanMs * 100) / 100,
      maxMs: Math.round(bucket.maxMs * 100) / 100,
    }));
  }

  /** A media frame arrived at `now`; its last byte was sent at `sentAt`. */
  chunkReceived(sentAt: number, now: number): void {
    if (!this.inWindow(now)) return;
    this.chunksReceived++;
    this.chunkLatency.add(now - sentAt);
  }

  /** A chunk whose last byte was sent at `sentAt` would start playing at `startsAt`. */
  chunkPlays(sentAt: number, startsAt: number, now: number): void {
    if (this.inWindow(now)) this.playoutLatency.add(startsAt - sentAt);
  }

  /** A caller media frame due at `due` was sent at `now`. */
  frameSent(due: number, now: number): void {
    if (!this.inWindow(now)) return;
    this.framesSent++;
    this.sendLateness.add(Math.max(0, now - due));
  }
}
