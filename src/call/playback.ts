/**
 * What the player takes and answers: audio to play, how to play it, and how
 * a playback ended. The bot contract's `CallOutput.play` speaks in
 * these types.
 *
 * @module
 */

/** How an utterance given to `CallOutput.play` ended. */
export interface Playback {
  /** `played`: Exotel confirmed it with the mark; `cleared`: cut by a clear; `stopped`: the call ended first. */
  status: "played" | "cleared" | "stopped";
  /** The mark sent after the utterance. */
  mark: string;
  /** Bytes of PCM handed to Exotel, including padding. */
  sentBytes: number;
  /** How much of it the caller heard, estimated from what was sent and when. */
  heardMs: number;
}

/** Audio to play: all at once, or as it is produced (a TTS stream). */
export type Audio = Uint8Array | AsyncIterable<Uint8Array>;

/** Options of `CallOutput.play`. */
export interface PlayOptions {
  /** The name of the mark sent after the audio; generated when absent. */
  mark?: string;
  /**
   * Whether `CallOutput.resume` may send again what a pause took
   * back (default true). That keeps each chunk until it has started playing;
   * an endless stream that is never paused, such as the echo, saves that.
   * Without it a pause takes nothing back (no `clear`), and a playback that
   * is cleared counts all it sent as heard.
   */
  resumable?: boolean;
}
