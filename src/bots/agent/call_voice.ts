/**
 * A call's language and the voice that speaks it: the agent's, then the
 * setup webhook's choice, then each language the caller switches to (one of
 * `AGENT_LANGUAGES`), with that language's voice from `TTS_VOICES` when it
 * has one. A voice the vendor cannot make is logged and the current one
 * serves.
 *
 * @module
 */

import type { TextToSpeech } from "../../providers/tts/text_to_speech.ts";

/** Where a {@linkcode CallVoice} reports (a logtape `Logger` is one). */
export interface CallVoiceLog {
  /** A switch happened. */
  info(message: string, properties: Record<string, unknown>): void;
  /** A voice could not be made. */
  warn(message: string, properties: Record<string, unknown>): void;
}

/** Options of a {@linkcode CallVoice}. */
export interface CallVoiceOptions {
  /** The agent's voice. */
  tts: TextToSpeech;
  /** The agent's language. */
  language: string;
  /** `AGENT_LANGUAGES`: the languages the caller may switch to. */
  languages?: readonly string[];
  /** `TTS_VOICES`: a voice per language, where the vendor needs one. */
  voices?: Readonly<Record<string, string>>;
  /** Makes a text-to-speech with `voice`; throws when the vendor cannot. */
  make(voice: string): TextToSpeech;
  /** The call's logger. */
  log: CallVoiceLog;
}

/**
 * The call's language and voice.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const voice = (name: string) => ({ name: "stub", voice: name, synthesize: () => Promise.reject(new Error("unused")) });
 * const call = new CallVoice({
 *   tts: voice("en-voice"),
 *   language: "en-IN",
 *   languages: ["en-IN", "hi-IN"],
 *   voices: { "hi-IN": "hi-voice" },
 *   make: voice,
 *   log: { info() {}, warn() {} },
 * });
 * assertEquals(call.switchTo("hi-IN"), true);
 * assertEquals([call.language, call.tts.voice], ["hi-IN", "hi-voice"]);
 * assertEquals(call.switchTo("ta-IN"), false); // not one of AGENT_LANGUAGES
 * ```
 */
export class CallVoice {
  #options: CallVoiceOptions;
  #language: string;
  #tts: TextToSpeech;
  /** The voice for languages without one of their own in `TTS_VOICES`. */
  #baseTts: TextToSpeech;
  /** Voices made for switched languages, by language. */
  #voices = new Map<string, TextToSpeech>();

  /** Starts with the agent's language and voice. */
  constructor(options: CallVoiceOptions) {
    this.#options = options;
    this.#language = options.language;
    this.#tts = options.tts;
    this.#baseTts = options.tts;
  }

  /** The language replies are spoken in. */
  get language(): string {
    return this.#language;
  }

  /** The voice replies are spoken with. */
  get tts(): TextToSpeech {
    return this.#tts;
  }

  /**
   * The setup webhook's choices at the call's start: its language, and its
   * voice (which then serves languages without their own), else the
   * language's own voice.
   */
  begin(choice: { language?: string; voice?: string }): void {
    if (choice.language) this.#language = choice.language;
    if (choice.voice && choice.voice !== this.#tts.voice) {
      this.#tts = this.#make(choice.voice) ?? this.#tts;
      this.#baseTts = this.#tts;
      return;
    }
    const own = this.#options.voices?.[this.#language];
    if (own && own !== this.#tts.voice) {
      this.#tts = this.#make(own) ?? this.#tts;
    }
  }

  /**
   * The caller spoke `language`: when it is another of `AGENT_LANGUAGES`,
   * replies are spoken in it, with its voice. Whether it switched.
   */
  switchTo(language: string): boolean {
    const { languages, voices, log } = this.#options;
    if (language === this.#language) return false;
    if (!(languages ?? []).includes(language)) return false;
    const from = this.#language;
    this.#language = language;
    const voice = voices?.[language];
    this.#tts = voice === undefined
      ? this.#baseTts
      : this.#voices.get(language) ?? this.#make(voice) ?? this.#baseTts;
    this.#voices.set(language, this.#tts);
    log.info("Caller switched from {from} to {language}", {
      from,
      language,
      voice: this.#tts.voice,
    });
    return true;
  }

  /** A text-to-speech with `voice`, or undefined (logged) when the vendor cannot make one. */
  #make(voice: string): TextToSpeech | undefined {
    try {
      return this.#options.make(voice);
    } catch (error) {
      this.#options.log.warn(
        "Voice {voice} unusable, keeping the current one: {error}",
        { voice, error },
      );
      return undefined;
    }
  }
}
