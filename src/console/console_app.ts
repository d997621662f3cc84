/**
 * The web console at `/console`: its page and static files, the login that
 * trades `ADMIN_TOKEN` for a session cookie, the JSON and server-sent-event
 * API the page reads, recordings with range requests, and the single-use
 * tokens the browser softphone dials the voicebot socket with.
 *
 * @module
 */

import type { BotFactory } from "../bots/bot.ts";
import type { Call } from "../call/call.ts";
import { type Clock, repeat, systemClock } from "../call/clock.ts";
import type { SessionRegistry } from "../call/registry.ts";
import { timingSafeEqual } from "../http/auth.ts";
import { HttpError, jsonResponse } from "../http/json.ts";
import type { ExovoiceMetrics } from "../metrics/exovoice_metrics.ts";
import { callOutcome } from "../records/call_record.ts";
import { type CallStore, InvalidCursorError } from "../records/call_store.ts";
import { parseCallQuery } from "../routes/calls.ts";
import type { VoicebotSocketDeps } from "../routes/voicebot_socket.ts";
import { ConsoleSessions, SESSION_MAX_MS } from "./console_sessions.ts";
import { fileResponse } from "./file_response.ts";
import { LiveFeed, type LiveFeedEvent } from "./live_feed.ts";
import { RecentCalls } from "./recent_calls.ts";

/** The console's cookie. */
export const SESSION_COOKIE = "exovoice_console";
/** Rates the softphone offers. */
export const SOFTPHONE_RATES: readonly number[] = [8000, 16000];
/** How often an idle event stream sends a comment, so proxies keep it open. */
const HEARTBEAT_MS = 15_000;

const STATIC_FILES: Record<string, string> = {
  "console.css": "text/css; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "softphone.js": "text/javascript; charset=utf-8",
  "worklets.js": "text/javascript; charset=utf-8",
  "ui.js": "text/javascript; charset=utf-8",
};

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

/** What the console needs from the server. */
export interface ConsoleOptions {
  /** `ADMIN_TOKEN`; without it the console is open, like the admin API. */
  adminToken?: string;
  /** Live calls. */
  registry: SessionRegistry;
  /** Call records, when kept. */
  store?: CallStore;
  /** The server's metrics, for provider errors. */
  metrics: ExovoiceMetrics;
  /** `RECORDINGS_DIR`: recordings are served only from under it. */
  recordingsDir?: string;
  /** The voicebot socket's path. */
  wsPath: string;
  /** The bots the softphone may call, by name. */
  bots: Record<string, BotFactory>;
  /** Whether cookies get `Secure` on plain-HTTP requests too (the server terminates TLS). */
  secure: boolean;
  /** Whether to believe `X-Forwarded-Proto` (`TRUST_PROXY`). */
  trustProxy: boolean;
  /** Time for logins, the overview and the feeds' timers; the system clock by default. */
  clock?: Clock;
}

/**
 * The console: mount {@linkcode ConsoleApp.handle} on `/console` and its
 * sub-paths, {@linkcode ConsoleApp.follow} every call, and let the voicebot
 * upgrade ask {@linkcode ConsoleApp.softphoneDeps} about `console_token`.
 */
export class ConsoleApp {
  /** Logins and softphone tokens. */
  readonly sessions: ConsoleSessions;
  /** The live-call feed. */
  readonly feed: LiveFeed;
  /** Calls ended in the last hour. */
  readonly recent: RecentCalls = new RecentCalls();
  #options: ConsoleOptions;
  #clock: Clock;
  #streams = new Map<ReadableStreamDefaultController, () => void>();
  #staticCache = new Map<string, Uint8Array<ArrayBuffer>>();

