/**
 * Lines recorded with espeak-ng and shipped in `assets/`, for when no voice
 * can say anything: the agent's default fallback line, its default transfer
 * line, and the closing line before it hangs up after too many failed turns.
 *
 * @module
 */

import { FALLBACK_LINE_TEXT, FallbackLine } from "../realtime/fallback_line.ts";

/** What `assets/agent_fallback_line_16000.wav` says: the default `AGENT_FALLBACK_TEXT`. */
export const RECORDED_FALLBACK_TEXT =
  "Sorry, I'm having trouble right now. Could you please say that again?";

/** What `assets/transfer_line_16000.wav` says: the default `AGENT_TRANSFER_TEXT`. */
export const RECORDED_TRANSFER_TEXT = "Please hold while I transfer your call.";

/** What the closing recording says before the agent hangs up. */
export const RECORDED_CLOSING_TEXT: string = FALLBACK_LINE_TEXT;

/** A bundled recording and its words. */
export interface RecordedLine {
  /** The words, for the transcript. */
  text: string;
  /** The recording, read once and converted once per call rate. */
  audio: FallbackLine;
}

/**
 * The bundled recordings, shared by every call of the process.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * const pcm = await RECORDED_LINES.fallback.audio.pcm(8000);
 * assert(pcm.length > 8000 * 2, "more than a second of speech");
 * ```
 */
export const RECORDED_LINES: Readonly<
  Record<"fallback" | "transfer" | "closing", RecordedLine>
> = {
  fallback: {
    text: RECORDED_FALLBACK_TEXT,
    audio: new FallbackLine(
      new URL("../../../assets/agent_fallback_line_16000.wav", import.meta.url),
    ),
  },
  transfer: {
    text: RECORDED_TRANSFER_TEXT,
    audio: new FallbackLine(
      new URL("../../../assets/transfer_line_16000.wav", import.meta.url),
    ),
  },
  closing: { text: RECORDED_CLOSING_TEXT, audio: new FallbackLine() },
};
