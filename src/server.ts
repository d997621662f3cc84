/**
 * The HTTP server: a hand-written router over `Deno.serve`, admin auth,
 * limits, JSON errors, the sweep that ends calls past their deadlines, and
 * the graceful drain.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { createEchoBot } from "./bots/echo.ts";
import type { BotFactory } from "./bots/bot.ts";
import type { CallSettings } from "./call/call.ts";
import { type Clock, systemClock } from "./call/clock.ts";
import { SessionRegistry } from "./call/registry.ts";
import type { BotName, Config } from "./config.ts";
import { ConnectApi } from "./exotel/connect_api.ts";
import { type Credentials, isAuthorized } from "./http/auth.ts";
import { clientAddress } from "./http/client_address.ts";
import { headersOverLimit } from "./http/header_limit.ts";
import { IpAllowList } from "./http/ip_allowlist.ts";
import { errorResponse, HttpError } from "./http/json.ts";
import { publicBaseUrl, voicebotUrl } from "./http/public_url.ts";
import { RateLimiter } from "./http/rate_limit.ts";
import { ConnectionsPerAddress } from "./http/connections_per_address.ts";
import {
  type ListenerFailureKind,
  type ResilientServer,
  serveResilient,
} from "./http/resilient_server.ts";
import {
  descriptorsNeeded,
  readDescriptorLimit,
} from "./metrics/process_descriptors.ts";
import { ExovoiceMetrics } from "./metrics/exovoice_metrics.ts";
import { buildCallRecord } from "./records/call_record.ts";
import { CallStore, openKv } from "./records/call_store.ts";
import { KvFileWatch } from "./records/kv_file_watch.ts";
import { CallRecorder } from "./records/recorder.ts";
import { LiveSessions } from "./instances/live_sessions.ts";
import { CallWebhook } from "./webhooks/call_webhook.ts";
import { DeliveryQueue } from "./webhooks/delivery_queue.ts";
import {
  checkRecordingsDir,
  listenError,
  openNamedKv,
  readTlsFiles,
} from "./startup_checks.ts";
import { ConsoleApp } from "./console/console_app.ts";
import type { Call } from "./call/call.ts";
import { handleGetCall, handleListCalls } from "./routes/calls.ts";
import { handleRedeliver } from "./routes/call_webhook.ts";
import { handleHealth } from "./routes/health.ts";
import { handleMetrics } from "./routes/metrics.ts";
import { handlePassthru, type OutcomeLookup } from "./routes/passthru.ts";
import { handleStatusCallback } from "./routes/status_callback.ts";
import {
  handleCallStatus,
  handlePlaceCall,
  type OutboundCallDeps,
} from "./routes/outbound_call.ts";
import { handleSessions } from "./routes/sessions.ts";
import { handleVoiceConnect } from "./routes/voice_connect.ts";
import {
  handleVoicebotSocket,
  type VoicebotSocketDeps,
} from "./routes/voicebot_socket.ts";
import denoJson from "../deno.json" with { type: "json" };

/** The running version, from `deno.json`. */
export const VERSION: string = denoJson.version;

/** The bots that need no configuration of their own; `agent` is built from its settings in `main.ts`. */
export const BOTS: Partial<Record<BotName, BotFactory>> = {
  echo: createEchoBot,
};

/** Seconds a refused caller is told to wait before trying again. */
const RETRY_AFTER_S = 5;

/** Socket backlog above which the player stops sending, per call. */
const MAX_SOCKET_BACKLOG_BYTES = 256 * 1024;

/** Caller audio held per call while `start` has not arrived (1 s at 24 kHz). */
const MAX_PRE_START_BYTES = 48_000;

const log = getLogger(["exovoice", "server"]);

interface RequestContext {
  info: Deno.ServeHandlerInfo;
  /** The `:name` segments of the route's path. */
  params: Record<string, string>;
  /** The client's address (see `TRUST_PROXY`). */
  clientIp: string;
}

