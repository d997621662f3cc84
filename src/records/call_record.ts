/**
 * The record kept of every call once it ends: who called whom, how long, how
 * it ended, its counters and, with the agent, what was said and how fast.
 * Pure: a projection of the call's {@linkcode CallSnapshot} and what the
 * bot and the recorder add.
 *
 * @module
 */

import type { CallSnapshot } from "../call/call_snapshot.ts";
import type { PlayoutCounters } from "../call/player.ts";
import type { RecordingInfo } from "../call/recording.ts";
import type { TranscriptEntry, TurnTiming } from "../call/bot_report.ts";

export {
  LATENCY_STAGES,
  type LatencyStage,
  type TranscriptEntry,
  type TurnTiming,
} from "../call/bot_report.ts";
export type { RecordingInfo } from "../call/recording.ts";

/**
 * Where a record is in its life: written `in_progress` as the call starts,
 * `completed` when it ends, `crashed` when the instance died mid-call and
 * its next start closed the record with the last counters it had saved.
 */
export type CallRecordState = "in_progress" | "completed" | "crashed";

/** How a call ended, in a bounded set fit for a metric label. */
export interface CallEndOutcome {
  /**
   * `stop` (Exotel sent stop), `closed` (the socket closed without stop),
   * `hangup` (the bot hung up), `other`, or one of the server's own reasons:
   * `idle_timeout`, `handshake_timeout`, `max_call_length`,
   * `server_shutdown`, `frames_too_large`, `bot_error`, ….
   */
  outcome: string;
  /** For `stop` the stop reason, for `closed` the close code, for `hangup` the agent's reason (`end_call`, `transfer`, `rejected`, `silence`); otherwise `none`. */
  detail: string;
}

/** A call's counters when it ended: what came in, and what the player sent. */
export type CallCounters =
  & Pick<CallSnapshot, "framesIn" | "bytesIn" | "badFrames">
  & Omit<PlayoutCounters, "droppedBytes">;

/** Everything kept of one ended call: the snapshot's ids and numbers, and what it came to. */
export interface CallRecord extends
  Pick<
    CallSnapshot,
    | "id"
    | "callId"
    | "streamSid"
    | "accountSid"
    | "from"
    | "to"
    | "customParameters"
  > {
  /** Rate of the audio both ways. */
  sampleRate: number;
  /** The bot that answered. */
  bot: string;
  /** The peer's address. */
  remoteAddress: string;
  /** The instance that served the call, when several share storage. */
  instanceId?: string;
  /** When the socket was upgraded (ISO 8601). */
  startedAt: string;
  /**
   * `in_progress`, `completed` or `crashed`; records written before this
   * field existed are completed.
   */
  state?: CallRecordState;
  /**
   * When the call ended (ISO 8601); for a call in progress, when its
   * counters were last saved; for a crashed call, the last save before the
   * crash.
   */
  endedAt: string;
  /** `endedAt - startedAt`. */
  durationMs: number;
  /** How it ended: the raw reason and its bounded outcome. */
  ended: CallEndOutcome & { reason: string };
  /** Counters at the end. */
  counters: CallCounters;
  /** DTMF digits pressed, in order (the first 1000: `MAX_KEPT_DTMF_DIGITS` in `call/call_snapshot.ts`). */
  dtmfDigits: string;
  /** What was said, with the agent; empty for bots that keep none. */
  transcript: TranscriptEntry[];
  /** Per-turn latencies, with the agent. */
  turns: TurnTiming[];
  /** Where the audio was saved, when `RECORDINGS_DIR` is set. */
  recording?: RecordingInfo;
}

/** What a bot and the recorder add to a record. */
export interface CallRecordExtras {
  /**
   * When the call ended, or for a call in progress when its counters were
   * read, epoch ms; by default the snapshot's `endedAt`, else its last
   * activity.
   */
  endedAt?: number;
  /** The instance serving the call. */
  instanceId?: string;
  /** The transcript. */
  transcript?: TranscriptEntry[];
  /** Per-turn latencies. */
  turns?: TurnTiming[];
  /** The recording. */
  recording?: RecordingInfo;
  /** The record's state; `completed` by default. */
  state?: CallRecordState;
}

/** Longest end reason kept: a peer's close reason is free text. */
const MAX_REASON_CHARS = 200;

/**
 * Projects a call's snapshot to the record kept of it, ended for `reason`.
 * The snapshot's peer strings were bounded where they were parsed, so the
 * record stays under Deno KV's limits as it is.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const record = buildCallRecord({
 *   id: "0b6e", callId: "CA1", streamSid: "ST1", accountSid: "AC1",
 *   from: "+919800000001", to: "08012345678", customParameters: {},
 *   sampleRate: 8000, encoding: "pcm", bot: "echo", remoteAddress: "127.0.0.1",
 *   connectedAt: 0, lastActivity: 59_000, endedAt: 60_000,
 *   sequenceNumber: 7, state: "stopped", framesIn: 6, bytesIn: 19200,
 *   badFrames: {}, audioChunksBuffered: 0, dtmfDigits: "",
 *   playout: { framesOut: 6, bytesOut: 19200, marksSent: 1, marksAcknowledged: 1, clears: 0, underruns: 0, droppedBytes: 0 },
 * }, "stop:callended", { instanceId: "vm-1" });
 * assertEquals(record.ended, { reason: "stop:callended", outcome: "stop", detail: "callended" });
 * assertEquals(record.durationMs, 60_000);
 * ```
 */
