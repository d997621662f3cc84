/**
 * One lean simulated Exotel call for load runs: `connected`, `start`, caller
 * media at real time, then `stop`; every byte the echo sends back is checked
 * against what was sent, in order, whatever the chunking.
 *
 * Leaner than `tools/simulator.ts` (no playback model, marks or DTMF) so that
 * one process can drive thousands of calls.
 *
 * @module
 */

import { parseInboundFrame } from "../../src/exotel/protocol.ts";
import { CHUNK_ALIGN_BYTES, MAX_CHUNK_BYTES } from "../../src/audio/pcm.ts";
import type { EchoMeter } from "./meter.ts";
import { connectWs, type WsClient } from "./ws_client.ts";

/** How a load call ended. */
export type CallOutcome = "completed" | "connect_failed" | "dropped";

/** Options of {@linkcode runLoadCall}. */
export interface LoadCallOptions {
  /** The voicebot endpoint, `ws://host:port/path`. */
  url: string;
  /** Unique number of the call within the run: part of its ids and audio. */
  id: number;
  /** The call's sample rate. */
  sampleRate: number;
  /** Bytes of PCM per caller media frame. */
  frameBytes: number;
  /** Caller media frames to send. */
  frames: number;
  /** After the last frame, how long to wait for the rest of the echo. */
  drainMs: number;
  /** How long the handshake may take. */
  connectTimeoutMs: number;
  /** Random bytes the call's audio is cut from; at least `frameBytes` long. */
  pattern: Uint8Array;
  /** Where latencies go. */
  meter: EchoMeter;
  /** Extra headers on the upgrade request, e.g. `Authorization`. */
  headers?: Record<string, string>;
  /** Aborting ends the call at once: `stop`, then close. */
  signal?: AbortSignal;
}

/** What one load call saw. */
export interface CallResult {
  /** The call's number. */
  id: number;
  /** How it ended. */
  outcome: CallOutcome;
  /** Why it failed or was dropped. */
  error?: string;
  /** The close code, when the socket closed. */
  closeCode?: number;
  /** Handshake time in ms, when it connected. */
  connectMs?: number;
  /** Caller media frames sent. */
  framesSent: number;
  /** PCM bytes sent. */
  bytesSent: number;
  /** PCM bytes received back at their right place with the right value. */
  bytesEchoed: number;
  /** PCM bytes received back at their place with a wrong value. */
  bytesCorrupt: number;
  /** PCM bytes received beyond what was sent. */
  bytesExtra: number;
  /** Caller frames the server dropped whole: the echo resumed after them. */
  framesSkipped: number;
  /** PCM bytes in those frames (part of the bytes lost). */
  bytesSkipped: number;
  /** Media frames received. */
  mediaReceived: number;
  /** Media frames whose size breaks Exotel's chunk rules or that carry another stream's id. */
  badMedia: number;
  /** Other frames received (marks, clears, anything else). */
  otherReceived: number;
}

/** Bytes lost by a call: sent and never received back. */
export function bytesLost(result: CallResult): number {
  return Math.max(
    0,
    result.bytesSent - result.bytesEchoed - result.bytesCorrupt,
  );
}

/** Bytes at the start of every caller frame holding the call's and the frame's numbers. */
const HEADER_BYTES = 8;

/** Runs one call to its end. Never rejects. */
export function runLoadCall(options: LoadCallOptions): Promise<CallResult> {
  return new LoadCall(options).run();
}

interface SentFrame {
  bytes: Uint8Array;
  sentAt: number;
}

class LoadCall {
  #options: LoadCallOptions;
  #periodMs: number;
  #streamSid: string;
  #ws?: WsClient;
  #result: CallResult;
  #sequence = 0;
  #t0 = 0;
  #timer?: ReturnType<typeof setTimeout>;
  #sent: (SentFrame | undefined)[] = [];
  /** The oldest sent frame not yet fully echoed, and how far into it the echo is. */
  #head = 0;
  #headOffset = 0;
  /** When Exotel would have played everything received so far, playing at real time. */
  #playEnd = 0;
  #finishing = false;
  #closed = false;
  #done!: (result: CallResult) => void;
  #drained?: () => void;