type Handler = (
  request: Request,
  context: RequestContext,
) => Response | Promise<Response>;

interface Route {
  /** Path segments; `:name` matches any one segment. */
  segments: string[];
  /** Handlers by method. */
  methods: Record<string, Handler>;
  /** Whether `ADMIN_TOKEN` guards it. */
  admin: boolean;
}

/** A request handler plus what it runs on. */
export interface App {
  /** Handles one request. */
  handler: (request: Request, info: Deno.ServeHandlerInfo) => Promise<Response>;
  /** Live calls. */
  registry: SessionRegistry;
  /** Ends calls past a deadline: idle, no `start` in time, or too long. Returns how many. */
  sweepCalls(): number;
  /** Refuses new calls from now on, as a drain starts. */
  startDraining(): void;
  /** What the app keeps beyond live calls. */
  services: Services;
}

/** What the server keeps beyond live calls: call records, the cross-instance list, metrics. */
export interface Services {
  /** Prometheus metrics. */
  metrics: ExovoiceMetrics;
  /** Call records; without it, records are not kept and `/calls` answers 503. */
  store?: CallStore;
  /** This instance's live sessions in the shared KV, for `?scope=all`. */
  live?: LiveSessions;
  /** What `/health` reports as wrong (KV, duplicate instance); none by default. */
  problems?: () => string[];
  /** Delivers each finished call's record to `CALL_WEBHOOK_URL`, when set. */
  callWebhook?: CallWebhook;
}

/** Replaceable parts, for tests. */
export interface AppOptions {
  /** Records, metrics and the live list; metrics alone by default. */
  services?: Partial<Services>;
  /** The registry of live calls; a fresh one by default. */
  registry?: SessionRegistry;
  /** Time and timers for calls; the system clock by default. */
  clock?: Clock;
  /** Bot factory overriding `BOT`. */
  createBot?: BotFactory;
  /** The name `/health` and the logs give `createBot`; `BOT`'s by default. */
  botName?: string;
  /** How a call left the bot (`transfer`, `end_call`), for the Passthru endpoint. */
  outcomeOf?: OutcomeLookup;
  /** Checks the socket URL's `agent=` before the upgrade: a message refuses the call with 404. */
  checkAgent?: VoicebotSocketDeps["checkAgent"];
}

