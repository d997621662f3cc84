import { assertEquals } from "@std/assert";
import { CallerAudio } from "../tools/caller_audio.ts";

function samples(...values: number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 2);
  const view = new DataView(bytes.buffer);
  values.forEach((value, index) => view.setInt16(index * 2, value, true));
  return bytes;
}

function values(pcm: Uint8Array): number[] {
  const view = new DataView(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  return Array.from(
    { length: pcm.length / 2 },
    (_, i) => view.getInt16(i * 2, true),
  );
}

Deno.test("caller audio returns nothing for a frame where no audio plays", () => {
  const audio = new CallerAudio(8000);
  audio.add(new Uint8Array(1600).fill(1), 0);
  assertEquals(audio.frame(100, 100), undefined);
  assertEquals(audio.frame(0, 100)?.length, 1600);
});

Deno.test("caller audio cuts frames at their offsets and pads the tail with silence", () => {
  // 1000 Hz keeps the numbers small: one sample per ms.
  const audio = new CallerAudio(1000);
  audio.add(samples(1, 2, 3, 4, 5), 2);
  assertEquals(values(audio.frame(0, 4) ?? new Uint8Array()), [0, 0, 1, 2]);
  assertEquals(values(audio.frame(4, 4) ?? new Uint8Array()), [3, 4, 5, 0]);
  assertEquals(audio.endMs, 7);
});

Deno.test("caller audio mixes overlapping pieces and clamps to 16 bits", () => {
  const audio = new CallerAudio(1000);
  audio.add(samples(1000, 20000, -20000, 7), 0);
  audio.add(samples(2000, 20000, -20000), 0);
  assertEquals(values(audio.frame(0, 4) ?? new Uint8Array()), [
    3000,
    32767,
    -32768,
    7,
  ]);
});

Deno.test("caller audio ignores an odd trailing byte and empty pieces", () => {
  const audio = new CallerAudio(1000);
  audio.add(new Uint8Array(5), 0);
  audio.add(new Uint8Array(0), 50);
  assertEquals(audio.endMs, 2);
});