  constructor(options: LoadCallOptions) {
    this.#options = options;
    this.#periodMs = options.frameBytes / (options.sampleRate * 2 / 1000);
    this.#streamSid = `load-stream-${options.id}`;
    this.#result = {
      id: options.id,
      outcome: "completed",
      framesSent: 0,
      bytesSent: 0,
      bytesEchoed: 0,
      bytesCorrupt: 0,
      bytesExtra: 0,
      framesSkipped: 0,
      bytesSkipped: 0,
      mediaReceived: 0,
      badMedia: 0,
      otherReceived: 0,
    };
  }

  async run(): Promise<CallResult> {
    const { signal } = this.#options;
    if (signal?.aborted) return this.#fail("connect_failed", "aborted");
    const url = new URL(this.#options.url);
    url.searchParams.set("sample-rate", String(this.#options.sampleRate));
    url.searchParams.set("call_id", `load-call-${this.#options.id}`);
    const startedAt = performance.now();
    let ws: WsClient;
    try {
      ws = await connectWs(url, {
        headers: this.#options.headers,
        timeoutMs: this.#options.connectTimeoutMs,
      });
    } catch (error) {
      return this.#fail(
        "connect_failed",
        error instanceof Error ? error.message : String(error),
      );
    }
    this.#result.connectMs = performance.now() - startedAt;
    this.#ws = ws;
    const { promise, resolve } = Promise.withResolvers<CallResult>();
    this.#done = resolve;
    const onAbort = () => this.#finish();
    signal?.addEventListener("abort", onAbort, { once: true });
    ws.listen({
      text: (text) => this.#receive(text),
      binary: () => this.#result.otherReceived++,
      close: (code, reason) => {
        clearTimeout(this.#timer);
        signal?.removeEventListener("abort", onAbort);
        this.#closed = true;
        this.#result.closeCode = code;
        if (!this.#finishing) {
          this.#result.outcome = "dropped";
          this.#result.error ??= `server closed with ${code} ${reason}`.trim();
        }
        this.#done(this.#result);
      },
    });
    this.#begin();
    return promise;
  }

  #fail(outcome: CallOutcome, error: string): CallResult {
    this.#result.outcome = outcome;
    this.#result.error = error;
    return this.#result;
  }

  #send(text: string): void {
    this.#ws?.sendText(text);
  }

  #begin(): void {
    const id = this.#options.id;
    this.#send('{"event":"connected","protocol":"Call","version":"1.0.0"}');
    this.#send(JSON.stringify({
      event: "start",
      sequence_number: String(++this.#sequence),
      stream_sid: this.#streamSid,
      start: {
        stream_sid: this.#streamSid,
        call_sid: `load-call-${id}`,
        account_sid: "load",
        from: "+910000000000",
        to: "+910000000001",
        custom_parameters: {},
        media_format: {
          encoding: "audio/x-raw",
          sample_rate: String(this.#options.sampleRate),
          bit_rate: "16",
        },
      },
    }));
    this.#t0 = performance.now();
    this.#tick();
  }

  #tick = (): void => {
    this.#timer = undefined;
    if (this.#closed || this.#finishing) return;
    const index = this.#result.framesSent;
    if (index >= this.#options.frames) {
      this.#awaitEcho();
      return;
    }
    this.#sendFrame(index);
    const due = this.#t0 + (index + 1) * this.#periodMs;
    this.#timer = setTimeout(
      this.#tick,
      Math.max(0, due - performance.now()),
    );
  };

  #sendFrame(index: number): void {
    const { frameBytes, pattern, id } = this.#options;
    const bytes = new Uint8Array(frameBytes);
    // A different window of the pattern per call and frame, headed by both
    // numbers, so a byte echoed to the wrong call or out of order shows.
    const span = pattern.length - frameBytes;
    const from = span > 0 ? ((id * 7919 + index * 104729) % span) & ~1 : 0;
    bytes.set(pattern.subarray(from, from + frameBytes));
    const view = new DataView(bytes.buffer);
    if (frameBytes >= HEADER_BYTES) {
      view.setUint32(0, id, true);
      view.setUint32(4, index, true);
    }
    const sequence = ++this.#sequence;
    const timestamp = Math.round(index * this.#periodMs);
    const text =
      `{"event":"media","sequence_number":"${sequence}","stream_sid":"${this.#streamSid}","media":{"chunk":"${
        index + 1
      }","timestamp":"${timestamp}","payload":"${bytes.toBase64()}"}}`;
    const sentAt = performance.now();
    this.#send(text);
    this.#sent.push({ bytes, sentAt });
    this.#result.framesSent++;
    this.#result.bytesSent += frameBytes;
    this.#options.meter.frameSent(this.#t0 + index * this.#periodMs, sentAt);
  }

  #receive(data: string): void {
    const now = performance.now();
    const parsed = parseInboundFrame(data);
    if (!parsed.ok || parsed.event.event !== "media") {
      this.#result.otherReceived++;
      return;
    }
    const { payload, streamSid } = parsed.event;
    this.#result.mediaReceived++;
    if (
      streamSid !== this.#streamSid || payload.length === 0 ||
      payload.length % CHUNK_ALIGN_BYTES !== 0 ||
      payload.length > MAX_CHUNK_BYTES
    ) {
      this.#result.badMedia++;
    }
    this.#verify(payload, now);
    if (this.#drained && this.#pendingBytes() === 0) this.#drained();
  }

  /** Compares `pcm` with the next unechoed bytes sent, in order. */
  #verify(pcm: Uint8Array, now: number): void {
    const result = this.#result;
    const meter = this.#options.meter;
    let at = 0;
    let lastSentAt: number | undefined;
    while (at < pcm.length) {
      const frame = this.#sent[this.#head];
      if (frame === undefined) {
        result.bytesExtra += pcm.length - at;
        break;
      }
      const expected = frame.bytes;
      const offset = this.#headOffset;
      if (offset === 0 && this.#skipDropped(pcm, at)) continue;
      const take = Math.min(expected.length - offset, pcm.length - at);
      let wrong = 0;
      for (let i = 0; i < take; i++) {
        if (pcm[at + i] !== expected[offset + i]) wrong++;
      }
      result.bytesCorrupt += wrong;
      result.bytesEchoed += take - wrong;
      at += take;
      lastSentAt = frame.sentAt;
      if (offset + take === expected.length) {
        meter.frameEchoed(frame.sentAt, now);
        // Echoed frames are dropped so a long call holds only what is in flight.
        this.#sent[this.#head++] = undefined;
        this.#headOffset = 0;
      } else {
        this.#headOffset = offset + take;
      }
    }
    if (lastSentAt === undefined) return;
    meter.chunkReceived(lastSentAt, now);
    const startsAt = Math.max(now, this.#playEnd);
    this.#playEnd = startsAt +
      pcm.length / (this.#options.sampleRate * 2 / 1000);
    meter.chunkPlays(lastSentAt, startsAt, now);
  }

  /**
   * A server may drop whole caller frames when it falls behind (the echo
   * bot drops its oldest backlog). At a frame boundary, a header naming a
   * later frame of this call means the frames before it were dropped: they
   * are counted as skipped, and checking resumes at that frame.
   */
  #skipDropped(pcm: Uint8Array, at: number): boolean {
    const expected = this.#sent[this.#head]?.bytes;
    if (
      expected === undefined || expected.length < HEADER_BYTES ||
      pcm.length - at < HEADER_BYTES
    ) {
      return false;
    }
    let same = true;
    for (let i = 0; i < HEADER_BYTES && same; i++) {
      same = pcm[at + i] === expected[i];
    }
    if (same) return false;
    const view = new DataView(pcm.buffer, pcm.byteOffset + at, HEADER_BYTES);
    const index = view.getUint32(4, true);
    if (
      view.getUint32(0, true) !== this.#options.id || index <= this.#head ||
      this.#sent[index] === undefined
    ) {
      return false;
    }
    for (; this.#head < index; this.#head++) {
      this.#result.framesSkipped++;
      this.#result.bytesSkipped += this.#sent[this.#head]?.bytes.length ?? 0;
      this.#sent[this.#head] = undefined;
    }
    return true;
  }

  #pendingBytes(): number {
    const r = this.#result;
    return r.bytesSent - r.bytesEchoed - r.bytesCorrupt - r.bytesSkipped;
  }

  #awaitEcho(): void {
    if (this.#pendingBytes() === 0) return this.#finish();
    this.#drained = () => {
      this.#drained = undefined;
      clearTimeout(this.#timer);
      this.#finish();
    };
    this.#timer = setTimeout(() => this.#drained?.(), this.#options.drainMs);
  }

  /** Hangs up the way Exotel does: `stop`, then close. */
  #finish(): void {
    if (this.#finishing || this.#closed) return;
    this.#finishing = true;
    clearTimeout(this.#timer);
    this.#send(JSON.stringify({
      event: "stop",
      sequence_number: String(++this.#sequence),
      stream_sid: this.#streamSid,
      stop: {
        call_sid: `load-call-${this.#options.id}`,
        account_sid: "load",
        reason: "callended",
      },
    }));
    // The client drops the connection itself if the server never answers.
    this.#ws?.close(1000, "callended");
  }
}
