/**
 * The conversation the language model sees, and what of the bot's own words
 * goes into it: only what the caller actually heard. Pure.
 *
 * @module
 */

import type {
  ChatMessage,
  ToolCall,
} from "../../providers/llm/language_model.ts";

/** One spoken piece of a bot reply (one mark), as far as it was played. */
export interface HeardPiece {
  /** What the piece says. */
  text: string;
  /** Whether Exotel confirmed the whole piece with its mark. */
  played: boolean;
  /** How much of it the caller heard, in ms. */
  heardMs: number;
  /** How long the piece's audio is, in ms (0 when unknown). */
  totalMs: number;
}

/** Appended to a piece cut off by the caller, so the model knows it was. */
export const CUT_OFF_MARK = "…";

/**
 * The part of a reply the caller heard: every piece up to the first one not
 * played to its mark, then the share of that piece's words its heard time
 * covers, marked as cut off.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(
 *   heardText([
 *     { text: "Sure.", played: true, heardMs: 400, totalMs: 400 },
 *     { text: "Your table is booked for seven.", played: false, heardMs: 600, totalMs: 1200 },
 *   ]),
 *   "Sure. Your table is…",
 * );
 * ```
 */
export function heardText(pieces: readonly HeardPiece[]): string {
  const heard: string[] = [];
  for (const piece of pieces) {
    if (piece.played) {
      heard.push(piece.text);
      continue;
    }
    if (piece.heardMs > 0 && piece.totalMs > 0) {
      const pieceWords = piece.text.split(/\s+/).filter(Boolean);
      const share = Math.min(1, piece.heardMs / piece.totalMs);
      const count = Math.floor(pieceWords.length * share);
      if (count >= pieceWords.length) heard.push(piece.text);
      else if (count > 0) {
        const prefix = pieceWords.slice(0, count).join(" ")
          .replace(/[\s,;:.!?—-]+$/u, "");
        heard.push(`${prefix}${CUT_OFF_MARK}`);
      }
    }
    break;
  }
  return heard.join(" ");
}

/** Options of a {@linkcode Conversation}. */
export interface ConversationOptions {
  /** Messages kept besides the system prompt; older ones are dropped. Default 40. */
  maxMessages?: number;
}

/**
 * A call's chat history: the system prompt plus the latest messages.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const conversation = new Conversation("You are a receptionist.");
 * conversation.addAssistant("Hello! How can I help?");
 * conversation.addUser("Book a table.");
 * assertEquals(conversation.messages(), [
 *   { role: "system", content: "You are a receptionist." },
 *   { role: "assistant", content: "Hello! How can I help?" },
 *   { role: "user", content: "Book a table." },
 * ]);
 * ```
 */
export class Conversation {
  #system: string;
  #messages: ChatMessage[] = [];
  #maxMessages: number;

  /** Starts a conversation under `systemPrompt`. */
  constructor(systemPrompt: string, options: ConversationOptions = {}) {
    this.#system = systemPrompt;
    this.#maxMessages = Math.max(2, options.maxMessages ?? 40);
  }

  /** Replaces the system prompt (once the call's details have filled its template). */
  set systemPrompt(text: string) {
    this.#system = text;
  }

  /**
   * A standing instruction after the system prompt, e.g. the language the
   * caller now speaks; empty for none. Kept when old messages are dropped.
   */
  note = "";

  /** Adds what the caller said (or pressed). */
  addUser(text: string): void {
    this.#push({ role: "user", content: text });
  }

  /** Adds what the bot said, and the tools it called, if any. */
  addAssistant(text: string, toolCalls: ToolCall[] = []): void {
    if (text === "" && toolCalls.length === 0) return;
    this.#push(
      toolCalls.length > 0
        ? { role: "assistant", content: text, toolCalls }
        : { role: "assistant", content: text },
    );
  }

  /** Adds the result of a tool call. */
  addToolResult(toolCallId: string, content: string): void {
    this.#push({ role: "tool", toolCallId, content });
  }

  /** The messages to send: the system prompt, then the history. */
  messages(): ChatMessage[] {
    const system = this.note === ""
      ? this.#system
      : `${this.#system}\n\n${this.note}`;
    return [{ role: "system", content: system }, ...this.#messages];
  }

  /** The history without the system prompt, oldest first. */
  history(): readonly ChatMessage[] {
    return this.#messages;
  }

  #push(message: ChatMessage): void {
    this.#messages.push(message);
    if (this.#messages.length <= this.#maxMessages) return;
    this.#messages.splice(0, this.#messages.length - this.#maxMessages);
    // A tool result or reply without what led to it confuses the model (and
    // OpenAI rejects a tool message without its call): start at a user turn.
    const firstUser = this.#messages.findIndex((m) => m.role === "user");
    if (firstUser > 0) this.#messages.splice(0, firstUser);
  }
}
