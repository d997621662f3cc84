/**
 * The audio of a call's fixed lines — the fallback line, the closing and
 * transfer lines after too many failed turns — from the shared cache, else
 * synthesised once for every call asking, else a line another voice said
 * earlier, else the bundled recording, else a tone: a caller never hears
 * chimes alone.
 *
 * @module
 */

import type { SampleRate } from "../../audio/pcm.ts";
import { FallbackTts } from "../../providers/fallback/fallback_tts.ts";
import type { TextToSpeech } from "../../providers/tts/text_to_speech.ts";
import type { AudioCache, AudioCacheKey } from "./audio_cache.ts";
import { AudioTrack } from "./audio_track.ts";
import { RECORDED_LINES, type RecordedLine } from "./recorded_lines.ts";
import type { FallbackAudio } from "./reply.ts";
import { fallbackTone, synthesizeInto } from "./speech.ts";
import type { SpokenFormsMode } from "./spoken_forms.ts";

/** The call's voice and language at this moment (they follow the caller's language). */
export interface LineVoice {
  /** The voice. */
  tts: TextToSpeech;
  /** BCP 47 language. */
  language: string;
}

/** The texts and limits of a call's fixed lines; see the agent's configuration. */
export interface LineTexts {
  /** `AGENT_FALLBACK_TEXT`. */
  fallbackText: string;
  /** `AGENT_TRANSFER_TEXT`. */
  transferText: string;
  /** `AGENT_MAX_FAILED_TURNS`; 0 never ends the call. */
  maxFailedTurns: number;
  /** `AGENT_ON_FAILURE`: what the last failed turn allowed leads to. */
  onFailure: "hangup" | "transfer";
  /** `AGENT_SPOKEN_FORMS`. */
  spokenForms?: SpokenFormsMode;
}

/** Where a {@linkcode LineAudio} reports a line it could not make (a logtape `Logger` is one). */
export interface LineLog {
  /** A line could not be synthesised: the next source serves. */
  warn(message: string, properties: Record<string, unknown>): void;
  /** A bundled recording could not be read: a tone serves. */
  error(message: string, properties: Record<string, unknown>): void;
}

/** Options of a {@linkcode LineAudio}. */
export interface LineAudioOptions {
  /** Synthesised lines, shared by every call. */
  cache: AudioCache;
  /** The call's rate. */
  sampleRate: SampleRate;
  /** The lines' texts and the failed-turn limit. */
  texts: LineTexts;
  /** The call's logger. */
  log: LineLog;
  /** The call's voice and language now. */
  voice(): LineVoice;
}

/**
 * A call's fixed lines.
 *
 * @example
 * ```ts ignore
 * const lines = new LineAudio({ cache, sampleRate: 8000, texts: config, log, voice: () => ({ tts, language }) });
 * const { text, pcm } = await lines.forFailedTurn(failedTurns);
 * ```
 */
export class LineAudio {
  #options: LineAudioOptions;

  /** Creates the call's lines; nothing is synthesised before it is asked for. */
  constructor(options: LineAudioOptions) {
    this.#options = options;
  }

  /** What `text` said in the call's voice, language and rate is cached under. */
  key(text: string): AudioCacheKey {
    const { tts, language } = this.#options.voice();
    return {
      provider: tts.name,
      voice: tts.voice,
      language,
      sampleRate: this.#options.sampleRate,
      text,
    };
  }

  /**
   * The line for a failed turn after `failedTurns` before it: the fallback
   * line, or, when this failure is the last one `AGENT_MAX_FAILED_TURNS`
   * allows, the closing line (the transfer line for
   * `AGENT_ON_FAILURE=transfer`).
   */
  forFailedTurn(failedTurns: number): Promise<FallbackAudio> {
    const { maxFailedTurns, onFailure, transferText } = this.#options.texts;
    if (maxFailedTurns === 0 || failedTurns + 1 < maxFailedTurns) {
      return this.fallback();
    }
    return onFailure === "transfer"
      ? this.line(transferText, RECORDED_LINES.transfer)
      : this.recorded(RECORDED_LINES.closing);
  }

  /** The fallback line (`AGENT_FALLBACK_TEXT`). */
  fallback(): Promise<FallbackAudio> {
    return this.line(this.#options.texts.fallbackText, RECORDED_LINES.fallback);
  }

  /**
   * `text` from the cache, else synthesised now (once for all calls asking
   * at the same time), else the bundled `recording` (its own words when
   * `text` is not the default), else a tone. Not aborted when the call
   * ends: the audio is for every call.
   */
  async line(text: string, recording: RecordedLine): Promise<FallbackAudio> {
    const { cache, sampleRate, texts, log } = this.#options;
    const key = this.key(text);
    const pcm = await cache.getOrCreate(key, async () => {
      const { tts, language } = this.#options.voice();
      const track = new AudioTrack();
      try {
        await synthesizeInto(track, text, {
          tts,
          sampleRate,
          language,
          spokenForms: texts.spokenForms,
        });
        return track.pcm();
      } catch (error) {
        log.warn("Line could not be synthesised: {error}", {
          error: error instanceof Error ? error.message : String(error),
        });
        return undefined;
      }
    });
    if (pcm && pcm.length > 0) return { text, pcm };
    // Every voice is down: the line one of the others said earlier, else
    // the recording; never chimes alone.
    const { tts } = this.#options.voice();
    const voices = tts instanceof FallbackTts ? tts.providers : [];
    for (const voice of voices) {
      const earlier = cache.get({
        ...this.key(text),
        provider: voice.name,
        voice: voice.voice,
      });
      if (earlier) return { text, pcm: earlier };
    }
    return this.recorded(recording);
  }

  /** A bundled recording at the call's rate; a tone should it be unreadable. */
  async recorded(recording: RecordedLine): Promise<FallbackAudio> {
    const { sampleRate, log } = this.#options;
    try {
      return {
        text: recording.text,
        pcm: await recording.audio.pcm(sampleRate),
      };
    } catch (error) {
      log.error("Bundled recording unreadable: {error}", { error });
      return { text: "", pcm: fallbackTone(sampleRate) };
    }
  }
}
