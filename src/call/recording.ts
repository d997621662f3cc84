/**
 * Recording a call's audio, as the call sees it: something that takes both
 * sides' PCM and, once closed, says where the file is. `records/recorder.ts`
 * writes WAV files that way.
 *
 * @module
 */

/** Where a call's audio was saved. */
export interface RecordingInfo {
  /** The WAV file: channel 1 the caller, channel 2 the bot. */
  path: string;
  /** Samples per second of both channels. */
  sampleRate: number;
  /** Audio length. */
  durationMs: number;
  /** Size of the file. */
  bytes: number;
  /**
   * True when audio was lost (the disk was full or fell behind): the file
   * is shorter than the call, by {@linkcode RecordingInfo.lostMs}.
   */
  truncated?: boolean;
  /** Milliseconds of the call missing from the file, when truncated. */
  lostMs?: number;
}

/**
 * Takes a call's audio as it flows: the caller's as it arrives, the bot's as
 * it is sent. Implemented by `CallRecorder` in `records/recorder.ts`.
 */
export interface CallAudioRecorder {
  /** The caller's PCM, as it arrives. */
  caller(pcm: Uint8Array): void;
  /** The bot's PCM, as it is sent. */
  bot(pcm: Uint8Array): void;
  /** Ends the recording: resolves with its file, or undefined when there is none. */
  close(): Promise<RecordingInfo | undefined>;
}
