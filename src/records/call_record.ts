/**
 * The record kept of every call once it ends: who called whom, how long, how
 * it ended, its counters and, with the agent, what was said and how fast.
 * Pure: built from a {@linkcode Session} and what the bot reports.
 *
 * @module
 */

import type { Session } from "../call/registry.ts";

/** The stages of a turn whose latency is measured, in the order they happen. */
export const LATENCY_STAGES = [
  "stt_final",
  "llm_first_token",
  "tts_first_byte",
  "first_media",
  "first_mark",
] as const;

/** A measured stage of a turn: the final transcript, the model's first token, … */
export type LatencyStage = typeof LATENCY_STAGES[number];

/**
 * One caller-to-bot turn's timeline: milliseconds from the end of the caller's
 * speech to each stage reached. A stage the turn never reached (cut by
 * barge-in, say) is absent.
 */
export interface TurnTiming {
  /** The turn's number in the call, from 1. */
  turn: number;
  /** Milliseconds from the end of the caller's speech, by stage. */
  latenciesMs: Partial<Record<LatencyStage, number>>;
}

/**
 * One line of a call's transcript: something said, or a tool the agent
 * called (`{"role": "tool", "name", "arguments", "outcome", "latencyMs",
 * "atMs"}`, with `text` a one-line summary for lists).
 */
export interface TranscriptEntry {
  /** Who spoke, or `tool` for a tool call. */
  role: "caller" | "bot" | "tool";
  /** What the recogniser heard (caller), what the bot said (bot), or `name → outcome` (tool). */
  text: string;
  /** Bot lines only: the part the caller actually heard before a barge-in cut it. */
  heardText?: string;
  /** Bot lines only: true when the caller barged in. */
  interrupted?: boolean;
  /** Milliseconds since the call connected, when known. */
  atMs?: number;
  /** Tool lines only: the tool. */
  name?: string;
  /** Tool lines only: its arguments, with the tool's `redact:` fields masked. */
  arguments?: unknown;
  /** Tool lines only: `ok`, `http_error`, `timeout`, `invalid_arguments`, `too_large`, `error`, `unknown_tool` or `aborted`. */
  outcome?: string;
  /** Tool lines only: how long it ran. */
  latencyMs?: number;
}

/** Where a call's audio was saved. */
export interface RecordingInfo {
  /** The WAV file: channel 1 the caller, channel 2 the bot. */
  path: string;
  /** Samples per second of both channels. */
  sampleRate: number;
  /** Audio length. */
  durationMs: number;
  /** Size of the file. */
  bytes: number;
  /**
   * True when audio was lost (the disk was full or fell behind): the file
   * is shorter than the call, by {@linkcode RecordingInfo.lostMs}.
   */
  truncated?: boolean;
  /** Milliseconds of the call missing from the file, when truncated. */
  lostMs?: number;
}

/**
 * Where a record is in its life: written `in_progress` as the call starts,
 * `completed` when it ends, `crashed` when the instance died mid-call and
 * its next start closed the record with the last counters it had saved.
 */
export type CallRecordState = "in_progress" | "completed" | "crashed";

