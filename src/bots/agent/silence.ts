/**
 * What the agent does when the caller goes quiet: after
 * `AGENT_SILENCE_REPROMPT_S` of silence from the moment the bot's last
 * audio was played, it asks "Are you still there?", up to
 * `AGENT_SILENCE_REPROMPTS` times, each after the same silence; after the
 * last one's silence it says goodbye and ends the call. A clock-driven
 * state machine, I/O-free: the agent tells it when the line is idle and
 * when anything happens, and it says when to re-prompt and when to give up.
 *
 * @module
 */

import type { Cancel, Clock } from "../../call/clock.ts";

/** Silence settings; see `config.ts`. */
export interface SilenceConfig {
  /** `AGENT_SILENCE_REPROMPT_S`: silence, in seconds, before each re-prompt; 0 turns re-prompts and the silence hang-up off. */
  repromptS: number;
  /** `AGENT_SILENCE_REPROMPTS`: re-prompts before the goodbye. */
  reprompts: number;
  /** `AGENT_REPROMPT_TEXT`; the default of the call's language when absent. */
  repromptText?: string;
  /** `AGENT_SILENCE_GOODBYE_TEXT`; the default of the call's language when absent. */
  goodbyeText?: string;
}

/** The defaults: re-prompt after 8 s, twice, then goodbye. */
export const DEFAULT_SILENCE: SilenceConfig = { repromptS: 8, reprompts: 2 };

/** Default lines per language (the primary subtag); English for the rest. */
const DEFAULT_LINES: Record<string, { reprompt: string; goodbye: string }> = {
  en: {
    reprompt: "Are you still there?",
    goodbye: "I haven't heard from you, so I'll end the call now. Goodbye!",
  },
  hi: {
    reprompt: "क्या आप अभी भी लाइन पर हैं?",
    goodbye:
      "आपकी आवाज़ नहीं आ रही है, इसलिए यह कॉल अब समाप्त की जा रही है। धन्यवाद!",
  },
};

/**
 * The re-prompt and goodbye lines for a call in `language`: the configured
 * ones, else the language's defaults (English and Hindi), else English.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(
 *   silenceLines({ repromptS: 8, reprompts: 2 }, "hi-IN").reprompt,
 *   "क्या आप अभी भी लाइन पर हैं?",
 * );
 * assertEquals(
 *   silenceLines({ repromptS: 8, reprompts: 2, repromptText: "Hello?" }, "en-IN").reprompt,
 *   "Hello?",
 * );
 * // A language without defaults of its own gets the English lines.
 * assertEquals(silenceLines(DEFAULT_SILENCE, "ta-IN").reprompt, "Are you still there?");
 * ```
 */
export function silenceLines(
  config: SilenceConfig,
  language: string,
): { reprompt: string; goodbye: string } {
  const primary = language.split("-")[0].toLowerCase();
  const defaults = DEFAULT_LINES[primary] ?? DEFAULT_LINES.en;
  return {
    reprompt: config.repromptText ?? defaults.reprompt,
    goodbye: config.goodbyeText ?? defaults.goodbye,
  };
}

/** Options of a {@linkcode SilenceWatch}. */
export interface SilenceWatchOptions {
  /** Time and timers. */
  clock: Clock;
  /** The settings. */
  config: SilenceConfig;
  /**
   * Whether the line is still idle when the silence has run out; when not,
   * nothing is said or counted until the next {@linkcode SilenceWatch.idle}.
   */
  ready?(): boolean;
  /** Time to re-prompt; `count` is 1 for the first. */
  onReprompt(count: number): void;
  /** The last re-prompt went unanswered: say goodbye and end the call. */
  onGiveUp(): void;
}

/**
 * Counts the caller's silence after the bot has finished.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { FakeClock } from "../../../tests/fakes/clock.ts";
 *
 * const clock = new FakeClock();
 * const said: string[] = [];
 * const watch = new SilenceWatch({
 *   clock,
 *   config: DEFAULT_SILENCE, // 8 s, two re-prompts
 *   onReprompt: (count) => said.push(`reprompt ${count}`),
 *   onGiveUp: () => said.push("goodbye"),
 * });
 * watch.idle(); // the bot's last audio played
 * await clock.advance(8000);
 * assertEquals(said, ["reprompt 1"]);
 * watch.busy(); // the bot says the re-prompt: no timer
 * assertEquals(watch.waiting, false);
 * watch.idle();
 * await clock.advance(8000);
 * watch.idle();
 * await clock.advance(8000);
 * assertEquals(said, ["reprompt 1", "reprompt 2", "goodbye"]);
 * watch.answered(); // a caller turn: the count starts over
 * assertEquals(watch.reprompts, 0);
 * watch.stop();
 * ```
 */
export class SilenceWatch {
  #options: SilenceWatchOptions;
  #cancel: Cancel | undefined;
  #reprompts = 0;
  #stopped = false;

  /** Creates the watch; nothing runs before {@linkcode SilenceWatch.idle}. */
  constructor(options: SilenceWatchOptions) {
    this.#options = options;
  }

  /** Whether it is off (`AGENT_SILENCE_REPROMPT_S=0`). */
  get enabled(): boolean {
    return this.#options.config.repromptS > 0;
  }

  /** Re-prompts said since the caller last took a turn. */
  get reprompts(): number {
    return this.#reprompts;
  }

  /** Whether the silence timer runs. */
  get waiting(): boolean {
    return this.#cancel !== undefined;
  }

  /**
   * The bot's last audio has been played and the caller is quiet: the
   * silence starts now (again, if it was already counting).
   */
  idle(): void {
    this.#clear();
    if (this.#stopped || !this.enabled) return;
    this.#cancel = this.#options.clock.schedule(
      () => this.#elapsed(),
      this.#options.config.repromptS * 1000,
    );
  }

  /** Something is going on (the caller speaks, the bot prepares or says something): no silence counts. */
  busy(): void {
    this.#clear();
  }

  /** The caller took a turn: the re-prompt count starts over. */
  answered(): void {
    this.#reprompts = 0;
    this.#clear();
  }

  /** The call is over. */
  stop(): void {
    this.#stopped = true;
    this.#clear();
  }

  #elapsed(): void {
    this.#cancel = undefined;
    if (this.#stopped || this.#options.ready?.() === false) return;
    if (this.#reprompts < this.#options.config.reprompts) {
      this.#reprompts++;
      this.#options.onReprompt(this.#reprompts);
    } else {
      // Not stopped: a caller who answers the goodbye goes on talking.
      this.#options.onGiveUp();
    }
  }

  #clear(): void {
    this.#cancel?.();
    this.#cancel = undefined;
  }
}
