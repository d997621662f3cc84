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
import { IpAllowList } from "./http/ip_allowlist.ts";
import { errorResponse, HttpError } from "./http/json.ts";
import { publicBaseUrl, voicebotUrl } from "./http/public_url.ts";
import { RateLimiter } from "./http/rate_limit.ts";
import { ConnectionsPerAddress } from "./http/connections_per_address.ts";
import {
  type ListenerFailureKind,
  serveResilient,
} from "./http/resilient_server.ts";
import {
  descriptorsNeeded,
  readDescriptorLimit,
} from "./metrics/process_descriptors.ts";
import { ExovoiceMetrics } from "./metrics/exovoice_metrics.ts";
import { buildCallRecord } from "./records/call_record.ts";
import { CallStore, openKv } from "./records/call_store.ts";
import { CallRecorder } from "./records/recorder.ts";
import { LiveSessions } from "./instances/live_sessions.ts";
import type { Call } from "./call/call.ts";
import { handleGetCall, handleListCalls } from "./routes/calls.ts";
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
  /** How a call left the bot (`transfer`, `end_call`), for the Passthru endpoint. */
  outcomeOf?: OutcomeLookup;
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
    botName: config.bot,
    createBot: botFactory(config.bot, options.createBot),
    createRecorder: recorderFactory(config.recordingsDir),
    onCall: (call) => followCall(call, services, config.instanceId),
    closeTimeoutMs: config.closeTimeoutS * 1000,
    onSocketReleased: () => metrics.connections.socketReleased(),
  };
  const connections = new ConnectionsPerAddress(config.maxConnectionsPerIp);
  const outboundDeps: OutboundCallDeps = {
    api: config.exotelApi ? new ConnectApi(config.exotelApi) : undefined,
    streamUrlFor: (request, { sampleRate, customParameters }) =>
      voicebotUrl(publicBaseUrl(request, config.publicBaseUrl), {
        path: config.wsPath,
        sampleRate,
        customParameters,
      }),
  };
  const admin: Credentials = { bearer: config.adminToken };
  const allowList = config.ipAllowList.length > 0
    ? new IpAllowList(config.ipAllowList)
    : undefined;
  const authFailures = new RateLimiter({
    limit: config.authFailureLimitPerMin,
    windowMs: 60_000,
  });
  const callLimiter = new RateLimiter({
    limit: config.callRateLimitPerMin,
    windowMs: 60_000,
  });

  const upgrade: Handler = (request, { info, clientIp }) => {
    if (draining) {
      throw unavailable(
        "draining",
        "Server is draining for a restart: call another instance",
      );
    }
    if (allowList && !allowList.allows(clientIp)) {
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
      return handleVoicebotSocket(request, info, {
        ...socketDeps,
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
          bot: config.bot,
          uptimeS: Math.round((performance.now() - startedAt) / 1000),
          activeSessions: registry.size,
          maxSessions: config.maxSessions,
          draining,
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
    route("/api/v1/exotel/passthru", false, {
      GET: (request) =>
        handlePassthru(request, options.outcomeOf ?? (() => undefined)),
    }),
    route("/api/v1/exotel/status", false, {
      POST: (request) => handleStatusCallback(request, recordsOf(store)),
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
    const clientIp = clientAddress(request, info, config.trustProxy);
    const { pathname } = new URL(request.url);
    try {
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
      if (authFailures.isLimited(clientIp, Date.now())) {
        throw new HttpError(
          429,
          "too_many_auth_failures",
          "Too many failed authentication attempts",
          {
            headers: {
              "retry-after": String(
                authFailures.retryAfterS(clientIp, Date.now()),
              ),
            },
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
      return await handle(request, { info, params, clientIp });
    } catch (error) {
      if (error instanceof HttpError && error.status === 401) {
        authFailures.hit(clientIp, Date.now());
        metrics.authFailed(pathname === config.wsPath ? "voicebot" : "admin");
        log.warn("Authentication failed from {clientIp} on {pathname}", {
          clientIp,
          pathname,
        });
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
    startDraining: () => draining = true,
    services,
  };
}

/** Counts a call in the metrics and the live list, and writes its record when it ends. */
function followCall(call: Call, services: Services, instanceId: string): void {
  const { metrics, store, live } = services;
  metrics.callStarted(call.session);
  void live?.announce(call.session);
  call.ended.then((reason) => {
    const endedAt = Date.now();
    metrics.callEnded(call.session, reason, endedAt);
    for (const turn of call.report?.turns ?? []) {
      metrics.turnCompleted(turn.latenciesMs);
    }
    void live?.withdraw(call.session.id);
    // Handed to the store at once, the recording awaited inside, so that a
    // drain's store.close() waits for this record too.
    void store?.save((async () =>
      buildCallRecord(call.session, reason, {
        endedAt,
        instanceId,
        transcript: call.report?.transcript,
        turns: call.report?.turns,
        recording: await call.recording,
      }))());
  });
}

function recorderFactory(
  dir: string | undefined,
): VoicebotSocketDeps["createRecorder"] {
  if (dir === undefined) return undefined;
  return (session) =>
    new CallRecorder({ dir, id: session.id, sampleRate: session.sampleRate });
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
      params[expected.slice(1)] = decodeURIComponent(segments[i]);
      return true;
    });
    if (matches) return { route, params };
  }
  return undefined;
}

function unavailable(code: string, message: string): HttpError {
  return new HttpError(503, code, message, {
    headers: { "retry-after": String(RETRY_AFTER_S) },
  });
}

/** The socket's peer, or behind a trusted proxy the first `X-Forwarded-For` hop. */
function clientAddress(
  request: Request,
  info: Deno.ServeHandlerInfo,
  trustProxy: boolean,
): string {
  const forwarded = trustProxy
    ? request.headers.get("x-forwarded-for")?.split(",")[0].trim()
    : undefined;
  return forwarded || ((info.remoteAddr as Deno.NetAddr).hostname ?? "");
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
  const kv = await openKv(config.kvPath);
  const registry = new SessionRegistry();
  const metrics = options.services?.metrics ??
    new ExovoiceMetrics({ version: VERSION, instanceId: config.instanceId });
  const store = new CallStore(kv, {
    retentionMs: config.callRetentionDays * 86_400_000,
    onSaveFailed: () => metrics.recordWriteFailed(),
  });
  const live = new LiveSessions(kv, {
    instanceId: config.instanceId,
    sessions: () => registry.values(),
  });
  const app = createApp(config, {
    ...options,
    registry,
    services: { metrics, store, live, ...options.services },
  });
  live.start();
  const tls = config.tls
    ? {
      cert: Deno.readTextFileSync(config.tls.certFile),
      key: Deno.readTextFileSync(config.tls.keyFile),
    }
    : {};
  warnIfFewDescriptors(config, { agent: config.bot === "agent" });
  const listener = listenerReporter(metrics);
  const server = serveResilient({
    hostname: config.host,
    port: config.port,
    ...tls,
    onListen({ hostname, port }) {
      log.info("Listening on {url} (voicebot socket at {wsPath}, bot {bot})", {
        url: `${config.tls ? "https" : "http"}://${hostname}:${port}`,
        wsPath: config.wsPath,
        bot: config.bot,
      });
    },
    onListenerFailed: listener.failed,
    onListenerRestored: listener.restored,
  }, app.handler);
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
      const cut = app.registry.size;
      for (const session of [...app.registry.values()]) {
        session.end("server_shutdown", 1001);
      }
      await server.shutdown();
      await live.stop();
      await store.close();
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
