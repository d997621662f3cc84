/**
 * When the caller's turn is over, and what they said: the speech-to-text
 * vendor's own endpointing first, the voice-activity detector as the
 * fallback when the vendor's end of turn does not come. I/O-free: timers
 * come from a {@linkcode Clock}.
 *
 * @module
 */

import type { Cancel, Clock } from "../../call/clock.ts";

/** A finished caller turn. */
export interface CallerTurn {
  /** What the caller said; empty when the detector heard speech but no transcript came. */
  text: string;
  /** What ended it: the vendor's endpointing, or the detector's silence. */
  trigger: "stt" | "vad";
  /** When the last final transcript of the turn arrived (clock time), if one did. */
  finalAt?: number;
}

/** Options of a {@linkcode TurnDetector}. */
export interface TurnDetectorOptions {
  /** Time and timers. */
  clock: Clock;
  /** After the detector hears the caller stop, how long to wait for the vendor's end of turn. */
  timeoutMs: number;
  /** Called with each finished turn. */
  onTurn(turn: CallerTurn): void;
}

/**
 * Gathers transcripts into caller turns.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { FakeClock } from "../../../tests/fakes/clock.ts";
 *
 * const clock = new FakeClock();
 * const heard: CallerTurn[] = [];
 * const turns = new TurnDetector({ clock, timeoutMs: 1000, onTurn: (turn) => heard.push(turn) });
 * turns.final("Book a table", false);
 * turns.endOfTurn(); // the vendor's endpointing
 * assertEquals(heard, [{ text: "Book a table", trigger: "stt", finalAt: clock.now() }]);
 *
 * // No end of turn from the vendor: the detector's silence ends it after the timeout.
 * turns.speechStarted();
 * turns.partial("for two");
 * turns.speechEnded();
 * await clock.advance(1000);
 * assertEquals(heard[1], { text: "for two", trigger: "vad" });
 * ```
 */
export class TurnDetector {
  #options: TurnDetectorOptions;
  #finals: string[] = [];
  #partial = "";
  #finalAt: number | undefined;
  #cancelTimeout: Cancel | undefined;
  /**
   * The detector ended a turn on partials: finals still coming for it are
   * dropped until the caller speaks again, or they would be a second turn.
   */
  #staleUntilSpeech = false;

  /** Creates a detector. */
  constructor(options: TurnDetectorOptions) {
    this.#options = options;
  }

  /** What the caller has said in the turn so far: its finals and the latest partial. */
  get text(): string {
    return [...this.#finals, this.#partial].filter(Boolean).join(" ");
  }

  /**
   * The caller's final words not answered yet, for the record when the call
   * ends first; `staleFinals` while finals still coming belong to a turn
   * already ended on partials.
   */
  get unanswered(): { text: string; staleFinals: boolean } {
    return {
      text: this.#finals.join(" "),
      staleFinals: this.#staleUntilSpeech,
    };
  }

  /** The vendor's interim transcript of what is being said. */
  partial(text: string): void {
    if (this.#staleUntilSpeech) return;
    this.#partial = text;
  }

  /** A final transcript; `endOfTurn` when the vendor judged the turn over. */
  final(text: string, endOfTurn: boolean): void {
    if (this.#staleUntilSpeech) return;
    if (text !== "") {
      this.#finals.push(text);
      this.#finalAt = this.#options.clock.now();
    }
    this.#partial = "";
    if (endOfTurn) this.endOfTurn();
  }

  /** The vendor judged the turn over; ignored when nothing was transcribed. */
  endOfTurn(): void {
    if (this.#finals.length === 0) return;
    this.#end("stt");
  }

  /** The detector heard the caller start (again): any fallback wait is off. */
  speechStarted(): void {
    this.#staleUntilSpeech = false;
    this.#cancel();
  }

  /**
   * The detector heard the caller stop: unless the vendor ends the turn
   * first, it ends after the timeout with what was transcribed (possibly
   * nothing).
   */
  speechEnded(): void {
    this.#cancel();
    this.#cancelTimeout = this.#options.clock.schedule(() => {
      this.#cancelTimeout = undefined;
      this.#end("vad");
    }, this.#options.timeoutMs);
  }

  /** Forgets the turn in progress and stops the timer. */
  reset(): void {
    this.#cancel();
    this.#finals = [];
    this.#partial = "";
    this.#finalAt = undefined;
  }

  #end(trigger: "stt" | "vad"): void {
    const turn: CallerTurn = { text: this.text, trigger };
    if (this.#finalAt !== undefined) turn.finalAt = this.#finalAt;
    this.reset();
    this.#staleUntilSpeech = trigger === "vad" && turn.text !== "";
    this.#options.onTurn(turn);
  }

  #cancel(): void {
    this.#cancelTimeout?.();
    this.#cancelTimeout = undefined;
  }
}
