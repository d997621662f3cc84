/**
 * Who may use the console: login sessions (an opaque id in an HttpOnly
 * cookie, never the admin token itself) and the single-use tokens the
 * softphone dials the voicebot socket with. In memory, per instance: a
 * restart logs everyone out, which is the safe failure.
 *
 * @module
 */

import { type Clock, systemClock } from "../call/clock.ts";

/** How long a console login lasts without use. */
export const SESSION_IDLE_MS = 30 * 60_000;
/** How long a console login lasts at most, used or not. */
export const SESSION_MAX_MS = 12 * 60 * 60_000;
/** How long a softphone token may wait before it is used. */
export const SOFTPHONE_TOKEN_MS = 60_000;
/** Logins and tokens kept at most; the oldest go first. */
const MAX_ENTRIES = 1000;

/** What a softphone token allows: one call to one bot at one rate. */
export interface SoftphoneGrant {
  /** The bot the call goes to. */
  bot: string;
  /** The call's sample rate. */
  sampleRate: number;
  /** The call id put on the socket URL. */
  callId: string;
}

interface Login {
  createdAt: number;
  lastUsedAt: number;
}

/** Options of {@linkcode ConsoleSessions}. */
export interface ConsoleSessionsOptions {
  /** The clock logins and tokens expire on; the system clock by default. */
  clock?: Clock;
}

/**
 * Console logins and softphone tokens.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ConsoleSessions } from "./console_sessions.ts";
 * const sessions = new ConsoleSessions();
 * const id = sessions.login();
 * assertEquals(sessions.isValid(id), true);
 * sessions.logout(id);
 * assertEquals(sessions.isValid(id), false);
 * ```
 */
export class ConsoleSessions {
  #logins = new Map<string, Login>();
  #tokens = new Map<string, SoftphoneGrant & { expiresAt: number }>();
  #clock: Clock;

  /** Creates an empty store. */
  constructor(options: ConsoleSessionsOptions = {}) {
    this.#clock = options.clock ?? systemClock;
  }

  /** Starts a login and returns its id, for the session cookie. */
  login(): string {
    const id = randomId();
    const now = this.#clock.epochMs();
    this.#prune(now);
    this.#logins.set(id, { createdAt: now, lastUsedAt: now });
    return id;
  }

  /** Whether `id` is a live login; a valid one counts as used now. */
  isValid(id: string | undefined): boolean {
    if (id === undefined) return false;
    const login = this.#logins.get(id);
    if (login === undefined) return false;
    const now = this.#clock.epochMs();
    if (
      now - login.lastUsedAt > SESSION_IDLE_MS ||
      now - login.createdAt > SESSION_MAX_MS
    ) {
      this.#logins.delete(id);
      return false;
    }
    login.lastUsedAt = now;
    return true;
  }

  /** Ends the login `id`. */
  logout(id: string | undefined): void {
    if (id !== undefined) this.#logins.delete(id);
  }

  /** Mints a single-use softphone token for `grant`, valid {@linkcode SOFTPHONE_TOKEN_MS}. */
  mintSoftphoneToken(grant: SoftphoneGrant): string {
    const token = randomId();
    const now = this.#clock.epochMs();
    this.#prune(now);
    this.#tokens.set(token, { ...grant, expiresAt: now + SOFTPHONE_TOKEN_MS });
    return token;
  }

  /** Uses up `token`: its grant when it was valid, else undefined. */
  redeemSoftphoneToken(token: string): SoftphoneGrant | undefined {
    const entry = this.#tokens.get(token);
    if (entry === undefined) return undefined;
    this.#tokens.delete(token);
    if (entry.expiresAt < this.#clock.epochMs()) return undefined;
    const { bot, sampleRate, callId } = entry;
    return { bot, sampleRate, callId };
  }

  #prune(now: number): void {
    for (const [token, entry] of this.#tokens) {
      if (entry.expiresAt < now) this.#tokens.delete(token);
    }
    for (const [id, login] of this.#logins) {
      if (
        now - login.lastUsedAt > SESSION_IDLE_MS ||
        now - login.createdAt > SESSION_MAX_MS
      ) this.#logins.delete(id);
    }
    for (const map of [this.#tokens, this.#logins]) {
      while (map.size >= MAX_ENTRIES) {
        map.delete(map.keys().next().value!);
      }
    }
  }
}

function randomId(): string {
  return crypto.getRandomValues(new Uint8Array(32)).toBase64({
    alphabet: "base64url",
    omitPadding: true,
  });
}
