/**
 * One call, as data: the {@linkcode CallSnapshot} every view of a call is
 * projected from, and the monitoring view of `GET /voicebot/sessions`
 * ({@linkcode summarizeCall}).
 *
 * A call keeps its snapshot up to date in place (its session in the
 * registry is one); a view reads it at one moment and never changes it.
 * The other views project from it where they live: the call record
 * (`records/call_record.ts`, `buildCallRecord`), the live entry shared
 * between instances (`instances/live_sessions.ts`, `liveSessionEntry`) and
 * the metric totals (`metrics/live_totals.ts`, `liveTotals`). A bot is given
 * the part of it that concerns the call (`CallInfo` in `bot_contract.ts`).
 *
 * Every string from the peer in it was bounded once, where it was parsed
 * (`exotel/protocol.ts`, `PEER_LIMITS`), so no view bounds it again.
 *
 * @module
 */

import type { SampleRate } from "../audio/pcm.ts";
import type { AudioEncoding } from "../exotel/protocol.ts";
import type { TurnTiming } from "./bot_report.ts";
import type { PlayoutCounters } from "./player.ts";

/** Where a call is in its life. */
export type CallState = "connected" | "started" | "stopped";

/**
 * DTMF digits a call keeps, in order: a flood of `dtmf` frames must not
 * outgrow the record's KV value limit. Further digits still reach the bot.
 */
export const MAX_KEPT_DTMF_DIGITS = 1000;

/**
 * Everything known about one call at one moment. The call changes it as
 * the call goes on; a view reads it and never changes it.
 */
export interface CallSnapshot {
  /** Unique id of this WebSocket session (a call may reconnect with the same call id). */
  id: string;
  /** Our id for the call: `call_id`/`callSid`/`callLogId` from the URL, else the CallSid from `start`. */
  callId: string;
  /** Exotel's stream id, known from the URL or `start`. */
  streamSid: string;
  /** The Exotel account; empty until `start`. */
  accountSid: string;
  /** The caller's number; empty until `start`. */
  from: string;
  /** The number called; empty until `start`. */
  to: string;
  /** Parameters from the applet URL, as `start` carried them. */
  customParameters: Record<string, string>;
  /** Rate of the audio both ways: the URL's until `start` declares one. */
  sampleRate: SampleRate;
  /** How audio is coded on the wire: `pcm` until `start` declares μ-law. */
  encoding: AudioEncoding;
  /** The bot's name. */
  bot: string;
  /** The agent asked for by the socket URL's `agent=` (or a custom parameter of that name). */
  agent?: string;
  /** The peer's address. */
  remoteAddress: string;
  /** Epoch ms of the upgrade. */
  connectedAt: number;
  /** Epoch ms of the last frame received. */
  lastActivity: number;
  /** Epoch ms the call ended; absent while it is live. */
  endedAt?: number;
  /**
   * Why it ended, as the call said it (`stop:callended`, `closed:1006`,
   * `bot:end_call`, `idle_timeout`, …); absent while it is live.
   * `records/call_record.ts`'s `callOutcome` bounds it for labels.
   */
  endReason?: string;
  /** The last `sequence_number` Exotel sent. */
  sequenceNumber: number;
  /** Lifecycle state. */
  state: CallState;
  /** Frames received, valid or not. */
  framesIn: number;
  /** Audio bytes received, as on the wire. */
  bytesIn: number;
  /** Frames skipped, by reason (`invalid_json`, `binary`, `too_large`, …). */
  badFrames: Record<string, number>;
  /** Caller audio received before `start`, held for the bot. */
  audioChunksBuffered: number;
  /** DTMF digits pressed, in order (the first {@linkcode MAX_KEPT_DTMF_DIGITS}). */
  dtmfDigits: string;
  /** Outbound counters, kept by the player. */
  playout: PlayoutCounters;
}

