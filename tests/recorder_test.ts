import { assert, assertEquals, assertExists } from "@std/assert";
import { buildCallRecord } from "../src/records/call_record.ts";
import {
  CallRecorder,
  type RecordingFile,
  wavHeader,
} from "../src/records/recorder.ts";
import { makeSession } from "./fakes/session.ts";

/** When the recorded calls started: only the day folder depends on it. */
const STARTED_AT = Date.UTC(2026, 11, 3, 10);

/** 16-bit little-endian PCM of `values`. */
function pcm(values: number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 2);
  const view = new DataView(bytes.buffer);
  values.forEach((value, i) => view.setInt16(i * 2, value, true));
  return bytes;
}

function range(start: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i);
}

interface StereoWav {
  riffSize: number;
  format: number;
  channels: number;
  sampleRate: number;
  byteRate: number;
  blockAlign: number;
  bits: number;
  dataSize: number;
  caller: number[];
  bot: number[];
}

/** Reads a 2-channel 16-bit WAV field by field, as a player would. */
async function readStereoWav(path: string): Promise<StereoWav> {
  const bytes = await Deno.readFile(path);
  const view = new DataView(bytes.buffer);
  const text = (offset: number) =>
    new TextDecoder().decode(bytes.subarray(offset, offset + 4));
  assertEquals(
    [text(0), text(8), text(12), text(36)],
    ["RIFF", "WAVE", "fmt ", "data"],
  );
  const dataSize = view.getUint32(40, true);
  assertEquals(bytes.length, 44 + dataSize, "data size matches the file");
  const caller: number[] = [];
  const bot: number[] = [];
  for (let offset = 44; offset < bytes.length; offset += 4) {
    caller.push(view.getInt16(offset, true));
    bot.push(view.getInt16(offset + 2, true));
  }
  return {
    riffSize: view.getUint32(4, true),
    format: view.getUint16(20, true),
    channels: view.getUint16(22, true),
    sampleRate: view.getUint32(24, true),
    byteRate: view.getUint32(28, true),
    blockAlign: view.getUint16(32, true),
    bits: view.getUint16(34, true),
    dataSize,
    caller,
    bot,
  };
}

