/**
 * `serveResilient` (src/http/resilient_server.ts): after its listener fails
 * it listens again `retryMs` later on the injected clock. The runtime's
 * `Deno.serve` is wrapped so that the test decides when a real listener
 * "fails" (the real one is shut down and its `finished` rejects, as the
 * runtime does on EMFILE); everything else is real.
 */
import { assertEquals } from "@std/assert";
import {
  type ListenerFailureKind,
  serveResilient,
} from "../src/http/resilient_server.ts";
import { FakeClock } from "./fakes/clock.ts";

type Serve = (
  options: Deno.ServeTcpOptions,
  handler: Deno.ServeHandler<Deno.NetAddr>,
) => Deno.HttpServer<Deno.NetAddr>;

/** Real listeners, each of which the test can make fail as the runtime would. */
class FailingListeners implements Disposable {
  readonly #original = Object.getOwnPropertyDescriptor(Deno, "serve");
  readonly #failures: ((error: Error) => Promise<void>)[] = [];
  /** How many times `Deno.serve` was called. */
  listens = 0;

  constructor() {
    const realServe = Deno.serve as Serve;
    const serve: Serve = (options, handler) => {
      this.listens++;
      const server = realServe(options, handler);
      const finished = Promise.withResolvers<void>();
      server.finished.then(finished.resolve);
      this.#failures.push(async (error) => {
        await server.shutdown();
        finished.reject(error);
      });
      return {
        addr: server.addr,
        finished: finished.promise,
        shutdown: () => server.shutdown(),
        ref: () => server.ref(),
        unref: () => server.unref(),
        [Symbol.asyncDispose]: () => server.shutdown(),
      };
    };
    Object.defineProperty(Deno, "serve", {
      value: serve,
      configurable: true,
      writable: true,
    });
  }

  /** Makes the latest listener fail with `message`. */
  async failLatest(message: string): Promise<void> {
    await this.#failures.at(-1)?.(new Error(message));
  }

  [Symbol.dispose](): void {
    if (this.#original) Object.defineProperty(Deno, "serve", this.#original);
  }
}

async function answers(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/`);
    return (await response.text()) === "ok";
  } catch {
    return false;
  }
}

Deno.test("a failed listener listens again on the same port retryMs later on the server's clock", async () => {
  using listeners = new FailingListeners();
  const clock = new FakeClock();
  const failures: ListenerFailureKind[] = [];
  let restored = 0;
  const server = serveResilient({
    hostname: "127.0.0.1",
    port: 0,
    retryMs: 1000,
    clock,
    onListenerFailed: (kind) => failures.push(kind),
    onListenerRestored: () => restored++,
  }, () => new Response("ok"));
  try {
    const port = server.addr.port;
    assertEquals(await answers(port), true);
    await listeners.failLatest("Too many open files (os error 24)");
    await clock.advance(0);
    assertEquals(failures, ["descriptors"]);
    assertEquals(await answers(port), false, "still listening after failing");
    await clock.advance(999);
    assertEquals([listeners.listens, restored], [1, 0], "retried early");
    await clock.advance(1);
    assertEquals([listeners.listens, restored], [2, 1]);
    assertEquals(await answers(port), true);
    // A second failure is retried at the same pace.
    await listeners.failLatest("Too many open files (os error 24)");
    await clock.advance(999);
    assertEquals([listeners.listens, restored], [2, 1]);
    await clock.advance(1);
    assertEquals([listeners.listens, restored], [3, 2]);
    assertEquals(failures, ["descriptors", "descriptors"]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("a server shut down while waiting to listen again cancels the retry", async () => {
  using listeners = new FailingListeners();
  const clock = new FakeClock();
  const server = serveResilient({
    hostname: "127.0.0.1",
    port: 0,
    clock,
    onListenerFailed: () => {},
  }, () => new Response("ok"));
  await listeners.failLatest("accept failed");
  await clock.advance(0);
  assertEquals(clock.pending, 1, "a retry is waiting");
  await server.shutdown();
  assertEquals(clock.pending, 0, "the retry was cancelled");
  await clock.advance(1000);
  assertEquals(listeners.listens, 1);
});