/** The monitoring view of a live call, as `GET /voicebot/sessions` lists it. */
export interface SessionSummary {
  /** Our id for the call. */
  callId: string;
  /** Exotel's stream id. */
  streamSid: string;
  /** When the socket was upgraded (ISO 8601). */
  connectedAt: string;
  /** When the last frame arrived (ISO 8601). */
  lastActivity: string;
  /** The last `sequence_number` Exotel sent. */
  sequenceNumber: number;
  /** False once the call has stopped. */
  isActive: boolean;
  /** Caller audio chunks held until `start`. */
  audioChunksBuffered: number;
  /** Lifecycle state. */
  state: CallState;
  /** The caller's number. */
  from: string;
  /** The number called. */
  to: string;
  /** Rate of the audio both ways. */
  sampleRate: SampleRate;
  /** How audio is coded on the wire. */
  encoding: AudioEncoding;
  /** The bot's name. */
  bot: string;
  /** Parameters from the applet URL. */
  customParameters: Record<string, string>;
  /** Frames received, valid or not. */
  framesIn: number;
  /** Audio bytes received. */
  bytesIn: number;
  /** Frames skipped, by reason. */
  badFrames: Record<string, number>;
  /** DTMF digits pressed, in order. */
  dtmfDigits: string;
  /** Outbound counters. */
  playout: PlayoutCounters;
  /** The bot's last turns' latencies, for bots that keep a timeline (the agent). */
  lastTurns: TurnTiming[];
}

/** What {@linkcode summarizeCall} adds to the snapshot. */
export interface SummaryOptions {
  /** The bot's per-turn latencies so far; the last five are shown. */
  turns?: readonly TurnTiming[];
}

/** Turns shown in a call's monitoring entry. */
const MONITORED_TURNS = 5;

/**
 * Projects `snapshot` to its monitoring view, copying what the call goes on
 * changing so that the view stays as it was.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const snapshot: CallSnapshot = {
 *   id: "0b6e", callId: "CA1", streamSid: "ST1", accountSid: "AC1",
 *   from: "+919800000001", to: "08012345678", customParameters: {},
 *   sampleRate: 8000, encoding: "pcm", bot: "echo", remoteAddress: "127.0.0.1",
 *   connectedAt: Date.UTC(2025, 2, 1, 10), lastActivity: Date.UTC(2025, 2, 1, 10, 0, 30),
 *   sequenceNumber: 7, state: "started", framesIn: 6, bytesIn: 19200,
 *   badFrames: {}, audioChunksBuffered: 0, dtmfDigits: "1",
 *   playout: { framesOut: 6, bytesOut: 19200, marksSent: 1, marksAcknowledged: 1, clears: 0, underruns: 0, droppedBytes: 0 },
 * };
 * const summary = summarizeCall(snapshot);
 * assertEquals(summary.connectedAt, "2025-03-01T10:00:00.000Z");
 * assertEquals(summary.isActive, true);
 * ```
 */
export function summarizeCall(
  snapshot: CallSnapshot,
  options: SummaryOptions = {},
): SessionSummary {
  return {
    callId: snapshot.callId,
    streamSid: snapshot.streamSid,
    connectedAt: new Date(snapshot.connectedAt).toISOString(),
    lastActivity: new Date(snapshot.lastActivity).toISOString(),
    sequenceNumber: snapshot.sequenceNumber,
    isActive: snapshot.state !== "stopped",
    audioChunksBuffered: snapshot.audioChunksBuffered,
    state: snapshot.state,
    from: snapshot.from,
    to: snapshot.to,
    sampleRate: snapshot.sampleRate,
    encoding: snapshot.encoding,
    bot: snapshot.bot,
    customParameters: { ...snapshot.customParameters },
    framesIn: snapshot.framesIn,
    bytesIn: snapshot.bytesIn,
    badFrames: { ...snapshot.badFrames },
    dtmfDigits: snapshot.dtmfDigits,
    playout: { ...snapshot.playout },
    lastTurns: options.turns?.slice(-MONITORED_TURNS) ?? [],
  };
}
