/**
 * The console's view of live calls: while someone watches, it looks at every
 * live session a few times a second and tells its subscribers what changed.
 * Nobody watching costs nothing, and the call's per-frame path never sees it.
 *
 * @module
 */

import { type Cancel, type Clock, repeat, systemClock } from "../call/clock.ts";
import type { Session, SessionRegistry } from "../call/registry.ts";
import type { BotLiveState } from "../bots/bot.ts";
import { maskPhoneNumber } from "../log.ts";
import type { TranscriptEntry, TurnTiming } from "../records/call_record.ts";

/** A live call as the console shows it. */
export interface LiveCallView {
  /** The session's id (the record's id once it ends). */
  id: string;
  /** Exotel's CallSid, or the id the URL gave. */
  callId: string;
  /** The caller's number, masked as in the logs. */
  from: string;
  /** The number called, masked as in the logs. */
  to: string;
  /** The bot's name. */
  bot: string;
  /** The call's audio rate. */
  sampleRate: number;
  /** When the socket connected (ISO 8601). */
  startedAt: string;
  /** `connecting` until `start`, then what the bot is doing (`listening` for bots that do not say). */
  activity: BotLiveState["activity"] | "connecting";
  /** The caller's words not answered yet. */
  partial: string;
  /** What was said so far, the last {@linkcode LIVE_TRANSCRIPT_LINES} lines. */
  transcript: TranscriptEntry[];
  /** The last turns' latencies by stage. */
  turns: TurnTiming[];
  /** Times the caller cut the bot off. */
  bargeIns: number;
  /** `clear` frames sent to Exotel. */
  clears: number;
  /** Keypad digits pressed. */
  dtmfDigits: string;
}

/** What a subscriber hears. */
export type LiveFeedEvent =
  | { type: "snapshot"; calls: LiveCallView[] }
  | { type: "call"; call: LiveCallView }
  | { type: "ended"; id: string };

/** Lines of transcript a live view carries. */
export const LIVE_TRANSCRIPT_LINES = 30;
/** Turns a live view carries. */
const LIVE_TURNS = 8;

/** Options of {@linkcode LiveFeed}. */
export interface LiveFeedOptions {
  /** How often sessions are looked at while someone watches (default 250 ms). */
  intervalMs?: number;
  /** The clock the looks are timed on; the system clock by default. */
  clock?: Clock;
}

/** Returns the console's view of `session`. */
export function viewSession(session: Session): LiveCallView {
  const report = session.report?.();
  const live = session.live?.();
  const transcript = report?.transcript ?? [];
  return {
    id: session.id,
    callId: session.callId,
    from: maskNumber(session.from),
    to: maskNumber(session.to),
    bot: session.bot,
    sampleRate: session.sampleRate,
    startedAt: new Date(session.connectedAt).toISOString(),
    activity: session.state === "connected"
      ? "connecting"
      : live?.activity ?? "listening",
    partial: live?.partial ?? "",
    transcript: transcript.slice(-LIVE_TRANSCRIPT_LINES),
    turns: report?.turns.slice(-LIVE_TURNS) ?? [],
    bargeIns: transcript.filter((entry) => entry.interrupted).length,
    clears: session.playout.clears,
    dtmfDigits: session.dtmfDigits,
  };
}

/** A phone number masked as in the logs; a name such as the softphone's `browser` as it is. */
function maskNumber(text: string): string {
  return /\d{5}/.test(text) ? maskPhoneNumber(text) : text;
}

/**
 * Publishes changes to live calls to whoever subscribed.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { SessionRegistry } from "../call/registry.ts";
 * import { LiveFeed, type LiveFeedEvent } from "./live_feed.ts";
 * const feed = new LiveFeed(new SessionRegistry());
 * const events: LiveFeedEvent[] = [];
 * const unsubscribe = feed.subscribe((event) => events.push(event));
 * // A subscriber gets the calls live now at once, then every change.
 * assertEquals(events, [{ type: "snapshot", calls: [] }]);
 * unsubscribe(); // the last one out stops the feed's timer
 * assertEquals(feed.size, 0);
 * ```
 */
export class LiveFeed {
  #registry: SessionRegistry;
  #intervalMs: number;
  #listeners = new Set<(event: LiveFeedEvent) => void>();
  #clock: Clock;
  #stopLooking: Cancel | undefined;
  /** The last view sent of each call, as JSON. */
  #sent = new Map<string, string>();

  /** Watches `registry` while anyone subscribes. */
  constructor(registry: SessionRegistry, options: LiveFeedOptions = {}) {
    this.#registry = registry;
    this.#intervalMs = options.intervalMs ?? 250;
    this.#clock = options.clock ?? systemClock;
  }

  /** Subscribers now. */
  get size(): number {
    return this.#listeners.size;
  }

  /** Calls `listener` with a snapshot now and with every change after; returns the unsubscribe. */
  subscribe(listener: (event: LiveFeedEvent) => void): () => void {
    if (this.#listeners.size === 0) {
      this.#sent.clear();
      this.#stopLooking = repeat(this.#clock, () => this.#tick(), {
        everyMs: this.#intervalMs,
      });
    }
    this.#listeners.add(listener);
    const calls = [...this.#registry.values()].map(viewSession);
    listener({ type: "snapshot", calls });
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#stop();
    };
  }

  /** Drops every subscriber and stops looking. */
  close(): void {
    this.#listeners.clear();
    this.#stop();
  }

  #stop(): void {
    this.#stopLooking?.();
    this.#stopLooking = undefined;
    this.#sent.clear();
  }

  #tick(): void {
    const seen = new Set<string>();
    for (const session of this.#registry.values()) {
      seen.add(session.id);
      const call = viewSession(session);
      const json = JSON.stringify(call);
      if (this.#sent.get(session.id) === json) continue;
      this.#sent.set(session.id, json);
      this.#emit({ type: "call", call });
    }
    for (const id of this.#sent.keys()) {
      if (seen.has(id)) continue;
      this.#sent.delete(id);
      this.#emit({ type: "ended", id });
    }
  }

  #emit(event: LiveFeedEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}