/** Builds the request handler for `config`. */
export function createApp(config: Config, options: AppOptions = {}): App {
  const registry = options.registry ?? new SessionRegistry();
  const startedAt = performance.now();
  const services: Services = {
    metrics: new ExovoiceMetrics({
      version: VERSION,
      instanceId: config.instanceId,
    }),
    ...options.services,
  };
  const { metrics, store, live } = services;
  let draining = false;
  const settings: CallSettings = {
    chunkBytes: config.chunkBytes,
    leadMs: config.playoutLeadMs,
    maxBufferedBytes: MAX_SOCKET_BACKLOG_BYTES,
    maxFrameBytes: config.maxFrameBytes,
    maxPreStartBytes: MAX_PRE_START_BYTES,
  };
  const socketDeps: VoicebotSocketDeps = {
    credentials: { bearer: config.wsToken, basic: config.wsBasicAuth },
    registry,
    clock: options.clock ?? systemClock,
    settings,
    botName: options.botName ?? config.bot,
    createBot: botFactory(config.bot, options.createBot),
    checkAgent: options.checkAgent,
    createRecorder: recorderFactory(config.recordingsDir),
    onCall: (call) => {
      followCall(call, services, config.instanceId);
      webConsole.follow(call);
    },
    closeTimeoutMs: config.closeTimeoutS * 1000,
    onSocketReleased: () => metrics.connections.socketReleased(),
  };
  const connections = new ConnectionsPerAddress(config.maxConnectionsPerIp);
  const webConsole = new ConsoleApp({
    adminToken: config.adminToken,
    registry,
    store,
    metrics,
    recordingsDir: config.recordingsDir,
    wsPath: config.wsPath,
    bots: softphoneBots(config.bot, socketDeps.createBot),
    secure: config.tls !== undefined,
    trustProxy: config.trustProxy,
  });
  const outboundDeps: OutboundCallDeps = {
    api: config.exotelApi ? new ConnectApi(config.exotelApi) : undefined,
    streamUrlFor: (request, { sampleRate, customParameters }) =>
      voicebotUrl(
        publicBaseUrl(request, {
          configured: config.publicBaseUrl,
          trustedProxyHops: config.trustedProxyHops,
        }),
        {
          path: config.wsPath,
          sampleRate,
          customParameters,
        },
      ),
  };
  const admin: Credentials = { bearer: config.adminToken };
  const allowList = config.ipAllowList.length > 0
    ? new IpAllowList(config.ipAllowList)
    : undefined;
  const authFailures = new RateLimiter({
    limit: config.authFailureLimitPerMin,
    windowMs: 60_000,
  });
  const statusLimiter = new RateLimiter({
    limit: config.statusCallbackRateLimitPerMin,
    windowMs: 60_000,
  });
  /**
   * Counts a failed authentication; past the limit, returns the 429 to
   * answer instead of the 401. Only failures are limited, so the right
   * credentials always pass and a stranger failing from a shared address (a
   * proxy's, without `TRUST_PROXY`) cannot lock Exotel out.
   */
  function limitAuthFailure(
    clientIp: string,
    pathname: string,
  ): HttpError | undefined {
    const now = Date.now();
    const wasLimited = authFailures.isLimited(clientIp, now);
    if (!authFailures.hit(clientIp, now)) {
      return new HttpError(
        429,
        "too_many_auth_failures",
        "Too many failed authentication attempts from this address: wait, then send the right credentials",
        {
          headers: {
            "retry-after": String(authFailures.retryAfterS(clientIp, now)),
          },
        },
      );
    }
    log.warn("Authentication failed from {clientIp} on {pathname}", {
      clientIp,
      pathname,
    });
    if (!wasLimited && authFailures.isLimited(clientIp, now)) {
      log.warn(
        "{clientIp} reached AUTH_FAILURE_LIMIT_PER_MIN: its failures get 429 for {seconds} s; its right credentials still pass",
        { clientIp, seconds: authFailures.retryAfterS(clientIp, now) },
      );
    }
    return undefined;
  }

  const callLimiter = new RateLimiter({
    limit: config.callRateLimitPerMin,
    windowMs: 60_000,
  });

  const upgrade: Handler = (request, { clientIp }) => {
    if (draining) {
      throw unavailable(
        "draining",
        "Server is draining for a restart: call another instance",
      );
    }
    // The console's softphone: a browser, so neither Exotel's credentials
    // nor its addresses; a single-use token the console minted instead.
    const softphone = webConsole.softphoneDeps(
      new URL(request.url),
      socketDeps,
    );
    if (allowList && !softphone && !allowList.allows(clientIp)) {
      throw new HttpError(
        403,
        "forbidden",
        `Address "${clientIp}" is not in EXOTEL_IP_ALLOWLIST`,
      );
    }
    if (registry.size >= config.maxSessions) {
      throw unavailable(
        "server_full",
        `Server is at MAX_SESSIONS (${config.maxSessions} live calls)`,
      );
    }
    if (!connections.tryOpen(clientIp)) {
      metrics.connections.connectionRefused();
      throw new HttpError(
        429,
        "too_many_connections",
        `Address "${clientIp}" already holds MAX_CONNECTIONS_PER_IP (${connections.limit}) voicebot sockets`,
        { headers: { "retry-after": String(RETRY_AFTER_S) } },
      );
    }
    // Counted until the connection is really gone, not just the call: a
    // socket waiting for the peer's close still holds a descriptor.
    let counted = true;
    const gone = () => {
      if (counted) connections.closed(clientIp);
      counted = false;
    };
    try {
      return handleVoicebotSocket(request, clientIp, {
        ...(softphone ?? socketDeps),
        onSocketGone: gone,
      });
    } catch (error) {
      gone();
      throw error;
    }
  };

  const placeCall: Handler = (request, { clientIp }) => {
    if (!callLimiter.hit(clientIp, Date.now())) {
      throw new HttpError(
        429,
        "rate_limited",
        "Too many calls placed from this address: slow down",
        {
          headers: {
            "retry-after": String(
              callLimiter.retryAfterS(clientIp, Date.now()),
            ),
          },
        },
      );
    }
    return handlePlaceCall(request, outboundDeps);
  };

  const routes: Route[] = [
    route("/health", false, {
      GET: (request) =>
        handleHealth(request, {
          version: VERSION,
          bot: options.botName ?? config.bot,
          uptimeS: Math.round((performance.now() - startedAt) / 1000),
          activeSessions: registry.size,
          maxSessions: config.maxSessions,
          draining,
          problems: services.problems?.() ?? [],
        }),
    }),
    route(config.wsPath, false, { GET: upgrade }),
    route("/voicebot/sessions", true, {
      GET: (request) => handleSessions(request, { registry, live }),
    }),
    route("/metrics", true, {
      GET: (request) => handleMetrics(request, metrics),
    }),
    route("/calls", true, {
      GET: (request) => handleListCalls(request, recordsOf(store)),
    }),
    route("/calls/:id", true, {
      GET: (request, { params }) =>
        handleGetCall(request, params.id, recordsOf(store)),
    }),
    route("/calls/:id/webhook", true, {
      POST: (request, { params }) =>
        handleRedeliver(request, params.id, {
          store: recordsOf(store),
          webhook: services.callWebhook,
        }),
    }),
    route("/api/v1/exotel/passthru", false, {
      GET: (request) =>
        handlePassthru(request, options.outcomeOf ?? (() => undefined), {
          store,
          token: config.statusCallbackToken,
        }),
    }),
    route("/api/v1/exotel/status", false, {
      POST: (request, { clientIp }) =>
        handleStatusCallback(request, recordsOf(store), {
          token: config.statusCallbackToken,
          limiter: statusLimiter,
          clientIp,
        }),
    }),
    route("/api/v1/exotel/status/:token", false, {
      POST: (request, { clientIp, params }) =>
        handleStatusCallback(request, recordsOf(store), {
          token: config.statusCallbackToken,
          pathToken: params.token,
          limiter: statusLimiter,
          clientIp,
        }),
    }),
    route("/api/v1/exotel/voice/connect", false, {
      GET: (request) => handleVoiceConnect(request, config),
      POST: (request) => handleVoiceConnect(request, config),
    }),
    route("/call", true, { POST: placeCall }),
    route("/call/:sid", true, {
      GET: (request, { params }) =>
        handleCallStatus(request, params.sid, outboundDeps),
    }),
  ];

  async function handler(
    request: Request,
    info: Deno.ServeHandlerInfo,
  ): Promise<Response> {
    const clientIp = clientAddress(
      request.headers,
      (info.remoteAddr as Deno.NetAddr).hostname ?? "",
      { trustedHops: config.trustedProxyHops },
    );
    // Deno builds the URL from the Host header: a malformed one (`[::1`)
    // makes a URL that does not parse.
    const url = URL.parse(request.url);
    if (url === null) {
      return errorResponse(
        new HttpError(
          400,
          "invalid_host",
          "Invalid Host header: expected a host name or address with an optional port",
        ),
      );
    }
    const { pathname } = url;
    try {
      const headersTooLarge = headersOverLimit(request.headers);
      if (headersTooLarge !== undefined) {
        throw new HttpError(431, "headers_too_large", headersTooLarge);
      }
      if (ConsoleApp.owns(pathname)) {
        const response = await webConsole.handle(request);
        if (response.status !== 401 || pathname !== "/console/login") {
          return response;
        }
        // A wrong token at the login form counts as any failed auth.
        metrics.authFailed("admin");
        const limited = limitAuthFailure(clientIp, pathname);
        if (!limited) return response;
        await response.body?.cancel();
        return errorResponse(limited);
      }
      const match = findRoute(routes, pathname);
      if (!match) {
        throw new HttpError(404, "not_found", `No route for "${pathname}"`);
      }
      const { route, params } = match;
      const handle =
        route.methods[request.method === "HEAD" ? "GET" : request.method];
      if (!handle) {
        const allow = Object.keys(route.methods).join(", ");
        throw new HttpError(
          405,
          "method_not_allowed",
          `Method "${request.method}" not allowed: use ${allow}`,
          {
            headers: { allow },
          },
        );
      }
      if (
        route.admin &&
        !isAuthorized(request.headers.get("authorization"), admin)
      ) {
        throw new HttpError(
          401,
          "unauthorized",
          "Missing or invalid admin token: send Authorization: Bearer <ADMIN_TOKEN>",
          {
            headers: { "www-authenticate": 'Bearer realm="exovoice"' },
          },
        );
      }
      return await handle(request, {
        info,
        params: decodeParams(params),
        clientIp,
      });
    } catch (error) {
      if (error instanceof HttpError && error.status === 401) {
        metrics.authFailed(pathname === config.wsPath ? "voicebot" : "admin");
        return errorResponse(limitAuthFailure(clientIp, pathname) ?? error);
      } else if (!(error instanceof HttpError)) {
        log.error("Request {method} {pathname} failed: {error}", {
          method: request.method,
          pathname,
          error,
        });
      }
      return errorResponse(error);
    }
  }

  function sweepCalls(): number {
    const now = Date.now();
    let ended = 0;
    for (const session of [...registry.values()]) {
      const reason = session.lastActivity < now - config.idleTimeoutS * 1000
        ? "idle_timeout"
        : session.state === "connected" &&
            session.connectedAt < now - config.handshakeTimeoutS * 1000
        ? "handshake_timeout"
        : session.connectedAt < now - config.maxCallS * 1000
        ? "max_call_length"
        : undefined;
      if (reason) {
        session.end(reason);
        ended++;
      }
    }
    return ended;
  }

  warnIfExposed(config);
  return {
    handler,
    registry,
    sweepCalls,
    startDraining: () => {
      draining = true;
      // Event streams never end on their own: a drain would wait for them.
      webConsole.close();
    },
    services,
  };
}