async function withDir(test: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await test(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a recording is a 2-channel WAV: caller left, bot right, aligned on the caller's audio", () =>
  withDir(async (dir) => {
    const recorder = new CallRecorder({
      dir,
      id: "session-1",
      sampleRate: 8000,
      startedAt: Date.parse("2025-03-01T10:00:00Z"),
    });
    recorder.caller(pcm(range(100, 4)));
    recorder.bot(pcm(range(900, 3)));
    recorder.caller(pcm(range(104, 4)));
    recorder.caller(pcm(range(108, 2)));
    recorder.bot(pcm(range(950, 2)));
    recorder.caller(pcm(range(110, 3)));
    const recording = await recorder.close();
    assertExists(recording);
    assertEquals(recording.path, `${dir}/2025-03-01/session-1.wav`);
    const wav = await readStereoWav(recording.path);
    assertEquals(
      [wav.format, wav.channels, wav.sampleRate, wav.bits],
      [1, 2, 8000, 16],
    );
    assertEquals([wav.byteRate, wav.blockAlign], [32000, 4]);
    assertEquals(wav.riffSize, 36 + wav.dataSize);
    assertEquals(wav.caller, range(100, 13));
    assertEquals(wav.bot, [0, 0, 0, 0, 900, 901, 902, 0, 0, 0, 950, 951, 0]);
    assertEquals(recording.bytes, 44 + 13 * 4);
    assertEquals(recording.sampleRate, 8000);
    assertEquals(recording.durationMs, 2);
  }));

Deno.test("bot audio sent ahead of playback waits for the caller's audio, and the rest is kept at the end", () =>
  withDir(async (dir) => {
    const recorder = new CallRecorder({
      startedAt: STARTED_AT,
      dir,
      id: "ahead",
      sampleRate: 16000,
    });
    recorder.bot(pcm(range(500, 6)));
    recorder.caller(pcm(range(1, 4)));
    const recording = await recorder.close();
    assertExists(recording);
    const wav = await readStereoWav(recording.path);
    assertEquals(wav.caller, [1, 2, 3, 4, 0, 0]);
    assertEquals(wav.bot, range(500, 6));
  }));

Deno.test("odd-length pieces are joined across calls, not dropped", () =>
  withDir(async (dir) => {
    const recorder = new CallRecorder({
      startedAt: STARTED_AT,
      dir,
      id: "odd",
      sampleRate: 8000,
    });
    const caller = pcm([1000, -2000, 3000]);
    recorder.caller(caller.subarray(0, 3));
    recorder.caller(caller.subarray(3));
    const bot = pcm([7, -8]);
    recorder.bot(bot.subarray(0, 1));
    recorder.bot(bot.subarray(1));
    recorder.caller(pcm([4000, 5000]));
    const wav = await readStereoWav((await recorder.close())!.path);
    assertEquals(wav.caller, [1000, -2000, 3000, 4000, 5000]);
    assertEquals(wav.bot, [0, 0, 0, 7, -8]);
  }));

Deno.test("when the caller's audio stalls, bot audio beyond the limit is written against silence", () =>
  withDir(async (dir) => {
    // 1 ms at 8 kHz: 8 samples may wait for the caller.
    const recorder = new CallRecorder({
      startedAt: STARTED_AT,
      dir,
      id: "stall",
      sampleRate: 8000,
      maxAheadMs: 1,
    });
    recorder.bot(pcm(range(1, 20)));
    recorder.caller(pcm(range(101, 4)));
    const wav = await readStereoWav((await recorder.close())!.path);
    assertEquals(wav.bot, range(1, 20));
    assertEquals(wav.caller, [
      ...new Array(12).fill(0),
      101,
      102,
      103,
      104,
      0,
      0,
      0,
      0,
    ]);
  }));

/** A real file that tells the test how many bytes have reached it, as they do. */
class WatchedFile {
  /** Bytes written so far. */
  written = 0;
  #waiters: { bytes: number; resolve: () => void }[] = [];

  /** Opens `path` as `CallRecorderOptions.openFile` would. */
  async open(path: string): Promise<RecordingFile> {
    const file = await Deno.open(path, {
      write: true,
      create: true,
      truncate: true,
    });
    return {
      write: async (bytes: Uint8Array) => {
        const count = await file.write(bytes);
        this.written += count;
        this.#waiters = this.#waiters.filter((waiter) => {
          if (this.written < waiter.bytes) return true;
          waiter.resolve();
          return false;
        });
        return count;
      },
      seek: (offset: number | bigint, whence: Deno.SeekMode) =>
        file.seek(offset, whence),
      close: () => file.close(),
    };
  }

  /** Resolves once `bytes` have been written. */
  reached(bytes: number): Promise<void> {
    if (this.written >= bytes) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push({ bytes, resolve });
    return promise;
  }
}

Deno.test("audio reaches the disk during the call, not only at its end", () =>
  withDir(async (dir) => {
    const disk = new WatchedFile();
    const recorder = new CallRecorder({
      startedAt: STARTED_AT,
      dir,
      id: "streaming",
      sampleRate: 8000,
      openFile: (path) => disk.open(path),
    });
    const FRAME = 1600; // 100 ms of caller audio, 3200 bytes in stereo
    for (let i = 1; i <= 50; i++) {
      recorder.caller(new Uint8Array(FRAME));
      // Each frame is on disk before the next one arrives.
      await disk.reached(44 + i * FRAME * 2);
      assertEquals(
        (await Deno.stat(recorder.path)).size,
        44 + i * FRAME * 2,
        `frame ${i} on disk`,
      );
    }
    assertEquals(recorder.droppedBytes, 0);
    const recording = await recorder.close();
    assertEquals(recording?.durationMs, 5_000);
    assertEquals((await Deno.stat(recorder.path)).size, 44 + 50 * FRAME * 2);
  }));

Deno.test("audio the disk cannot take in time is dropped and counted, memory stays bounded", () =>
  withDir(async (dir) => {
    const recorder = new CallRecorder({
      startedAt: STARTED_AT,
      dir,
      id: "bounded",
      sampleRate: 8000,
      maxPendingBytes: 64 * 1024,
    });
    // All at once, before the first write can finish.
    for (let i = 0; i < 50; i++) recorder.caller(new Uint8Array(1600));
    const recording = await recorder.close();
    assertExists(recording);
    assertEquals(recording.bytes + recorder.droppedBytes, 44 + 50 * 3200);
    assert(recorder.droppedBytes > 0);
    assert(recording.bytes - 44 <= 64 * 1024);
  }));