  /** Creates the console over `options`. */
  constructor(options: ConsoleOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.sessions = new ConsoleSessions({ clock: this.#clock });
    this.feed = new LiveFeed(options.registry, { clock: this.#clock });
  }

  /** Whether `pathname` is the console's. */
  static owns(pathname: string): boolean {
    return pathname === "/console" || pathname.startsWith("/console/");
  }

  /** Remembers `call` for the overview once it ends. */
  follow(call: Call): void {
    call.ended.then((reason) =>
      this.recent.add({
        endedAt: this.#clock.epochMs(),
        outcome: callOutcome(reason).outcome,
        turns: call.report?.turns ?? [],
      })
    );
  }

  /**
   * For an upgrade carrying `?console_token=`: the socket's dependencies
   * for the token's bot, open to this one caller. Undefined when the URL has
   * no token.
   *
   * @throws {HttpError} 401 when the token is unknown, used or expired.
   */
  softphoneDeps(
    url: URL,
    deps: VoicebotSocketDeps,
  ): VoicebotSocketDeps | undefined {
    const token = url.searchParams.get("console_token");
    if (token === null) return undefined;
    const grant = this.sessions.redeemSoftphoneToken(token);
    const createBot = grant && this.#options.bots[grant.bot];
    // The URL must be the one minted: the token is for that call alone.
    const minted = grant &&
      url.searchParams.get("sample-rate") === String(grant.sampleRate) &&
      url.searchParams.get("call_id") === grant.callId;
    if (!grant || !createBot || !minted) {
      throw new HttpError(401, {
        code: "unauthorized",
        message:
          "Invalid, used or expired console token: start the call again from the console",
      });
    }
    return { ...deps, credentials: {}, botName: grant.bot, createBot };
  }

  /** Ends every event stream: the server is stopping. */
  close(): void {
    this.feed.close();
    for (const [controller, cleanup] of this.#streams) {
      cleanup();
      try {
        controller.close();
      } catch {
        // Already closed by the client.
      }
    }
    this.#streams.clear();
  }

  /**
   * Answers a request under `/console`.
   *
   * @throws {HttpError} 401 without a login, 403 for a cross-site write, 404, 400.
   */
  async handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const method = request.method === "HEAD" ? "GET" : request.method;
    const page = await this.#page(request, { path, method });
    if (page) return page;
    if (!path.startsWith("/console/api/")) {
      throw new HttpError(404, {
        code: "not_found",
        message: `No console page "${path}"`,
      });
    }
    if (!this.#isLoggedIn(request)) {
      throw new HttpError(401, {
        code: "unauthorized",
        message:
          "Log in to the console first: POST /console/login with the admin token",
      });
    }
    return await this.#api(request, { url, path, method });
  }

  /** What anyone may reach: the pages, their files, login, logout and the session check. */
  async #page(
    request: Request,
    { path, method }: { path: string; method: string },
  ): Promise<Response | undefined> {
    if (path === "/console") {
      allow(method, ["GET"]);
      return this.#static("index.html", "text/html; charset=utf-8");
    }
    const staticName = /^\/console\/static\/([a-z_]+\.(?:js|css))$/.exec(path)
      ?.[1];
    if (staticName !== undefined && STATIC_FILES[staticName]) {
      allow(method, ["GET"]);
      return this.#static(staticName, STATIC_FILES[staticName]);
    }
    if (path === "/console/login") {
      allow(method, ["POST"]);
      return await this.#login(request);
    }
    if (path === "/console/logout") {
      allow(method, ["POST"]);
      checkSameOrigin(request);
      this.#logout(request);
      return jsonResponse({ authenticated: false }, 200, {
        "set-cookie": this.#cookie(request, "", 0),
      });
    }
    if (path === "/console/api/session") {
      allow(method, ["GET"]);
      return jsonResponse({
        authenticated: this.#isLoggedIn(request),
        open: this.#options.adminToken === undefined,
        bots: Object.keys(this.#options.bots),
        rates: SOFTPHONE_RATES,
        wsPath: this.#options.wsPath,
        records: this.#options.store !== undefined,
      });
    }
    return undefined;
  }

  /** The logged-in API under `/console/api/`. */
  async #api(
    request: Request,
    { url, path, method }: { url: URL; path: string; method: string },
  ): Promise<Response> {
    const api = path.slice("/console/api".length);
    if (api === "/live") {
      allow(method, ["GET"]);
      return this.#liveStream();
    }
    if (api === "/overview") {
      allow(method, ["GET"]);
      return jsonResponse(await this.#overview());
    }
    if (api === "/softphone") {
      allow(method, ["POST"]);
      return await this.#mintSoftphone(request);
    }
    if (api === "/calls") {
      allow(method, ["GET"]);
      return await this.#listCalls(url);
    }
    const call = /^\/calls\/([^/]+)(\/recording)?$/.exec(api);
    if (call) {
      allow(method, ["GET"]);
      const id = decodePathSegment(call[1]);
      return call[2]
        ? await this.#recording(request, id)
        : jsonResponse(await this.#call(id));
    }
    throw new HttpError(404, {
      code: "not_found",
      message: `No console API "${path}"`,
    });
  }

  async #static(name: string, contentType: string): Promise<Response> {
    let body = this.#staticCache.get(name);
    if (body === undefined) {
      body = await Deno.readFile(new URL(`./static/${name}`, import.meta.url));
      this.#staticCache.set(name, body);
    }
    return new Response(body, {
      headers: {
        "content-type": contentType,
        "cache-control": "no-cache",
        ...SECURITY_HEADERS,
      },
    });
  }

  async #login(request: Request): Promise<Response> {
    checkSameOrigin(request);
    const body = await readJson(request);
    const token = typeof body.token === "string" ? body.token : undefined;
    const expected = this.#options.adminToken;
    if (
      expected !== undefined &&
      (token === undefined || !timingSafeEqual(token, expected))
    ) {
      throw new HttpError(401, {
        code: "unauthorized",
        message: "Wrong admin token: use the server's ADMIN_TOKEN",
      });
    }
    this.#logout(request);
    const id = this.sessions.login();
    return jsonResponse({ authenticated: true }, 200, {
      "set-cookie": this.#cookie(request, id, SESSION_MAX_MS / 1000),
    });
  }

  #logout(request: Request): void {
    const id = cookieValue(request, SESSION_COOKIE);
    this.sessions.logout(id);
  }

  #isLoggedIn(request: Request): boolean {
    if (this.#options.adminToken === undefined) return true;
    return this.sessions.isValid(cookieValue(request, SESSION_COOKIE));
  }

  #cookie(request: Request, value: string, maxAgeS: number): string {
    const forwardedHttps = this.#options.trustProxy &&
      request.headers.get("x-forwarded-proto")?.split(",")[0].trim() ===
        "https";
    const secure = this.#options.secure || forwardedHttps ||
      new URL(request.url).protocol === "https:";
    return [
      `${SESSION_COOKIE}=${value}`,
      "Path=/console",
      "HttpOnly",
      "SameSite=Strict",
      `Max-Age=${Math.floor(maxAgeS)}`,
      ...(secure ? ["Secure"] : []),
    ].join("; ");
  }