/** Counts a call in the metrics and the live list, and writes its record when it ends. */
function followCall(call: Call, services: Services, instanceId: string): void {
  const { metrics, store, live, callWebhook } = services;
  metrics.callStarted(call.session);
  void live?.announce(call.session);
  void store?.open(call.session);
  call.ended.then((reason) => {
    const endedAt = call.session.endedAt ?? Date.now();
    metrics.callEnded(call.session, reason, endedAt);
    for (const turn of call.report?.turns ?? []) {
      metrics.turnCompleted(turn.latenciesMs);
    }
    void live?.withdraw(call.session.id);
    // Handed to the store at once, the recording awaited inside, so that a
    // drain's store.close() waits for this record too.
    // The final record queues its webhook delivery in the same commit.
    const delivery = callWebhook && {
      onCommit: (operation: Deno.AtomicOperation, record: { id: string }) =>
        callWebhook.add(operation, record.id),
    };
    void store?.save(
      (async () =>
        buildCallRecord(call.session, reason, {
          endedAt,
          instanceId,
          transcript: call.report?.transcript,
          turns: call.report?.turns,
          recording: await call.recording,
        }))(),
      delivery,
    ).then((saved) => saved && callWebhook?.committed());
  });
}

function recorderFactory(
  dir: string | undefined,
): VoicebotSocketDeps["createRecorder"] {
  if (dir === undefined) return undefined;
  return (session) =>
    new CallRecorder({ dir, id: session.id, sampleRate: session.sampleRate });
}