Deno.test("a call with no audio still leaves a valid, empty WAV", () =>
  withDir(async (dir) => {
    const recorder = new CallRecorder({
      startedAt: STARTED_AT,
      dir,
      id: "silent",
      sampleRate: 24000,
    });
    const recording = await recorder.close();
    assertExists(recording);
    const wav = await readStereoWav(recording.path);
    assertEquals([wav.dataSize, wav.sampleRate, wav.caller], [0, 24000, []]);
    assertEquals(
      await recorder.close(),
      recording,
      "closing twice is harmless",
    );
  }));

Deno.test("a recording that cannot be written is logged and given up, never thrown", () =>
  withDir(async (dir) => {
    // A file where the day folder should be: mkdir fails.
    const blocked = `${dir}/blocked`;
    await Deno.writeTextFile(blocked, "not a folder");
    const recorder = new CallRecorder({
      startedAt: STARTED_AT,
      dir: blocked,
      id: "fails",
      sampleRate: 8000,
    });
    recorder.caller(pcm(range(1, 100)));
    recorder.bot(pcm(range(1, 100)));
    const recording = await recorder.close();
    // The record says the file is missing, and how much of the call.
    assertEquals(
      [recording?.bytes, recording?.durationMs, recording?.truncated],
      [0, 0, true],
    );
    assertEquals(
      recording?.lostMs,
      25,
      "99 samples, then the bot's 99 after them, at 8 kHz",
    );
    recorder.caller(pcm(range(1, 100)));
    assert(recorder.droppedBytes > 0);
  }));

Deno.test("session ids with path characters cannot escape the recordings folder", () =>
  withDir(async (dir) => {
    const recorder = new CallRecorder({
      dir,
      id: "../../etc/passwd",
      sampleRate: 8000,
      startedAt: Date.parse("2025-03-01T00:00:00Z"),
    });
    assertEquals(recorder.path, `${dir}/2025-03-01/.._.._etc_passwd.wav`);
    await recorder.close();
  }));

Deno.test("wavHeader describes interleaved 16-bit PCM", () => {
  const view = new DataView(wavHeader(16000, 2, 1000).buffer);
  assertEquals(view.getUint32(4, true), 1036);
  assertEquals(view.getUint16(22, true), 2);
  assertEquals(view.getUint32(28, true), 64000);
  assertEquals(view.getUint16(32, true), 4);
  assertEquals(view.getUint32(40, true), 1000);
});

Deno.test("when the disk fills mid-call, the real loss is counted from then to the end and the recording is flagged truncated", () =>
  withDir(async (dir) => {
    let room = 44 + 8000 * 4; // the header and 1 s of stereo audio
    const recorder = new CallRecorder({
      startedAt: STARTED_AT,
      dir,
      id: "disk-full",
      sampleRate: 8000,
      // A real file on a disk that is full after `room` bytes.
      openFile: async (path) => {
        const file = await Deno.open(path, {
          write: true,
          create: true,
          truncate: true,
        });
        return {
          write: async (bytes: Uint8Array) => {
            if (bytes.length > room) {
              throw new Deno.errors.WriteZero("No space left on device");
            }
            room -= bytes.length;
            return await file.write(bytes);
          },
          seek: (offset: number | bigint, whence: Deno.SeekMode) =>
            file.seek(offset, whence),
          close: () => file.close(),
        };
      },
    });
    // 8 s of caller audio in 200 ms frames, given time to reach the disk.
    for (let frame = 0; frame < 40; frame++) {
      recorder.caller(new Uint8Array(3200));
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    const recording = await recorder.close();
    assertExists(recording);
    assertEquals(recording.truncated, true);
    assertEquals(recording.durationMs + (recording.lostMs ?? 0), 8000);
    assert((recording.lostMs ?? 0) >= 7000, `lost ${recording.lostMs} ms`);
    const record = buildCallRecord(
      makeSession({ connectedAt: 0 }),
      "stop:callended",
      { endedAt: 8000, recording },
    );
    assertEquals(record.recording?.truncated, true);
  }));
