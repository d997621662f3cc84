import { assertEquals } from "@std/assert";
import { concat } from "@std/bytes";
import { BodyReader } from "../src/providers/body_reader.ts";

/** A loopback server streaming `pieces` pieces of `size` bytes, each its index. */
function pieceServer(
  pieces: number,
  size: number,
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    let sent = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    return new Response(
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          // A pause between pieces, so each arrives as its own network read.
          await new Promise((resolve) => timer = setTimeout(resolve, 2));
          controller.enqueue(new Uint8Array(size).fill(sent % 256));
          if (++sent === pieces) controller.close();
        },
        cancel: () => clearTimeout(timer),
      }),
    );
  });
}

async function readAll(reader: BodyReader): Promise<Uint8Array[]> {
  const pieces: Uint8Array[] = [];
  for (let piece = await reader.read(); piece; piece = await reader.read()) {
    pieces.push(piece);
  }
  return pieces;
}

Deno.test("a fetched body's small pieces each own just their bytes, not a 64 KiB read buffer", async () => {
  await using server = pieceServer(20, 320);
  const response = await fetch(`http://127.0.0.1:${server.addr.port}/`);
  const pieces = await readAll(BodyReader.of(response.body!));
  for (const piece of pieces) {
    assertEquals(piece.buffer.byteLength, piece.length);
  }
  const expected = concat(
    Array.from({ length: 20 }, (_, i) => new Uint8Array(320).fill(i)),
  );
  assertEquals(concat(pieces), expected);
});

Deno.test("a body larger than one read arrives whole and in order", async () => {
  await using server = pieceServer(3, 40_000);
  const response = await fetch(`http://127.0.0.1:${server.addr.port}/`);
  const all = concat(await readAll(BodyReader.of(response.body!)));
  assertEquals(all.length, 120_000);
  assertEquals([all[0], all[40_000], all[119_999]], [0, 1, 2]);
});

Deno.test("a body from a plain stream is read too, and views into larger buffers are copied", async () => {
  const big = new Uint8Array(65_536).fill(7);
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(big.subarray(0, 320));
      controller.enqueue(new Uint8Array(0));
      controller.enqueue(new Uint8Array([1, 2]));
      controller.close();
    },
  });
  const pieces = await readAll(BodyReader.of(body));
  assertEquals(pieces, [new Uint8Array(320).fill(7), new Uint8Array([1, 2])]);
  assertEquals(pieces[0].buffer.byteLength, 320);
});

Deno.test("cancel stops the body", async () => {
  await using server = pieceServer(1000, 320);
  const response = await fetch(`http://127.0.0.1:${server.addr.port}/`);
  const reader = BodyReader.of(response.body!);
  assertEquals((await reader.read())?.length, 320);
  await reader.cancel();
  assertEquals(response.bodyUsed, true);
});