/** The bots the softphone offers: the configured one first (its default), and the echo. */
function softphoneBots(
  name: BotName,
  factory: BotFactory,
): Record<string, BotFactory> {
  const bots: Record<string, BotFactory> = { [name]: factory };
  bots.echo ??= createEchoBot;
  return bots;
}

function botFactory(name: BotName, given: BotFactory | undefined): BotFactory {
  const factory = given ?? BOTS[name];
  if (!factory) {
    throw new Error(`BOT "${name}" needs its factory: pass createBot`);
  }
  return factory;
}

function recordsOf(store: CallStore | undefined): CallStore {
  if (!store) {
    throw unavailable(
      "records_unavailable",
      "Call records are not kept by this server",
    );
  }
  return store;
}

function route(
  path: string,
  admin: boolean,
  methods: Record<string, Handler>,
): Route {
  return { segments: path.split("/").filter(Boolean), methods, admin };
}

function findRoute(
  routes: Route[],
  pathname: string,
): { route: Route; params: Record<string, string> } | undefined {
  const segments = pathname.split("/").filter(Boolean);
  for (const route of routes) {
    if (route.segments.length !== segments.length) continue;
    const params: Record<string, string> = {};
    const matches = route.segments.every((expected, i) => {
      if (!expected.startsWith(":")) return expected === segments[i];
      // Decoded only after auth (decodeParams): a stranger's bad escape
      // must not be answered before their credentials are.
      params[expected.slice(1)] = segments[i];
      return true;
    });
    if (matches) return { route, params };
  }
  return undefined;
}

