/**
 * `fromWebSocket` (src/call/socket.ts): the deadlines of its close path run
 * on the injected clock, so a peer that never answers our close is dropped
 * at `closeTimeoutMs` of the clock's time, not the wall's.
 */
import { assertEquals } from "@std/assert";
import { canReleaseWebSockets } from "../src/call/release_websocket.ts";
import { fromWebSocket, type Socket } from "../src/call/socket.ts";
import { FakeClock } from "./fakes/clock.ts";
import { RawWebSocket } from "./fakes/raw_websocket.ts";

/** A server whose one WebSocket is wrapped by `fromWebSocket` on `clock`, and a raw peer that never answers. */
async function socketPair(
  clock: FakeClock,
  options: { closeTimeoutMs: number },
) {
  const wrapped = Promise.withResolvers<Socket>();
  const released: number[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const { socket, response } = Deno.upgradeWebSocket(request);
      socket.onopen = () =>
        wrapped.resolve(fromWebSocket(socket, {
          clock,
          closeTimeoutMs: options.closeTimeoutMs,
          onReleased: () => released.push(clock.now()),
        }));
      return response;
    },
  );
  const peer = await RawWebSocket.open(server.addr.port, "/");
  const socket = await wrapped.promise;
  return {
    socket,
    peer,
    released,
    async [Symbol.asyncDispose]() {
      try {
        peer.drop();
      } catch {
        // waitForEnd closed it already.
      }
      await server.shutdown();
    },
  };
}

Deno.test({
  name:
    "a close the peer never answers is dropped at closeTimeoutMs on the socket's clock",
  ignore: !canReleaseWebSockets(),
  async fn() {
    const clock = new FakeClock();
    await using pair = await socketPair(clock, { closeTimeoutMs: 5000 });
    pair.socket.close(1000, "bye");
    await clock.advance(4999);
    assertEquals(pair.released, [], "released before closeTimeoutMs");
    await clock.advance(1);
    assertEquals(pair.released, [5000]);
    assertEquals(await pair.peer.waitForEnd(), { closeCode: 1000 });
  },
});

Deno.test({
  name:
    "abort drops the connection on the clock's next turn, after the close frame queued",
  ignore: !canReleaseWebSockets(),
  async fn() {
    const clock = new FakeClock();
    await using pair = await socketPair(clock, { closeTimeoutMs: 5000 });
    pair.socket.close(1008, "policy");
    pair.socket.abort();
    assertEquals(pair.released, [], "released within the same turn");
    await clock.advance(0);
    assertEquals(pair.released, [0]);
    // The close deadline was replaced, not added to: nothing fires later.
    await clock.advance(5000);
    assertEquals(pair.released, [0]);
    assertEquals(await pair.peer.waitForEnd(), { closeCode: 1008 });
  },
});
