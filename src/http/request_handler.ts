/**
 * The `Deno.serve` handler over a {@linkcode Router}: the client's address,
 * header limits, mounted sub-apps, admin auth, failed-auth limiting, and
 * every error as JSON.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type Credentials, isAuthorized } from "./auth.ts";
import type { AuthFailures } from "./auth_failures.ts";
import { clientAddress } from "./client_address.ts";
import { headersOverLimit } from "./header_limit.ts";
import { errorResponse, HttpError } from "./json.ts";
import { decodeParams, type Router } from "./router.ts";

const log = getLogger(["exovoice", "server"]);

/** A sub-app answering paths outside the route table (the web console). */
export interface Mount {
  /** Whether `pathname` is the mount's. */
  owns(pathname: string): boolean;
  /** Answers a request for one of its paths. */
  handle(request: Request): Promise<Response>;
  /** Paths where a 401 it answers is a failed login, counted and limited like any failed auth. */
  loginPaths: readonly string[];
}

/** Options of {@linkcode createRequestHandler}. */
export interface RequestHandlerOptions {
  /** The route table. */
  router: Router;
  /** `TRUST_PROXY`'s hops, for the client's address. */
  trustedProxyHops: number;
  /** What `admin` routes require (`ADMIN_TOKEN`); none means open. */
  admin: Credentials;
  /** Failed authentications per address: past the limit, 429 instead of 401. */
  authFailures: AuthFailures;
  /** Counts a failed authentication this handler answers. */
  onAuthFailed(): void;
  /** Sub-apps tried before the route table. */
  mounts?: readonly Mount[];
}

/** Handles one request. */
export type RequestHandler = (
  request: Request,
  info: Deno.ServeHandlerInfo,
) => Promise<Response>;

/**
 * The request handler: a JSON 400 for a Host that makes no URL, 431 for
 * oversized headers, then the mounts, then the route table (404, 405,
 * 401 for `admin` routes without the token). A 401 from a route that does
 * not count its own failures is counted and, past the limit, answered with
 * 429. Anything not an {@linkcode HttpError} is logged and answered 500.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { systemClock } from "../call/clock.ts";
 * import { AuthFailures } from "./auth_failures.ts";
 * import { createRequestHandler } from "./request_handler.ts";
 * import { Router } from "./router.ts";
 *
 * const handler = createRequestHandler({
 *   router: new Router([
 *     { path: "/secret", access: "admin", methods: { GET: () => new Response("ok") } },
 *   ]),
 *   trustedProxyHops: 0,
 *   admin: { bearer: "adm" },
 *   authFailures: new AuthFailures({ limitPerMin: 10, clock: systemClock }),
 *   onAuthFailed: () => {},
 * });
 * const info = {
 *   remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
 * } as Deno.ServeHandlerInfo;
 * const refused = await handler(new Request("http://localhost/secret"), info);
 * assertEquals(refused.status, 401);
 * await refused.body?.cancel();
 * ```
 */
export function createRequestHandler(
  options: RequestHandlerOptions,
): RequestHandler {
  return async (request, info) => {
    const clientIp = clientAddress(
      request.headers,
      (info.remoteAddr as Deno.NetAddr).hostname ?? "",
      { trustedHops: options.trustedProxyHops },
    );
    // Deno builds the URL from the Host header: a malformed one (`[::1`)
    // makes a URL that does not parse.
    const url = URL.parse(request.url);
    if (url === null) {
      return errorResponse(
        new HttpError(400, {
          code: "invalid_host",
          message:
            "Invalid Host header: expected a host name or address with an optional port",
        }),
      );
    }
    const context = { info, clientIp, pathname: url.pathname };
    try {
      return await dispatch(request, { ...context, options });
    } catch (error) {
      if (!(error instanceof HttpError)) {
        log.error("Request {method} {pathname} failed: {error}", {
          method: request.method,
          pathname: url.pathname,
          error,
        });
      }
      return errorResponse(error);
    }
  };
}

interface DispatchContext {
  options: RequestHandlerOptions;
  info: Deno.ServeHandlerInfo;
  clientIp: string;
  pathname: string;
}

/** One request, past the handler's checks. @throws {HttpError} for every refusal. */
async function dispatch(
  request: Request,
  context: DispatchContext,
): Promise<Response> {
  const { options, info, clientIp, pathname } = context;
  const headersTooLarge = headersOverLimit(request.headers);
  if (headersTooLarge !== undefined) {
    throw new HttpError(431, {
      code: "headers_too_large",
      message: headersTooLarge,
    });
  }
  const mount = options.mounts?.find((mount) => mount.owns(pathname));
  if (mount) return await answerMount(request, { mount, context });
  const { route, handle, params } = options.router.resolve(
    request.method,
    pathname,
  );
  try {
    if (route.access === "admin") requireAdmin(request, options.admin);
    return await handle(request, {
      info,
      params: decodeParams(params),
      clientIp,
    });
  } catch (error) {
    if (
      !(error instanceof HttpError) || error.status !== 401 ||
      route.countsOwnAuthFailures
    ) {
      throw error;
    }
    options.onAuthFailed();
    throw options.authFailures.failed(clientIp, pathname) ?? error;
  }
}

/** A mount's answer; a failed login past the limit becomes a 429. */
async function answerMount(
  request: Request,
  { mount, context }: { mount: Mount; context: DispatchContext },
): Promise<Response> {
  const { options, clientIp, pathname } = context;
  const response = await mount.handle(request);
  if (response.status !== 401 || !mount.loginPaths.includes(pathname)) {
    return response;
  }
  options.onAuthFailed();
  const limited = options.authFailures.failed(clientIp, pathname);
  if (!limited) return response;
  await response.body?.cancel();
  return errorResponse(limited);
}

/** @throws {HttpError} 401 unless the request carries the admin token (when set). */
function requireAdmin(request: Request, admin: Credentials): void {
  if (isAuthorized(request.headers.get("authorization"), admin)) return;
  throw new HttpError(401, {
    code: "unauthorized",
    message:
      "Missing or invalid admin token: send Authorization: Bearer <ADMIN_TOKEN>",
    headers: { "www-authenticate": 'Bearer realm="exovoice"' },
  });
}
