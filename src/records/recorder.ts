/**
 * Optional call recordings: one 2-channel WAV per call, the caller on the
 * first channel and the bot on the second, streamed to disk as the call goes
 * and finished (header sizes patched) when it ends.
 *
 * The caller's audio is the clock: Exotel streams it continuously, so the
 * caller's samples so far say where the call is. Bot audio is placed from
 * that position on; the bot is silent wherever it sent nothing. The player
 * sends a little ahead of playback, so the little bot audio ahead of the
 * caller's is what waits in memory, bounded.
 *
 * @module
 */

import { concat } from "@std/bytes";
import { getLogger } from "@logtape/logtape";
import type { CallAudioRecorder, RecordingInfo } from "../call/recording.ts";

/** Options of {@linkcode CallRecorder}. */
export interface CallRecorderOptions {
  /** `RECORDINGS_DIR`: files go to `<dir>/<YYYY-MM-DD>/<id>.wav`. */
  dir: string;
  /** The call's session id, which names the file. */
  id: string;
  /** Samples per second of both sides. */
  sampleRate: number;
  /** When the call started, epoch ms on the call's clock: names the day folder (UTC). */
  startedAt: number;
  /** Bot audio kept ahead of the caller's before it is written against silence; default 30 s. */
  maxAheadMs?: number;
  /** Bytes waiting for the disk beyond which audio is dropped; default 4 MiB. */
  maxPendingBytes?: number;
  /** Opens the file for writing; `Deno.open` (create, truncate) by default. */
  openFile?: (path: string) => Promise<RecordingFile>;
}

/** What the recorder needs of an open file. */
export type RecordingFile = Pick<Deno.FsFile, "write" | "seek" | "close">;

const HEADER_BYTES = 44;
const CHANNELS = 2;
const FRAME_BYTES = CHANNELS * 2;
/** The RIFF size fields are 32 bits. */
const MAX_DATA_BYTES = 0xffffffff - HEADER_BYTES;

const log = getLogger(["exovoice", "records", "recorder"]);

