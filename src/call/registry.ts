/**
 * The session map: one entry per live call, for monitoring and cleanup.
 * Pure: no timers, no sockets.
 *
 * @module
 */

import type { PlayoutCounters } from "./player.ts";
import type { BotLiveState, BotReport } from "../bots/bot.ts";
import type { TurnTiming } from "../records/call_record.ts";

/** Where a call is in its life. */
export type CallState = "connected" | "started" | "stopped";

/** Everything known about one live call. Updated in place by its call. */
export interface Session {
  /** Unique id of this WebSocket session (a call may reconnect with the same call id). */
  readonly id: string;
  /** Our id for the call: `call_id`/`callSid`/`callLogId` from the URL, else the CallSid from `start`. */
  callId: string;
  /** Exotel's stream id, known from the URL or `start`. */
  streamSid: string;
  /** The Exotel account. */
  accountSid: string;
  /** The caller's number. */
  from: string;
  /** The number called. */
  to: string;
  /** Parameters from the applet URL. */
  customParameters: Record<string, string>;
  /** Rate of the audio both ways. */
  sampleRate: number;
  /** The bot's name. */
  bot: string;
  /** The peer's address. */
  remoteAddress: string;
  /** Epoch ms of the upgrade. */
  readonly connectedAt: number;
  /** Epoch ms of the last frame received. */
  lastActivity: number;
  /** The last `sequence_number` Exotel sent. */
  sequenceNumber: number;
  /** Lifecycle state. */
  state: CallState;
  /** Frames received, valid or not. */
  framesIn: number;
  /** PCM bytes received. */
  bytesIn: number;
  /** Frames skipped, by reason (`invalid_json`, `binary`, `too_large`, …). */
  badFrames: Record<string, number>;
  /** Caller audio received before `start`, held for the bot. */
  audioChunksBuffered: number;
  /** DTMF digits pressed, in order. */
  dtmfDigits: string;
  /** Outbound counters, kept by the player. */
  playout: PlayoutCounters;
  /** The bot's transcript and per-turn timings so far, for bots that keep them. */
  report?(): BotReport | undefined;
  /** What the bot is doing now, for bots that say. */
  live?(): BotLiveState | undefined;
  /** Ends the call: closes the socket (code 1000 unless given) and cleans up. */
  end(reason: string, closeCode?: number): void;
}

/** A live call as `GET /voicebot/sessions` lists it, in JSON-ready fields. */
export interface SessionSummary {
  callId: string;
  streamSid: string;
  connectedAt: string;
  lastActivity: string;
  sequenceNumber: number;
  isActive: boolean;
  audioChunksBuffered: number;
  state: CallState;
  from: string;
  to: string;
  sampleRate: number;
  bot: string;
  customParameters: Record<string, string>;
  framesIn: number;
  bytesIn: number;
  badFrames: Record<string, number>;
  dtmfDigits: string;
  playout: PlayoutCounters;
  /** The bot's last turns' latencies, for bots that keep a timeline (the agent). */
  lastTurns: TurnTiming[];
}

/** Turns shown in a session's monitoring entry. */
const MONITORED_TURNS = 5;

/** Returns the monitoring view of `session`. */
export function summarizeSession(session: Session): SessionSummary {
  return {
    callId: session.callId,
    streamSid: session.streamSid,
    connectedAt: new Date(session.connectedAt).toISOString(),
    lastActivity: new Date(session.lastActivity).toISOString(),
    sequenceNumber: session.sequenceNumber,
    isActive: session.state !== "stopped",
    audioChunksBuffered: session.audioChunksBuffered,
    state: session.state,
    from: session.from,
    to: session.to,
    sampleRate: session.sampleRate,
    bot: session.bot,
    customParameters: session.customParameters,
    framesIn: session.framesIn,
    bytesIn: session.bytesIn,
    badFrames: { ...session.badFrames },
    dtmfDigits: session.dtmfDigits,
    playout: { ...session.playout },
    lastTurns: session.report?.()?.turns.slice(-MONITORED_TURNS) ?? [],
  };
}

/** Live sessions by id. */
export class SessionRegistry {
  #sessions = new Map<string, Session>();

  /** Number of live sessions. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Adds `session`. */
  add(session: Session): void {
    this.#sessions.set(session.id, session);
  }

  /** Removes the session with `id`; false when there was none. */
  remove(id: string): boolean {
    return this.#sessions.delete(id);
  }

  /** The session with `id`. */
  get(id: string): Session | undefined {
    return this.#sessions.get(id);
  }

  /** Every live session, oldest first. */
  values(): IterableIterator<Session> {
    return this.#sessions.values();
  }

  /** The sessions whose call id is `callId` (usually one). */
  findByCallId(callId: string): Session[] {
    return [...this.#sessions.values()].filter((session) =>
      session.callId === callId
    );
  }
}
