/**
 * The session map: one entry per live call, for monitoring and cleanup.
 * Pure: no timers, no sockets.
 *
 * A {@linkcode Session} is a call's {@linkcode CallSnapshot}, kept up to
 * date in place by the call, with hooks to reach the call.
 *
 * @module
 */

import type { BotLiveState, BotReport } from "./bot_report.ts";
import type { CallSnapshot } from "./call_snapshot.ts";

/**
 * One live call as its `Call` (`call.ts`) keeps it: its snapshot, updated in
 * place (read it as a {@linkcode CallSnapshot}), and the hooks monitoring
 * reaches the call through.
 */
export interface Session extends CallSnapshot {
  /** Unique id of this WebSocket session (a call may reconnect with the same call id). */
  readonly id: string;
  /** Epoch ms of the upgrade. */
  readonly connectedAt: number;
  /** The bot's transcript and per-turn timings so far, for bots that keep them. */
  report?(): BotReport | undefined;
  /** What the bot is doing now, for bots that say. */
  live?(): BotLiveState | undefined;
  /** Ends the call: closes the socket (code 1000 unless given) and cleans up. */
  end(reason: string, closeCode?: number): void;
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