/**
 * Records one call. Never throws into the call: a disk failure is logged and
 * the recording stops.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const dir = await Deno.makeTempDir();
 * const recorder = new CallRecorder({
 *   dir,
 *   id: "call-1",
 *   sampleRate: 8000,
 *   startedAt: Date.UTC(2026, 11, 3),
 * });
 * // The bot's audio is kept until the caller's timeline reaches it, so
 * // these 200 ms of each side are written side by side.
 * recorder.bot(new Uint8Array(3200)); // 200 ms the bot sent
 * recorder.caller(new Uint8Array(3200)); // 200 ms from Exotel
 * const recording = await recorder.close();
 * assertEquals(recording?.path, `${dir}/2026-12-03/call-1.wav`);
 * assertEquals(recording?.durationMs, 200);
 * // A stereo WAV: 44 header bytes, then 200 ms of two 16-bit channels.
 * assertEquals((await Deno.stat(recording!.path)).size, 44 + 6400);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class CallRecorder implements CallAudioRecorder {
  /** Where the file is written. */
  readonly path: string;
  #sampleRate: number;
  #maxAheadBytes: number;
  #maxPendingBytes: number;
  #callerCarry?: number;
  #botCarry?: number;
  #botAhead: Uint8Array[] = [];
  #botAheadBytes = 0;
  /** Bytes of `#botAhead[0]` already written. */
  #botOffset = 0;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #dataBytes = 0;
  #droppedBytes = 0;
  #file?: Promise<RecordingFile>;
  #openFile: (path: string) => Promise<RecordingFile>;
  #writing?: Promise<void>;
  #failed = false;
  #closing?: Promise<RecordingInfo | undefined>;

  /** Starts the recording; the file is created as the first audio is written. */
  constructor(options: CallRecorderOptions) {
    const day = new Date(options.startedAt).toISOString().slice(0, 10);
    const name = options.id.replace(/[^A-Za-z0-9_.-]/g, "_");
    this.path = `${options.dir.replace(/[/\\]+$/, "")}/${day}/${name}.wav`;
    this.#sampleRate = options.sampleRate;
    this.#maxAheadBytes = Math.round(
      (options.maxAheadMs ?? 30_000) * options.sampleRate / 1000,
    ) * 2;
    this.#maxPendingBytes = options.maxPendingBytes ?? 4 * 1024 * 1024;
    this.#openFile = options.openFile ??
      ((path) =>
        Deno.open(path, { write: true, create: true, truncate: true }));
  }

  /**
   * Bytes of the recording's audio (both channels) lost because the disk
   * fell behind, was full or failed: from a failure on, every piece of the
   * call's audio counts, so this measures the whole gap.
   */
  get droppedBytes(): number {
    return this.#droppedBytes;
  }

  /** Caller audio as Exotel sent it (16-bit PCM at the call's rate). */
  caller(pcm: Uint8Array): void {
    if (this.#closing) return;
    if (this.#failed) {
      // The caller's audio is the call's clock: each sample is a lost frame.
      this.#droppedBytes += pcm.length * CHANNELS;
      return;
    }
    const { samples, carry } = evenSamples(pcm, this.#callerCarry);
    this.#callerCarry = carry;
    if (samples.length === 0) return;
    const frames = new Uint8Array(samples.length * 2);
    for (let i = 0, o = 0; i < samples.length; i += 2, o += FRAME_BYTES) {
      frames[o] = samples[i];
      frames[o + 1] = samples[i + 1];
    }
    this.#takeBot(frames, samples.length / 2);
    this.#enqueue(frames);
  }

  /** Bot audio as it was sent to Exotel (16-bit PCM at the call's rate). */
  bot(pcm: Uint8Array): void {
    if (this.#closing || this.#failed) return;
    const { samples, carry } = evenSamples(pcm, this.#botCarry);
    this.#botCarry = carry;
    if (samples.length === 0) return;
    this.#botAhead.push(samples.slice());
    this.#botAheadBytes += samples.length;
    // The caller's audio has stalled: write the bot against silence rather than hold it all.
    const excess = this.#botAheadBytes - this.#maxAheadBytes;
    if (excess > 0) this.#botAgainstSilence(excess / 2);
  }

  /**
   * Writes what is left (bot audio ahead of the caller, against silence),
   * patches the header and closes the file. Resolves with where the
   * recording is, or undefined when none could be written. Safe to call
   * more than once.
   */
  close(): Promise<RecordingInfo | undefined> {
    this.#closing ??= this.#finish();
    return this.#closing;
  }

  async #finish(): Promise<RecordingInfo | undefined> {
    if (!this.#failed) this.#botAgainstSilence(this.#botAheadBytes / 2);
    // An empty call still gets a valid (empty) file.
    if (!this.#failed && this.#file === undefined) this.#flush();
    while (this.#writing) await this.#writing;
    if (this.#file === undefined) return undefined;
    let file: RecordingFile;
    try {
      file = await this.#file;
    } catch {
      // No file at all: the record still says the whole call is missing.
      return this.#report(0);
    }
    try {
      const sizes = new DataView(new ArrayBuffer(4));
      sizes.setUint32(0, 36 + this.#dataBytes, true);
      await file.seek(4, Deno.SeekMode.Start);
      await writeAll(file, new Uint8Array(sizes.buffer));
      sizes.setUint32(0, this.#dataBytes, true);
      await file.seek(40, Deno.SeekMode.Start);
      await writeAll(file, new Uint8Array(sizes.buffer));
    } catch (error) {
      this.#fail(error);
    } finally {
      file.close();
    }
    return this.#report(HEADER_BYTES + this.#dataBytes);
  }

  /** What the recording holds, and what it lost, in a file of `bytes`. */
  #report(bytes: number): RecordingInfo {
    const info: RecordingInfo = {
      path: this.path,
      sampleRate: this.#sampleRate,
      durationMs: Math.round(
        this.#dataBytes / FRAME_BYTES / this.#sampleRate * 1000,
      ),
      bytes,
    };
    if (this.#droppedBytes > 0 || this.#failed) {
      info.truncated = true;
      info.lostMs = Math.round(
        this.#droppedBytes / FRAME_BYTES / this.#sampleRate * 1000,
      );
      log.warn(
        "Recording {path} lost {lostMs} ms of audio ({droppedBytes} bytes): the record is marked truncated",
        {
          path: this.path,
          lostMs: info.lostMs,
          droppedBytes: this.#droppedBytes,
        },
      );
    }
    return info;
  }

  /** Fills the bot channel of `frames` (caller already in) from the bot audio waiting. */
  #takeBot(frames: Uint8Array, count: number): void {
    let frame = 0;
    while (frame < count && this.#botAhead.length > 0) {
      const head = this.#botAhead[0];
      while (frame < count && this.#botOffset < head.length) {
        frames[frame * FRAME_BYTES + 2] = head[this.#botOffset];
        frames[frame * FRAME_BYTES + 3] = head[this.#botOffset + 1];
        this.#botOffset += 2;
        this.#botAheadBytes -= 2;
        frame++;
      }
      if (this.#botOffset === head.length) {
        this.#botAhead.shift();
        this.#botOffset = 0;
      }
    }
  }

  #botAgainstSilence(count: number): void {
    if (count <= 0) return;
    const frames = new Uint8Array(count * FRAME_BYTES);
    this.#takeBot(frames, count);
    this.#enqueue(frames);
  }

  #enqueue(frames: Uint8Array): void {
    const room = MAX_DATA_BYTES - this.#dataBytes - this.#pendingBytes;
    if (
      this.#pendingBytes + frames.length > this.#maxPendingBytes ||
      frames.length > room
    ) {
      if (this.#droppedBytes === 0) {
        log.warn("Recording {path} is dropping audio: the disk is behind", {
          path: this.path,
        });
      }
      this.#droppedBytes += frames.length;
      return;
    }
    this.#pending.push(frames);
    this.#pendingBytes += frames.length;
    this.#flush();
  }

  #flush(): void {
    if (this.#writing) return;
    this.#writing = this.#writeLoop().finally(() => {
      this.#writing = undefined;
      // Audio queued between the loop's last look and now.
      if (this.#pending.length > 0 && !this.#failed) this.#flush();
    });
  }

  async #writeLoop(): Promise<void> {
    let writing = 0;
    try {
      this.#file ??= this.#open();
      const file = await this.#file;
      while (this.#pending.length > 0) {
        const batch = concat(this.#pending);
        this.#pending = [];
        this.#pendingBytes = 0;
        writing = batch.length;
        await writeAll(file, batch);
        this.#dataBytes += batch.length;
        writing = 0;
      }
    } catch (error) {
      // The batch the disk refused is lost with the rest.
      this.#droppedBytes += writing;
      this.#fail(error);
    }
  }

  async #open(): Promise<RecordingFile> {
    await Deno.mkdir(this.path.slice(0, this.path.lastIndexOf("/")), {
      recursive: true,
    });
    const file = await this.#openFile(this.path);
    try {
      await writeAll(file, wavHeader(this.#sampleRate, CHANNELS, 0));
    } catch (error) {
      file.close();
      throw error;
    }
    return file;
  }

  #fail(error: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    // Bot audio ahead of the caller's is not call time: the caller's
    // audio, counted from now on, measures the gap.
    this.#droppedBytes += this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#botAhead = [];
    this.#botAheadBytes = 0;
    log.error("Recording {path} stopped: {error}", { path: this.path, error });
  }
}

/**
 * The 44-byte header of a 16-bit PCM WAV file holding `dataBytes` of
 * interleaved audio.
 */
export function wavHeader(
  sampleRate: number,
  channels: number,
  dataBytes: number,
): Uint8Array {
  const header = new Uint8Array(HEADER_BYTES);
  const view = new DataView(header.buffer);
  const ascii = (offset: number, text: string) => {
    for (let i = 0; i < text.length; i++) {
      header[offset + i] = text.charCodeAt(i);
    }
  };
  ascii(0, "RIFF");
  view.setUint32(4, 36 + dataBytes, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true);
  view.setUint16(22, channels, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * channels * 2, true);
  view.setUint16(32, channels * 2, true);
  view.setUint16(34, 16, true);
  ascii(36, "data");
  view.setUint32(40, dataBytes, true);
  return header;
}

/** Whole 16-bit samples of `pcm`, after a byte left over from the last piece. */
function evenSamples(
  pcm: Uint8Array,
  carry: number | undefined,
): { samples: Uint8Array; carry: number | undefined } {
  let bytes = pcm;
  if (carry !== undefined) {
    bytes = new Uint8Array(pcm.length + 1);
    bytes[0] = carry;
    bytes.set(pcm, 1);
  }
  if (bytes.length % 2 === 0) return { samples: bytes, carry: undefined };
  return {
    samples: bytes.subarray(0, bytes.length - 1),
    carry: bytes[bytes.length - 1],
  };
}

async function writeAll(file: RecordingFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    written += await file.write(bytes.subarray(written));
  }
}
