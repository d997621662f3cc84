/**
 * The barge-in guard: decides when the caller speaking over the bot means
 * "stop talking", and when it is a backchannel ("hmm", "haan", "okay") or a
 * cough that the bot should talk through. Pure.
 *
 * Duration alone cannot tell them apart: measured on the fixtures, "Hmm" and
 * "Okay" each hold 340 ms of voiced speech while "Wait," holds 300 ms. So the
 * guard interrupts on either of two signals: sustained voiced speech longer
 * than a backchannel (`minSpeechMs`), or a transcript with a word that is not
 * a backchannel (`minWords`), which catches short real interruptions such as
 * "Wait" as soon as the speech-to-text vendor reports them.
 *
 * Both signals take time, so the bot does not wait for them in silence
 * shared with the caller: after a little voice (`pauseMs`) it pauses at
 * once, and if the guard then decides it was only a backchannel it resumes,
 * from where the caller stopped hearing, once the caller has been quiet for
 * `resumeMs` or the transcript shows only acknowledgements.
 *
 * @module
 */

/** Settings of a {@linkcode BargeInGuard}. */
export interface BargeInOptions {
  /** Whether the caller may interrupt the bot at all. */
  enabled: boolean;
  /** Voiced speech, in ms, in one caller utterance that interrupts whatever was said. */
  minSpeechMs: number;
  /** Voiced speech, in ms, that pauses the bot until the guard decides; 0 never pauses. */
  pauseMs: number;
  /** Caller audio without voice, in ms, after which a pause that did not interrupt resumes. */
  resumeMs: number;
  /** Words other than backchannels, in the caller's transcript, that interrupt. */
  minWords: number;
  /** Words that never interrupt on their own, lowercase. */
  backchannels: readonly string[];
}

/**
 * Acknowledgements callers make while listening, in English, Hinglish and
 * Hindi (Latin and Devanagari script).
 */
export const DEFAULT_BACKCHANNELS: readonly string[] = [
  "hmm",
  "hm",
  "hmmm",
  "mm",
  "mmm",
  "mhm",
  "mmhmm",
  "uh",
  "huh",
  "um",
  "uhhuh",
  "ah",
  "oh",
  "ok",
  "okay",
  "okey",
  "k",
  "yes",
  "yeah",
  "yep",
  "yup",
  "right",
  "sure",
  "alright",
  "haan",
  "han",
  "haa",
  "ha",
  "ji",
  "haanji",
  "achha",
  "acha",
  "accha",
  "theek",
  "thik",
  "hai",
  "हाँ",
  "हां",
  "हम्म",
  "जी",
  "अच्छा",
  "ठीक",
  "है",
];

/**
 * The defaults: pause on 100 ms of voice; interrupt on 400 ms of voice (a
 * backchannel holds about 340 ms) or one real word; else resume after 600 ms
 * without voice, longer than the gaps between the words of one sentence
 * (400–500 ms in "Wait, stop. Actually…"), so one interruption is one pause.
 */
export const DEFAULT_BARGE_IN: BargeInOptions = {
  enabled: true,
  minSpeechMs: 400,
  pauseMs: 100,
  resumeMs: 600,
  minWords: 1,
  backchannels: DEFAULT_BACKCHANNELS,
};

/**
 * The words of `text`, lowercase, without punctuation; hyphenated and
 * apostrophised words stay whole ("uh-huh" is "uhhuh").
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(words("Uh-huh, OK. हाँ!"), ["uhhuh", "ok", "हाँ"]);
 * ```
 */
export function words(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[-'’]/g, "")
    .split(/[^\p{L}\p{M}\p{N}]+/u)
    .filter((word) => word !== "");
}

/** How many words of `text` are not in `backchannels`. */
export function substantiveWords(
  text: string,
  backchannels: readonly string[],
): number {
  const ignored = new Set(backchannels);
  return words(text).filter((word) => !ignored.has(word)).length;
}

/**
 * Whether `text` is only an acknowledgement: at least one word, every word
 * in `backchannels`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(isBackchannel("Hmm. Okay.", DEFAULT_BACKCHANNELS), true);
 * assertEquals(isBackchannel("Wait, stop.", DEFAULT_BACKCHANNELS), false);
 * assertEquals(isBackchannel("", DEFAULT_BACKCHANNELS), false); // no words at all
 * ```
 */
export function isBackchannel(
  text: string,
  backchannels: readonly string[],
): boolean {
  return words(text).length > 0 && substantiveWords(text, backchannels) === 0;
}

/** What the caller has done since the bot started its reply. */
export interface CallerActivity {
  /** Voiced speech, in ms, in the caller's current utterance since the reply began. */
  voicedMs: number;
  /** The caller's transcript since the reply began (finals and the latest partial). */
  transcript: string;
}

/**
 * Decides whether caller activity interrupts the bot.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const guard = new BargeInGuard(DEFAULT_BARGE_IN);
 * assertEquals(guard.shouldInterrupt({ voicedMs: 340, transcript: "Hmm." }), false);
 * assertEquals(guard.shouldInterrupt({ voicedMs: 300, transcript: "Wait" }), true);
 * assertEquals(guard.shouldInterrupt({ voicedMs: 420, transcript: "" }), true);
 * assertEquals(guard.shouldPause(120), true);
 * ```
 */
export class BargeInGuard {
  #options: BargeInOptions;
  #backchannels: Set<string>;

  /** Creates the guard. */
  constructor(options: BargeInOptions) {
    this.#options = options;
    this.#backchannels = new Set(options.backchannels);
  }

  /** The settings in use. */
  get options(): BargeInOptions {
    return this.#options;
  }

  /** True when `activity` is a real interruption rather than a backchannel or noise. */
  shouldInterrupt(activity: CallerActivity): boolean {
    const { enabled, minSpeechMs, minWords } = this.#options;
    if (!enabled) return false;
    if (activity.voicedMs >= minSpeechMs) return true;
    if (minWords <= 0) return false;
    const substantive = words(activity.transcript)
      .filter((word) => !this.#backchannels.has(word)).length;
    return substantive >= minWords;
  }

  /** True when `voicedMs` of caller speech should silence the bot until {@linkcode BargeInGuard.shouldInterrupt} can tell. */
  shouldPause(voicedMs: number): boolean {
    const { enabled, pauseMs } = this.#options;
    return enabled && pauseMs > 0 && voicedMs >= pauseMs;
  }
}