/** Longest path parameter (a call id or CallSid) accepted, in characters. */
const MAX_PATH_PARAM_CHARS = 256;

/** Percent-decodes path parameters. @throws {HttpError} 400 for a bad escape or an overlong value. */
function decodeParams(raw: Record<string, string>): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [name, text] of Object.entries(raw)) {
    if (text.length > MAX_PATH_PARAM_CHARS * 3) throw paramTooLong(name, text);
    let value: string;
    try {
      value = decodeURIComponent(text);
    } catch {
      throw new HttpError(
        400,
        "invalid_path",
        `Invalid ${name} "${
          text.slice(0, 64)
        }": a % must start an escape such as %2F`,
      );
    }
    if (value.length > MAX_PATH_PARAM_CHARS) throw paramTooLong(name, value);
    params[name] = value;
  }
  return params;
}

function paramTooLong(name: string, text: string): HttpError {
  return new HttpError(
    400,
    "invalid_path",
    `Invalid ${name} "${
      text.slice(0, 32)
    }…": longer than ${MAX_PATH_PARAM_CHARS} characters`,
  );
}

function unavailable(code: string, message: string): HttpError {
  return new HttpError(503, code, message, {
    headers: { "retry-after": String(RETRY_AFTER_S) },
  });
}

const LOOPBACK_HOST = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

function warnIfExposed(config: Config): void {
  if (LOOPBACK_HOST.test(config.host)) return;
  if (
    !config.wsToken && !config.wsBasicAuth && config.ipAllowList.length === 0
  ) {
    log.warn(
      "The voicebot socket is open to anyone on {host}: set EXOTEL_WS_BASIC_AUTH or EXOTEL_IP_ALLOWLIST",
      { host: config.host },
    );
  }
  if (!config.adminToken) {
    log.warn(
      "ADMIN_TOKEN is not set: /voicebot/sessions and /call, which show phone numbers, are open on {host}",
      {
        host: config.host,
      },
    );
  }
}