export function buildCallRecord(
  snapshot: CallSnapshot,
  reason: string,
  extras: CallRecordExtras = {},
): CallRecord {
  const endedAt = extras.endedAt ?? snapshot.endedAt ?? snapshot.lastActivity;
  const { playout } = snapshot;
  const record: CallRecord = {
    id: snapshot.id,
    callId: snapshot.callId,
    streamSid: snapshot.streamSid,
    accountSid: snapshot.accountSid,
    from: snapshot.from,
    to: snapshot.to,
    customParameters: { ...snapshot.customParameters },
    sampleRate: snapshot.sampleRate,
    bot: snapshot.bot,
    remoteAddress: snapshot.remoteAddress,
    startedAt: new Date(snapshot.connectedAt).toISOString(),
    endedAt: new Date(endedAt).toISOString(),
    durationMs: Math.max(0, endedAt - snapshot.connectedAt),
    ended: {
      reason: reason.slice(0, MAX_REASON_CHARS),
      ...callOutcome(reason),
    },
    counters: {
      framesIn: snapshot.framesIn,
      bytesIn: snapshot.bytesIn,
      badFrames: { ...snapshot.badFrames },
      framesOut: playout.framesOut,
      bytesOut: playout.bytesOut,
      marksSent: playout.marksSent,
      marksAcknowledged: playout.marksAcknowledged,
      clears: playout.clears,
      underruns: playout.underruns,
    },
    state: extras.state ?? "completed",
    dtmfDigits: snapshot.dtmfDigits,
    transcript: extras.transcript ?? [],
    turns: extras.turns ?? [],
  };
  if (extras.instanceId !== undefined) record.instanceId = extras.instanceId;
  if (extras.recording !== undefined) record.recording = extras.recording;
  return record;
}

/** Stop reasons Exotel is known to send; any other becomes `other`. */
const KNOWN_STOP_REASONS = new Set([
  "callended",
  "stopped",
  "caller_hangup",
  "hangup",
  "completed",
]);

/** Why the agent hangs up: the model's tools, the setup webhook's reject, a silent caller. */
const BOT_REASONS = new Set(["end_call", "transfer", "rejected", "silence"]);

/** The server's own reasons are code constants: plain snake_case words. */
const PLAIN_REASON = /^[a-z][a-z0-9_]{0,31}$/;

/**
 * Maps a free-text end reason (`stop:callended`, `closed:1006`,
 * `bot:goodbye`, `idle_timeout`, …) to a bounded outcome, so that a metric
 * labelled with it cannot grow without end whatever a peer sends.
 *
 * @example
 * ```ts
 * callOutcome("closed:1006 abnormal"); // { outcome: "closed", detail: "1006" }
 * callOutcome("stop:Weird Reason"); // { outcome: "stop", detail: "other" }
 * ```
 */
export function callOutcome(reason: string): CallEndOutcome {
  const colon = reason.indexOf(":");
  const head = colon === -1 ? reason : reason.slice(0, colon);
  const rest = colon === -1 ? "" : reason.slice(colon + 1).trim();
  switch (head) {
    case "stop": {
      const stopReason = rest.toLowerCase();
      return {
        outcome: "stop",
        detail: stopReason === ""
          ? "none"
          : KNOWN_STOP_REASONS.has(stopReason)
          ? stopReason
          : "other",
      };
    }
    case "closed":
      return { outcome: "closed", detail: closeCodeClass(rest.split(" ")[0]) };
    case "bot":
      // A bot's reason may come from a language model: only the agent's own
      // reasons become a label.
      return {
        outcome: "hangup",
        detail: BOT_REASONS.has(rest) ? rest : "none",
      };
  }
  if (colon === -1 && PLAIN_REASON.test(reason)) {
    return { outcome: reason, detail: "none" };
  }
  return { outcome: "other", detail: "none" };
}

function closeCodeClass(text: string): string {
  if (!/^\d{4}$/.test(text)) return "other";
  const code = Number(text);
  if (code >= 1000 && code <= 1015) return text;
  if (code >= 3000 && code <= 3999) return "3xxx";
  if (code >= 4000 && code <= 4999) return "4xxx";
  return "other";
}

/**
 * The last ten digits of a phone number, so that `+919876543210`,
 * `09876543210` and `9876543210` find the same calls. Empty when the text
 * holds no digits.
 */
export function numberKey(number: string): string {
  return number.replace(/\D/g, "").slice(-10);
}

/** The end reason (and outcome) of a call its instance died during. */
export const CRASHED_REASON = "instance_crashed";

/**
 * Closes the in-progress record of a call whose instance died mid-call: its
 * end is the last time its counters were saved, its counters those saved
 * then, its state `crashed`.
 *
 * @example
 * ```ts ignore
 * const closed = crashedRecord(inProgress);
 * closed.ended; // { reason: "instance_crashed", outcome: "instance_crashed", detail: "none" }
 * ```
 */
export function crashedRecord<
  T extends CallRecord | Omit<CallRecord, "transcript" | "turns">,
>(
  record: T,
): T {
  return {
    ...record,
    state: "crashed",
    ended: { reason: CRASHED_REASON, ...callOutcome(CRASHED_REASON) },
  };
}
