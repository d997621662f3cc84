import { assertEquals } from "@std/assert";
import { ExotelPlayback } from "../tools/exotel_playback.ts";

function recorder(sampleRate = 8000, keepAudio = true) {
  const reached: string[] = [];
  const playback = new ExotelPlayback(sampleRate, {
    keepAudio,
    onMark: (name) => reached.push(name),
  });
  return { playback, reached };
}

Deno.test("playback reaches a mark only once the audio before it has played", () => {
  const { playback, reached } = recorder();
  playback.enqueue(new Uint8Array(3200), 0); // 200 ms at 8 kHz
  playback.enqueue(new Uint8Array(3200), 50);
  playback.mark("utt-1", 60);
  playback.advance(399);
  assertEquals(reached, []);
  assertEquals(playback.idle, false);
  playback.advance(400);
  assertEquals(reached, ["utt-1"]);
  assertEquals(playback.idle, true);
  assertEquals(playback.heardBytes, 6400);
});

Deno.test("playback times chunks by the call's sample rate", () => {
  const { playback, reached } = recorder(16000);
  playback.enqueue(new Uint8Array(3200), 0); // 100 ms at 16 kHz
  playback.mark("m", 0);
  playback.advance(100);
  assertEquals(reached, ["m"]);
});

Deno.test("playback reaches a mark sent to an empty queue at once", () => {
  const { playback, reached } = recorder();
  playback.mark("now", 1000);
  playback.advance(1000);
  assertEquals(reached, ["now"]);
});

Deno.test("playback starts audio that arrives after a gap when it arrives", () => {
  const { playback, reached } = recorder();
  playback.enqueue(new Uint8Array(3200), 0);
  playback.enqueue(new Uint8Array(3200), 500);
  playback.mark("late", 500);
  playback.advance(699);
  assertEquals(reached, []);
  playback.advance(700);
  assertEquals(reached, ["late"]);
});

Deno.test("clear lets the playing chunk finish and drops the rest with its marks", () => {
  const { playback, reached } = recorder();
  playback.enqueue(new Uint8Array(3200).fill(1), 0);
  playback.enqueue(new Uint8Array(3200).fill(2), 0);
  playback.mark("dropped", 0);
  assertEquals(playback.clear(100), ["dropped"]);
  assertEquals(playback.droppedBytes, 3200);
  playback.enqueue(new Uint8Array(320).fill(3), 100);
  playback.mark("after", 100);
  playback.advance(219);
  assertEquals(reached, []);
  playback.advance(220);
  assertEquals(reached, ["after"]);
  const heard = playback.heard();
  assertEquals(heard.length, 3520);
  assertEquals([heard[0], heard[3199], heard[3200]], [1, 1, 3]);
});

Deno.test("finish keeps only the played part of the chunk that was playing", () => {
  const { playback, reached } = recorder();
  playback.enqueue(new Uint8Array(3200), 0);
  playback.mark("never", 0);
  playback.finish(50);
  assertEquals(playback.heardBytes, 800);
  assertEquals(playback.heard().length, 800);
  assertEquals(reached, []);
  assertEquals(playback.idle, true);
});

Deno.test("playback without keepAudio counts bytes but keeps no PCM", () => {
  const { playback } = recorder(8000, false);
  playback.enqueue(new Uint8Array(3200), 0);
  playback.advance(1000);
  assertEquals(playback.heardBytes, 3200);
  assertEquals(playback.heard().length, 0);
});