/** How often, at most, a failing listener is logged. */
const LISTENER_LOG_INTERVAL_MS = 60_000;

/**
 * Counts listener failures in the metrics and logs them at most once per
 * {@linkcode LISTENER_LOG_INTERVAL_MS}: running out of descriptors fails the
 * listener again at every retry, and the log must not turn into a flood.
 */
function listenerReporter(metrics: ExovoiceMetrics) {
  let loggedAt = -Infinity;
  let unlogged = 0;
  let restoreUnlogged = false;
  return {
    failed(kind: ListenerFailureKind, error: unknown): void {
      metrics.connections.listenerFailed(kind);
      const now = performance.now();
      if (now - loggedAt < LISTENER_LOG_INTERVAL_MS) {
        unlogged++;
        return;
      }
      log.error(
        kind === "descriptors"
          ? "Out of file descriptors: not accepting connections, listening again in 1 s ({unlogged} more failures since the last report; raise the descriptor limit, see README)"
          : "The listener failed: listening again in 1 s ({unlogged} more failures since the last report): {error}",
        { unlogged, error: error instanceof Error ? error.message : error },
      );
      loggedAt = now;
      unlogged = 0;
      restoreUnlogged = true;
    },
    restored(): void {
      metrics.connections.listenerRestored();
      if (!restoreUnlogged) return;
      restoreUnlogged = false;
      log.info("Listening again");
    },
  };
}

/**
 * Warns when the process's descriptor limit is below what `MAX_SESSIONS`
 * needs, or says it could not read it.
 */
function warnIfFewDescriptors(
  config: Config,
  options: { agent: boolean },
): void {
  const needed = descriptorsNeeded({
    maxSessions: config.maxSessions,
    agent: options.agent,
    recording: config.recordingsDir !== undefined,
  });
  const limit = readDescriptorLimit();
  if (limit === undefined) {
    log.info(
      "Could not read the file descriptor limit (Deno reads /proc only with --allow-all): MAX_SESSIONS={maxSessions} needs about {needed}; check ulimit -n or LimitNOFILE",
      { maxSessions: config.maxSessions, needed },
    );
  } else if (limit < needed) {
    log.warn(
      "The file descriptor limit is {limit}, below the {needed} that MAX_SESSIONS={maxSessions} needs: raise it (ulimit -n, LimitNOFILE, docker --ulimit nofile) or lower MAX_SESSIONS",
      { limit, needed, maxSessions: config.maxSessions },
    );
  }
}

/** A running server. */
export interface RunningServer extends AsyncDisposable {
  /** Live calls. */
  registry: SessionRegistry;
  /** The address it listens on. */
  addr: Deno.NetAddr;
  /**
   * Refuses new calls, waits up to `timeoutMs` for live calls to end on their
   * own, ends the rest with 1001, and stops listening. Resolves with the
   * number of calls it had to cut.
   */
  drain(timeoutMs: number): Promise<number>;
  /** Ends every call with 1001 and stops listening: a drain with no wait. */
  shutdown(): Promise<void>;
}

/** How often a drain looks whether the live calls have ended. */
const DRAIN_POLL_MS = 100;

/**
 * Opens the call store and the live-session list on `config`'s KV, then
 * serves `config` on its host and port (port 0 picks a free one).
 */
