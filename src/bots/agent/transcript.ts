/**
 * The whole call's transcript and turn timings, for its record: unlike the
 * conversation the model sees, nothing is dropped until a long call reaches
 * the bound. Pure.
 *
 * @module
 */

import type { TranscriptEntry, TurnTiming } from "../bot.ts";

/** Entries kept in one call's record: about two hours of brisk conversation. */
export const MAX_TRANSCRIPT_ENTRIES = 2000;

/**
 * What was said on a call, each line with its time since the call started.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const log = new CallTranscript();
 * log.caller("Book a table.", 4200);
 * log.bot({ said: "Sure. For how many people?", heard: "Sure.", interrupted: true }, 5100);
 * assertEquals(log.entries().map((entry) => entry.role), ["caller", "bot"]);
 * ```
 */
export class CallTranscript {
  #entries: TranscriptEntry[] = [];
  #turns: TurnTiming[] = [];
  #limit: number;

  /** Keeps at most `limit` lines and as many turn timings. */
  constructor(limit = MAX_TRANSCRIPT_ENTRIES) {
    this.#limit = Math.max(1, limit);
  }

  /** A caller turn, as transcribed. */
  caller(text: string, atMs: number): void {
    this.#add({ role: "caller", text, atMs: Math.round(atMs) });
  }

  /** A bot reply: what it said and, when that is not what the caller heard (cut off, or a fallback line instead), what they heard. */
  bot(
    reply: { said: string; heard: string; interrupted: boolean },
    atMs: number,
  ): void {
    if (reply.said === "" && reply.heard === "") return;
    const entry: TranscriptEntry = {
      role: "bot",
      text: reply.said || reply.heard,
      atMs: Math.round(atMs),
    };
    if (reply.interrupted) entry.interrupted = true;
    if (reply.heard !== entry.text) entry.heardText = reply.heard;
    this.#add(entry);
  }

  /** A tool call the agent ran. */
  tool(entry: {
    name: string;
    arguments: unknown;
    outcome: string;
    latencyMs: number;
    atMs: number;
  }): void {
    this.#add({
      role: "tool",
      text: `${entry.name} → ${entry.outcome}`,
      name: entry.name,
      arguments: entry.arguments,
      outcome: entry.outcome,
      latencyMs: Math.round(entry.latencyMs),
      atMs: Math.round(entry.atMs),
    });
  }

  /** A finished turn's timings. */
  turn(timing: TurnTiming): void {
    this.#turns.push(timing);
    if (this.#turns.length > this.#limit) this.#turns.shift();
  }

  /** The lines so far, oldest first. */
  entries(): TranscriptEntry[] {
    return [...this.#entries];
  }

  /** The turn timings so far, oldest first. */
  turns(): TurnTiming[] {
    return [...this.#turns];
  }

  #add(entry: TranscriptEntry): void {
    this.#entries.push(entry);
    if (this.#entries.length > this.#limit) this.#entries.shift();
  }
}