  #liveStream(): Response {
    const encoder = new TextEncoder();
    let cleanup = () => {};
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        const send = (text: string) => {
          try {
            controller.enqueue(encoder.encode(text));
          } catch {
            cleanup();
          }
        };
        const unsubscribe = this.feed.subscribe((event: LiveFeedEvent) =>
          send(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`)
        );
        const stopHeartbeat = repeat(this.#clock, () => send(": ping\n\n"), {
          everyMs: HEARTBEAT_MS,
        });
        cleanup = () => {
          unsubscribe();
          stopHeartbeat();
          this.#streams.delete(controller);
        };
        this.#streams.set(controller, cleanup);
      },
      cancel: () => cleanup(),
    });
    return new Response(stream, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
      },
    });
  }

  async #overview() {
    const providerErrors = await this.#options.metrics.registry.samples(
      "exovoice_provider_errors_total",
    );
    return {
      liveCalls: this.#options.registry.size,
      ...this.recent.overview(this.#clock.epochMs()),
      providerErrors: providerErrors.map(({ labels, value }) => ({
        provider: labels.provider,
        kind: labels.kind,
        count: value,
      })),
    };
  }

  async #mintSoftphone(request: Request): Promise<Response> {
    checkSameOrigin(request);
    const body = await readJson(request);
    const bots = Object.keys(this.#options.bots);
    const bot = body.bot ?? bots[0];
    if (typeof bot !== "string" || !this.#options.bots[bot]) {
      throw new HttpError(400, {
        code: "invalid_bot",
        message: `Invalid bot "${String(bot)}": expected one of ${
          bots.join(", ")
        }`,
      });
    }
    const sampleRate = body.sampleRate ?? 8000;
    if (
      typeof sampleRate !== "number" || !SOFTPHONE_RATES.includes(sampleRate)
    ) {
      throw new HttpError(400, {
        code: "invalid_sample_rate",
        message: `Invalid sampleRate "${String(sampleRate)}": expected ${
          SOFTPHONE_RATES.join(" or ")
        }`,
      });
    }
    const callId = `softphone-${crypto.randomUUID()}`;
    const token = this.sessions.mintSoftphoneToken({
      bot,
      sampleRate,
      callId,
    });
    const query = new URLSearchParams({
      call_id: callId,
      "sample-rate": String(sampleRate),
      console_token: token,
    });
    return jsonResponse({
      callId,
      bot,
      sampleRate,
      path: `${this.#options.wsPath}?${query}`,
    });
  }