export async function startServer(
  config: Config,
  options: AppOptions = {},
): Promise<RunningServer> {
  // Checked before anything opens, so a bad value leaks nothing.
  const tls = config.tls ? await readTlsFiles(config.tls) : {};
  if (config.recordingsDir !== undefined) {
    await checkRecordingsDir(config.recordingsDir);
  }
  const kv = await openNamedKv(config.kvPath, openKv);
  const registry = new SessionRegistry();
  const metrics = options.services?.metrics ??
    new ExovoiceMetrics({ version: VERSION, instanceId: config.instanceId });
  const heartbeatMs = config.heartbeatS * 1000;
  const live = new LiveSessions(kv, {
    instanceId: config.instanceId,
    sessions: () => registry.values(),
    heartbeatMs,
  });
  const store = new CallStore(kv, {
    retentionMs: config.callRetentionDays * 86_400_000,
    onSaveFailed: () => metrics.recordWriteFailed(),
    instanceId: config.instanceId,
    runId: live.runId,
  });
  const kvFile = await KvFileWatch.start(config.kvPath);
  let kvFileProblem: string | undefined;
  const problems = () => [
    ...(kvFileProblem ? [kvFileProblem] : []),
    ...(live.publishFailing
      ? ["KV writes are failing: records may be lost"]
      : []),
    ...(live.duplicateRunId
      ? [
        `Another process runs as INSTANCE_ID "${config.instanceId}": each hides the other's calls`,
      ]
      : []),
  ];
  const callWebhook = config.callWebhook &&
    new CallWebhook({
      config: config.callWebhook,
      queue: new DeliveryQueue(kv),
      loadRecord: (id) => store.get(id),
      metrics: metrics.registry,
      userAgent: `exovoice/${VERSION}`,
    });
  const app = createApp(config, {
    ...options,
    registry,
    services: {
      metrics,
      store,
      live,
      problems,
      callWebhook,
      ...options.services,
    },
  });
  warnIfFewDescriptors(config, { agent: config.bot !== "echo" });
  const listener = listenerReporter(metrics);
  let server: ResilientServer;
  try {
    server = serveResilient({
      hostname: config.host,
      port: config.port,
      ...tls,
      onListen({ hostname, port }) {
        log.info(
          "Listening on {url} (voicebot socket at {wsPath}, bot {bot})",
          {
            url: `${config.tls ? "https" : "http"}://${hostname}:${port}`,
            wsPath: config.wsPath,
            bot: options.botName ?? config.bot,
          },
        );
      },
      onListenerFailed: listener.failed,
      onListenerRestored: listener.restored,
    }, app.handler);
  } catch (error) {
    await store.close();
    kv.close();
    throw listenError(error, { ...config, tls: config.tls !== undefined });
  }
  live.start();
  callWebhook?.start();
  const recovered = live.previousRunEnded().then((ended) =>
    ended ? store.recoverCrashed() : 0
  );
  // Counters of live calls, for the records a crash would leave; and the
  // KV file, which SQLite keeps writing after it is deleted.
  let watching: Promise<void> = Promise.resolve();
  const checkpoints = setInterval(() => {
    void store.checkpoint(registry.values());
    watching = watching.then(async () => {
      const problem = await kvFile?.check();
      if (problem !== undefined && kvFileProblem === undefined) {
        log.error("Call records at risk: {problem}", { problem });
      }
      kvFileProblem = problem;
    });
  }, heartbeatMs);
  const sweep = setInterval(
    () => app.sweepCalls(),
    Math.min(5000, config.idleTimeoutS * 500),
  );
  let stopped: Promise<number> | undefined;

  function drain(timeoutMs: number): Promise<number> {
    stopped ??= (async () => {
      app.startDraining();
      const deadline = Date.now() + timeoutMs;
      while (app.registry.size > 0 && Date.now() < deadline) {
        await new Promise((resolve) =>
          setTimeout(resolve, Math.min(DRAIN_POLL_MS, deadline - Date.now()))
        );
      }
      clearInterval(sweep);
      clearInterval(checkpoints);
      const cut = app.registry.size;
      for (const session of [...app.registry.values()]) {
        session.end("server_shutdown", 1001);
      }
      await server.shutdown();
      await live.stop();
      await recovered;
      await watching;
      await store.close();
      await callWebhook?.close();
      kv.close();
      return cut;
    })();
    return stopped;
  }
  const shutdown = async () => void await drain(0);
  return {
    registry: app.registry,
    addr: server.addr as Deno.NetAddr,
    drain,
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}
