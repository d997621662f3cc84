import { assertEquals } from "@std/assert";
import { PcmPipe } from "../src/audio/pcm_pipe.ts";
import {
  isPcmSource,
  type PcmSource,
  toPcmSource,
} from "../src/audio/pcm_source.ts";

/** Reads `source` to its end as the player does: without awaiting, woken by its listener. */
function readAll(source: PcmSource): Promise<number[]> {
  const lengths: number[] = [];
  return new Promise((resolve) => {
    const take = () => {
      for (let pcm = source.read(); pcm; pcm = source.read()) {
        lengths.push(pcm.length);
      }
      if (source.done) {
        source.listen(undefined);
        resolve(lengths);
      }
    };
    source.listen(take);
    take();
  });
}

Deno.test("isPcmSource tells sources from other audio", () => {
  const cases: Array<[string, unknown, boolean]> = [
    ["a pipe", new PcmPipe({ maxBytes: 320 }), true],
    ["bytes", new Uint8Array(320), false],
    ["an async generator", (async function* () {})(), false],
    ["null", null, false],
    ["an object with read only", { read: () => undefined }, false],
  ];
  for (const [name, audio, expected] of cases) {
    assertEquals(isPcmSource(audio), expected, name);
  }
});

Deno.test("every kind of audio reads as the same pieces", async () => {
  const pieces = [320, 640, 960];
  const pipe = new PcmPipe({ maxBytes: 1 << 20 });
  for (const size of pieces) pipe.push(new Uint8Array(size));
  pipe.close();
  async function* generated() {
    for (const size of pieces) yield new Uint8Array(size);
  }
  const cases: Array<
    [string, Uint8Array | AsyncIterable<Uint8Array>, number[]]
  > = [
    ["bytes", new Uint8Array(1920), [1920]],
    ["a pipe", pipe, pieces],
    ["an async generator", generated(), pieces],
  ];
  for (const [name, audio, expected] of cases) {
    assertEquals(await readAll(toPcmSource(audio)), expected, name);
  }
});

Deno.test("a pipe given to toPcmSource is itself", () => {
  const pipe = new PcmPipe({ maxBytes: 320 });
  assertEquals(toPcmSource(pipe), pipe);
});

Deno.test("an async iterable is pulled one piece at a time, only once the last is read", async () => {
  let pulls = 0;
  async function* counted() {
    for (let n = 0; n < 3; n++) {
      pulls++;
      yield new Uint8Array(320);
    }
  }
  const source = toPcmSource(counted());
  let woken = 0;
  source.listen(() => woken++);
  assertEquals(pulls, 0, "nothing is pulled before the first read");
  assertEquals(source.read(), undefined);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(pulls, 1);
  assertEquals(woken, 1);
  // Unread, the piece holds the producer back.
  await new Promise((resolve) => setTimeout(resolve, 10));
  assertEquals(pulls, 1);
  assertEquals(source.read()?.length, 320);
  assertEquals(source.read(), undefined, "the next piece is on its way");
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(pulls, 2);
  source.cancel();
});

Deno.test("cancelling an async iterable returns its iterator and drops what it had", async () => {
  let finished = false;
  async function* endless() {
    try {
      while (true) yield new Uint8Array(320);
    } finally {
      finished = true;
    }
  }
  const source = toPcmSource(endless());
  source.read();
  await new Promise((resolve) => setTimeout(resolve, 0));
  source.cancel();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(finished, true, "the generator's finally ran");
  assertEquals(source.read(), undefined);
  assertEquals(source.done, true);
});

Deno.test("an async iterable that throws ends the source and is reported once", async () => {
  const errors: unknown[] = [];
  async function* failing() {
    yield new Uint8Array(320);
    throw new Error("TTS connection reset");
  }
  const source = toPcmSource(failing(), { onError: (e) => errors.push(e) });
  assertEquals(await readAll(source), [320]);
  assertEquals(errors.map((error) => (error as Error).message), [
    "TTS connection reset",
  ]);
});

Deno.test("cancelling a pipe closes it and drops what it held", () => {
  const pipe = new PcmPipe({ maxBytes: 1 << 20 });
  pipe.push(new Uint8Array(320));
  pipe.cancel();
  pipe.push(new Uint8Array(320));
  assertEquals(pipe.bufferedBytes, 0);
  assertEquals(pipe.read(), undefined);
  assertEquals(pipe.done, true);
});
