/**
 * A fake HTTP webhook receiver on 127.0.0.1 (a clinic's API, a setup
 * webhook): records every request and answers each with what its route's
 * handler returns, which may wait, fail, hang or send a huge body.
 *
 * @example
 * ```ts ignore
 * await using hooks = startRouteServer({
 *   "/book": () => Response.json({ booked: true }),
 * });
 * hooks.url("/book"); // "http://127.0.0.1:PORT/book"
 * hooks.requests[0].json; // what the tool sent
 * ```
 */

/** A request the fake received. */
export interface RouteRequest {
  /** E.g. `POST`. */
  method: string;
  /** The path, e.g. `/book`. */
  path: string;
  /** The query parameters. */
  query: URLSearchParams;
  /** The headers. */
  headers: Headers;
  /** The body as text. */
  text: string;
  /** The body parsed, when JSON. */
  json: unknown;
}

/** Answers a request; may wait on `signal` (aborted when the server closes). */
export type RouteHandler = (
  request: RouteRequest,
  signal: AbortSignal,
) => Response | Promise<Response>;

/** The running fake. */
export interface RouteServer extends AsyncDisposable {
  /** Every request, in arrival order. */
  readonly requests: RouteRequest[];
  /** The full URL of `path`. */
  url(path: string): string;
  /** Stops the server, ending requests still waiting. */
  close(): Promise<void>;
}

/** Waits `ms`, or until `signal` fires. */
export function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Starts the fake on a free loopback port. */
export function startRouteServer(
  routes: Record<string, RouteHandler>,
): RouteServer {
  const requests: RouteRequest[] = [];
  const closing = new AbortController();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
  }, async (request) => {
    const url = new URL(request.url);
    const text = await request.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const recorded: RouteRequest = {
      method: request.method,
      path: url.pathname,
      query: url.searchParams,
      headers: request.headers,
      text,
      json,
    };
    requests.push(recorded);
    const handler = routes[url.pathname];
    if (handler === undefined) {
      return Response.json({ error: "no such route" }, { status: 404 });
    }
    return await handler(recorded, closing.signal);
  });
  const close = async () => {
    closing.abort();
    await server.shutdown();
  };
  return {
    requests,
    url: (path) => `http://127.0.0.1:${server.addr.port}${path}`,
    close,
    [Symbol.asyncDispose]: close,
  };
}