/** How a call ended, in a bounded set fit for a metric label. */
export interface CallOutcome {
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

/** A call's counters when it ended. */
export interface CallCounters {
  /** Frames received, valid or not. */
  framesIn: number;
  /** PCM bytes received. */
  bytesIn: number;
  /** Frames skipped, by kind. */
  badFrames: Record<string, number>;
  /** Media frames sent. */
  framesOut: number;
  /** PCM bytes sent. */
  bytesOut: number;
  /** Marks sent. */
  marksSent: number;
  /** Marks Exotel echoed. */
  marksAcknowledged: number;
  /** `clear` frames sent. */
  clears: number;
  /** Times Exotel's queue ran dry mid-utterance. */
  underruns: number;
}

/** Everything kept of one ended call. */
export interface CallRecord {
  /** The session's id: unique per socket. */
  id: string;
  /** Exotel's CallSid (or the id the URL gave). */
  callId: string;
  /** Exotel's stream id. */
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
  ended: CallOutcome & { reason: string };
  /** Counters at the end. */
  counters: CallCounters;
  /** DTMF digits pressed, in order (the first {@linkcode MAX_RECORDED_DTMF_DIGITS}). */
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
  /** When the call ended, epoch ms; now by default. */
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

/** Longest end reason kept: a peer's close reason and stop reason are free text. */
const MAX_REASON_CHARS = 200;

/**
 * Builds the record of a call that ended for `reason`.
 *
 * @example
 * ```ts ignore
 * const record = buildCallRecord(call.session, "stop:callended", { instanceId: "vm-1" });
 * record.ended; // { reason: "stop:callended", outcome: "stop", detail: "callended" }
 * ```
 */
export function buildCallRecord(
  session: Session,
  reason: string,
  extras: CallRecordExtras = {},
): CallRecord {
  const endedAt = extras.endedAt ?? Date.now();
  const { playout } = session;
  const record: CallRecord = {
    id: session.id,
    callId: session.callId.slice(0, MAX_ID_CHARS),
    streamSid: session.streamSid.slice(0, MAX_ID_CHARS),
    accountSid: session.accountSid.slice(0, MAX_ID_CHARS),
    from: session.from.slice(0, MAX_NUMBER_CHARS),
    to: session.to.slice(0, MAX_NUMBER_CHARS),
    customParameters: boundedParameters(session.customParameters),
    sampleRate: session.sampleRate,
    bot: session.bot,
    remoteAddress: session.remoteAddress.slice(0, MAX_NUMBER_CHARS),
    startedAt: new Date(session.connectedAt).toISOString(),
    endedAt: new Date(endedAt).toISOString(),
    durationMs: Math.max(0, endedAt - session.connectedAt),
    ended: {
      reason: reason.slice(0, MAX_REASON_CHARS),
      ...callOutcome(reason),
    },
    counters: {
      framesIn: session.framesIn,
      bytesIn: session.bytesIn,
      badFrames: { ...session.badFrames },
      framesOut: playout.framesOut,
      bytesOut: playout.bytesOut,
      marksSent: playout.marksSent,
      marksAcknowledged: playout.marksAcknowledged,
      clears: playout.clears,
      underruns: playout.underruns,
    },
    state: extras.state ?? "completed",
    dtmfDigits: session.dtmfDigits.slice(0, MAX_RECORDED_DTMF_DIGITS),
    transcript: extras.transcript ?? [],
    turns: extras.turns ?? [],
  };
  if (extras.instanceId !== undefined) record.instanceId = extras.instanceId;
  if (extras.recording !== undefined) record.recording = extras.recording;
  return record;
}

/** Ids and numbers are short; a peer's `start` may not be: keys must stay under KV's 2 KiB. */
const MAX_ID_CHARS = 128;
const MAX_NUMBER_CHARS = 64;

/** DTMF digits a call keeps for its session and record: a flood of dtmf frames must not outgrow KV's value limit. */
export const MAX_RECORDED_DTMF_DIGITS = 1000;

/** Custom parameters kept: Exotel sends at most 3, a hostile peer may send thousands. */
const MAX_PARAMETERS = 10;
const MAX_PARAMETER_CHARS = 256;

/**
 * At most 10 custom parameters of at most 256 characters each, so that a
 * record or live entry stays under Deno KV's 64 KiB value limit whatever a
 * peer's `start` carried.
 */
export function boundedParameters(
  parameters: Record<string, string>,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(parameters).slice(0, MAX_PARAMETERS).map((
      [name, value],
    ) => [
      name.slice(0, MAX_PARAMETER_CHARS),
      String(value).slice(0, MAX_PARAMETER_CHARS),
    ]),
  );
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
export function callOutcome(reason: string): CallOutcome {
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
