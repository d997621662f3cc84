import { PcmPipe } from "../src/audio/pcm_pipe.ts";
import { assertEquals, assertThrows } from "@std/assert";
import {
  alignUp,
  bytesForMs,
  bytesPerMs,
  Chunker,
  chunkPcm,
  durationMs,
  InvalidChunkSizeError,
  isValidChunkSize,
  padToAlignment,
} from "../src/audio/pcm.ts";

Deno.test("durations come from the sample rate, never from the size alone", () => {
  assertEquals(durationMs(3200, 8000), 200);
  assertEquals(durationMs(3200, 16000), 100);
  assertEquals(durationMs(3200, 24000), 3200 / 48);
  assertEquals(bytesPerMs(8000), 16);
  assertEquals(bytesPerMs(16000), 32);
  assertEquals(bytesPerMs(24000), 48);
  assertEquals(bytesForMs(20, 8000), 320);
  assertEquals(bytesForMs(100, 16000), 3200);
  assertEquals(bytesForMs(100, 24000), 4800);
});

Deno.test("chunk sizes must be multiples of 320 between 320 and 100000", () => {
  assertEquals(isValidChunkSize(3200), true);
  assertEquals(isValidChunkSize(320), true);
  assertEquals(isValidChunkSize(99840), true);
  assertEquals(isValidChunkSize(0), false);
  assertEquals(isValidChunkSize(3000), false);
  assertEquals(isValidChunkSize(100160), false);
  assertThrows(
    () => new Chunker(1000),
    InvalidChunkSizeError,
    'Invalid chunk size "1000"',
  );
});

Deno.test("padding rounds up to a multiple of 320 with silence", () => {
  assertEquals(alignUp(1), 320);
  assertEquals(alignUp(320), 320);
  assertEquals(alignUp(321), 640);
  const pcm = new Uint8Array(330).fill(7);
  const padded = padToAlignment(pcm);
  assertEquals(padded.length, 640);
  assertEquals(padded.subarray(0, 330), pcm);
  assertEquals(padded.subarray(330).every((byte) => byte === 0), true);
  const aligned = new Uint8Array(640);
  assertEquals(padToAlignment(aligned), aligned);
});

for (const rate of [8000, 16000, 24000]) {
  Deno.test(`a second of ${rate} Hz audio splits into 3200-byte chunks and a padded tail`, () => {
    const pcm = new Uint8Array(rate * 2).map((_, i) => i % 251);
    const chunks = chunkPcm(pcm, 3200);
    for (const chunk of chunks) assertEquals(chunk.length % 320, 0);
    assertEquals(
      chunks.slice(0, -1).every((chunk) => chunk.length === 3200),
      true,
    );
    const joined = new Uint8Array(
      chunks.reduce((sum, chunk) => sum + chunk.length, 0),
    );
    let offset = 0;
    for (const chunk of chunks) {
      joined.set(chunk, offset);
      offset += chunk.length;
    }
    assertEquals(joined.subarray(0, pcm.length), pcm);
    assertEquals(joined.length, alignUp(pcm.length));
  });
}

Deno.test("the chunker joins pieces of any size, including odd ones, in order", () => {
  const chunker = new Chunker(3200);
  const source = new Uint8Array(10_001).map((_, i) => i % 253);
  const out: Uint8Array[] = [];
  for (let offset = 0; offset < source.length;) {
    const size = [1, 799, 3201, 17, 640][out.length % 5];
    out.push(...chunker.push(source.subarray(offset, offset + size)));
    offset += size;
  }
  assertEquals(out.every((chunk) => chunk.length === 3200), true);
  assertEquals(chunker.buffered, 10_001 - 3 * 3200);
  const tail = chunker.flush()!;
  assertEquals(tail.length, 640);
  assertEquals(chunker.flush(), undefined);
  assertEquals(out[2].subarray(0, 10), source.subarray(6400, 6410));
  assertEquals(tail.subarray(0, 401), source.subarray(9600));
});

Deno.test("the chunker's reset drops what it kept", () => {
  const chunker = new Chunker(320);
  chunker.push(new Uint8Array(100));
  chunker.reset();
  assertEquals(chunker.buffered, 0);
  assertEquals(chunker.flush(), undefined);
});

Deno.test("a pcm pipe tells its listener of every push and of its close, and reads without awaiting", () => {
  const pipe = new PcmPipe({ maxBytes: 1000 });
  const seen: (number | "done")[] = [];
  pipe.listen(() => {
    let piece;
    while ((piece = pipe.read()) !== undefined) seen.push(piece.length);
    if (pipe.done) seen.push("done");
  });
  pipe.push(new Uint8Array(320));
  pipe.push(new Uint8Array(640));
  assertEquals(pipe.read(), undefined);
  pipe.close();
  assertEquals(seen, [320, 640, "done"]);
});

Deno.test("a pcm pipe drops its oldest audio past its bound while nobody reads", () => {
  const pipe = new PcmPipe({ maxBytes: 1000 });
  for (let i = 1; i <= 4; i++) pipe.push(new Uint8Array(320).fill(i));
  assertEquals(pipe.droppedBytes, 320);
  assertEquals(pipe.read()?.[0], 2);
  assertEquals(pipe.bufferedBytes, 640);
});

Deno.test("Chunker with firstChunkBytes sends the first chunk early, whole 320-byte packets, then whole chunks", () => {
  const chunker = new Chunker(3200, { firstChunkBytes: 1600 });
  const bytes = (n: number, value: number) => new Uint8Array(n).fill(value);
  // 880 bytes: below the first chunk's size, held.
  assertEquals(chunker.push(bytes(880, 1)), []);
  // 1760 bytes now: the first chunk is the 1600 whole-packet bytes.
  const [first, ...rest] = chunker.push(bytes(880, 2));
  assertEquals(rest, []);
  assertEquals(first.length, 1600);
  assertEquals(first.subarray(0, 880), bytes(880, 1));
  assertEquals(first.subarray(880), bytes(720, 2));
  // Then whole chunks: 160 held + 3040 = one 3200 chunk.
  const chunks = chunker.push(bytes(3040, 3));
  assertEquals(chunks.map((chunk) => chunk.length), [3200]);
  assertEquals(chunks[0].subarray(0, 160), bytes(160, 2));
  assertEquals(chunker.flush(), undefined);
  // A large first piece gives a whole first chunk at most, the rest as usual.
  const big = new Chunker(3200, { firstChunkBytes: 1600 });
  assertEquals(big.push(bytes(7000, 4)).map((chunk) => chunk.length), [
    3200,
    3200,
  ]);
  assertEquals(big.flush()?.length, 640);
  // Without the option nothing goes out before a whole chunk.
  assertEquals(new Chunker(3200).push(bytes(1760, 5)), []);
  assertThrows(() => new Chunker(3200, { firstChunkBytes: 1000 }));
});