  async #listCalls(url: URL): Promise<Response> {
    const store = this.#store();
    const query = parseCallQuery(url.searchParams);
    const outcome = url.searchParams.get("outcome") || undefined;
    if (outcome !== undefined && !/^[a-z_]{1,40}$/.test(outcome)) {
      throw new HttpError(400, {
        code: "invalid_query",
        message:
          `Invalid outcome "${outcome}": expected a name such as stop, closed or hangup`,
      });
    }
    let page;
    try {
      page = await store.list(query);
    } catch (error) {
      if (!(error instanceof InvalidCursorError)) throw error;
      throw new HttpError(400, {
        code: "invalid_cursor",
        message: error.message,
      });
    }
    const calls = outcome === undefined
      ? page.calls
      : page.calls.filter((call) => call.ended.outcome === outcome);
    return jsonResponse({ calls, cursor: page.cursor ?? null });
  }

  async #call(id: string) {
    const call = await this.#store().get(id);
    if (call === undefined) {
      throw new HttpError(404, {
        code: "call_not_found",
        message: `No call record "${id}"`,
      });
    }
    return call;
  }

  async #recording(request: Request, id: string): Promise<Response> {
    const call = await this.#call(id);
    const dir = this.#options.recordingsDir;
    if (!call.recording || dir === undefined) {
      throw new HttpError(404, {
        code: "recording_not_found",
        message: `Call "${id}" has no recording`,
      });
    }
    const path = call.recording.path;
    if (!(await isInside(path, dir))) {
      throw new HttpError(404, {
        code: "recording_not_found",
        message: `Recording of call "${id}" is not under RECORDINGS_DIR`,
      });
    }
    return await fileResponse(request, path, { contentType: "audio/wav" });
  }

  #store(): CallStore {
    if (!this.#options.store) {
      throw new HttpError(503, {
        code: "records_unavailable",
        message: "Call records are not kept by this server",
      });
    }
    return this.#options.store;
  }
}

function allow(method: string, methods: string[]): void {
  if (methods.includes(method)) return;
  throw new HttpError(405, {
    code: "method_not_allowed",
    message: `Method "${method}" not allowed: use ${methods.join(", ")}`,
    headers: { allow: methods.join(", ") },
  });
}

/**
 * Refuses a write another site may have caused: it must be JSON (which a
 * cross-site form cannot send without a CORS preflight we never grant) and
 * any `Origin` must be this server's.
 */
function checkSameOrigin(request: Request): void {
  const origin = request.headers.get("origin");
  const host = request.headers.get("host");
  if (origin !== null && origin !== "null") {
    let originHost: string | undefined;
    try {
      originHost = new URL(origin).host;
    } catch {
      originHost = undefined;
    }
    if (originHost !== host) {
      throw new HttpError(403, {
        code: "cross_origin",
        message: `Origin "${origin}" may not act on this console`,
      });
    }
  } else if (origin === "null") {
    throw new HttpError(403, {
      code: "cross_origin",
      message: `Origin "null" may not act on this console`,
    });
  }
  const type = request.headers.get("content-type") ?? "";
  if (!type.toLowerCase().startsWith("application/json")) {
    throw new HttpError(415, {
      code: "unsupported_media_type",
      message: `Content-Type "${type}" not accepted: send application/json`,
    });
  }
}

async function readJson(request: Request): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = await request.json();
  } catch {
    throw new HttpError(400, {
      code: "invalid_json",
      message: "Request body is not valid JSON",
    });
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(400, {
      code: "invalid_json",
      message: "Request body must be a JSON object",
    });
  }
  return body as Record<string, unknown>;
}

function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, {
      code: "invalid_path",
      message: `Invalid call id "${segment}": bad percent-encoding`,
    });
  }
}

function cookieValue(request: Request, name: string): string | undefined {
  const header = request.headers.get("cookie");
  if (header === null) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      return part.slice(eq + 1).trim();
    }
  }
  return undefined;
}

async function isInside(path: string, dir: string): Promise<boolean> {
  try {
    const [real, root] = await Promise.all([
      Deno.realPath(path),
      Deno.realPath(dir),
    ]);
    return real.startsWith(root.endsWith("/") ? root : `${root}/`);
  } catch {
    return false;
  }
}
