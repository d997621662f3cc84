/**
 * The route table as data and the hand-written matching over it: a path
 * with `:name` segments, its handlers by method, and who may call it.
 * Answers 404 and 405 as {@linkcode HttpError}s; checking access is the
 * request handler's (`request_handler.ts`).
 *
 * @module
 */

import { HttpError } from "./json.ts";

/** Who may call a route: anyone, or holders of `ADMIN_TOKEN`. */
export type Access = "public" | "admin";

/** What a handler gets besides the request. */
export interface RouteContext {
  /** The connection's details, as `Deno.serve` gives them. */
  info: Deno.ServeHandlerInfo;
  /** The `:name` segments of the route's path, percent-decoded. */
  params: Record<string, string>;
  /** The client's address (see `TRUST_PROXY`). */
  clientIp: string;
}

/** Answers one request on a route. */
export type RouteHandler = (
  request: Request,
  context: RouteContext,
) => Response | Promise<Response>;

/** One row of the route table. */
export interface Route {
  /** The path; a `:name` segment matches any one segment. */
  path: string;
  /** Who may call it. */
  access: Access;
  /** Handlers by method; HEAD is answered by GET's. */
  methods: Readonly<Record<string, RouteHandler>>;
  /**
   * Whether its handler counts its own failed authentications (the voicebot
   * socket's upgrade guard does); otherwise a 401 it throws is counted and
   * limited by the request handler.
   */
  countsOwnAuthFailures?: boolean;
}

/** A request's route, found by {@linkcode Router.resolve}. */
export interface ResolvedRoute {
  /** The route. */
  route: Route;
  /** The handler for the request's method. */
  handle: RouteHandler;
  /** The `:name` segments, still percent-encoded: see {@linkcode decodeParams}. */
  params: Record<string, string>;
}

/** Longest path parameter (a call id or CallSid) accepted, in characters. */
export const MAX_PATH_PARAM_CHARS = 256;

interface CompiledRoute {
  route: Route;
  segments: string[];
}

/**
 * Finds the route and handler for a path and method, in table order.
 *
 * @example
 * ```ts
 * import { assertEquals, assertThrows } from "@std/assert";
 * import { HttpError } from "./json.ts";
 * import { Router } from "./router.ts";
 *
 * const router = new Router([
 *   { path: "/calls/:id", access: "admin", methods: { GET: () => new Response("one call") } },
 * ]);
 * const found = router.resolve("GET", "/calls/CA1");
 * assertEquals([found.route.access, found.params], ["admin", { id: "CA1" }]);
 * const error = assertThrows(() => router.resolve("POST", "/calls/CA1"), HttpError);
 * assertEquals([error.status, error.headers.allow], [405, "GET"]);
 * ```
 */
export class Router {
  #routes: CompiledRoute[];

  /** Builds the router over `routes`. */
  constructor(routes: readonly Route[]) {
    this.#routes = routes.map((route) => ({
      route,
      segments: segmentsOf(route.path),
    }));
  }

  /**
   * The route for `method` on `pathname`.
   *
   * @throws {HttpError} 404 when no path matches, 405 with `Allow` when the
   * path has no handler for `method`.
   */
  resolve(method: string, pathname: string): ResolvedRoute {
    const match = this.#match(pathname);
    if (!match) {
      throw new HttpError(404, {
        code: "not_found",
        message: `No route for "${pathname}"`,
      });
    }
    const { route, params } = match;
    const handle = route.methods[method === "HEAD" ? "GET" : method];
    if (!handle) {
      const allow = Object.keys(route.methods).join(", ");
      throw new HttpError(405, {
        code: "method_not_allowed",
        message: `Method "${method}" not allowed: use ${allow}`,
        headers: { allow },
      });
    }
    return { route, handle, params };
  }

  #match(
    pathname: string,
  ): { route: Route; params: Record<string, string> } | undefined {
    const segments = segmentsOf(pathname);
    for (const { route, segments: expected } of this.#routes) {
      if (expected.length !== segments.length) continue;
      const params: Record<string, string> = {};
      const matches = expected.every((part, i) => {
        if (!part.startsWith(":")) return part === segments[i];
        // Decoded only after auth (decodeParams): a stranger's bad escape
        // must not be answered before their credentials are.
        params[part.slice(1)] = segments[i];
        return true;
      });
      if (matches) return { route, params };
    }
    return undefined;
  }
}

/**
 * Percent-decodes path parameters.
 *
 * @throws {HttpError} 400 for a bad escape or a value longer than
 * {@linkcode MAX_PATH_PARAM_CHARS}.
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { decodeParams } from "./router.ts";
 *
 * assertEquals(decodeParams({ id: "CA%2F1" }), { id: "CA/1" });
 * ```
 */
export function decodeParams(
  raw: Record<string, string>,
): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [name, text] of Object.entries(raw)) {
    if (text.length > MAX_PATH_PARAM_CHARS * 3) throw paramTooLong(name, text);
    let value: string;
    try {
      value = decodeURIComponent(text);
    } catch {
      throw new HttpError(400, {
        code: "invalid_path",
        message: `Invalid ${name} "${
          text.slice(0, 64)
        }": a % must start an escape such as %2F`,
      });
    }
    if (value.length > MAX_PATH_PARAM_CHARS) throw paramTooLong(name, value);
    params[name] = value;
  }
  return params;
}

function segmentsOf(path: string): string[] {
  return path.split("/").filter(Boolean);
}

function paramTooLong(name: string, text: string): HttpError {
  return new HttpError(400, {
    code: "invalid_path",
    message: `Invalid ${name} "${
      text.slice(0, 32)
    }…": longer than ${MAX_PATH_PARAM_CHARS} characters`,
  });
}
