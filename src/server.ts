/**
 * The composition root: builds the services once, wires them into the
 * voicebot upgrade guard, the route table and the deadline sweep, and
 * serves them with `Deno.serve` (through `serveResilient`) until drained.
 * The decisions live in the modules it wires: `http/router.ts` (routing),
 * `http/request_handler.ts` (admin auth, errors as JSON),
 * `routes/voicebot_upgrade.ts` (who may open a call),
 * `http/auth_failures.ts` and `http/call_rate_limit.ts` (limits),
 * `call/deadline_sweep.ts` (ending overdue calls).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { createEchoBot } from "./bots/echo.ts";
import type { BotFactory } from "./bots/bot.ts";
import type { Call, CallSettings } from "./call/call.ts";
import { type Clock, repeat, systemClock } from "./call/clock.ts";
import { type CallDeadlines, DeadlineSweep } from "./call/deadline_sweep.ts";
import { SessionRegistry } from "./call/registry.ts";
import type { BotName, Config } from "./config.ts";
import { ConnectApi } from "./exotel/connect_api.ts";
import { AuthFailures } from "./http/auth_failures.ts";
import { CallRateLimit } from "./http/call_rate_limit.ts";
import { HttpError } from "./http/json.ts";
import { listenerReporter } from "./listener_reporter.ts";
import { publicBaseUrl, voicebotUrl } from "./http/public_url.ts";
import { RateLimiter } from "./http/rate_limit.ts";
import {
  type ResilientServer,
  serveResilient,
} from "./http/resilient_server.ts";
import {
  createRequestHandler,
  type RequestHandler,
} from "./http/request_handler.ts";
import { type Route, Router } from "./http/router.ts";
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
import { warnIfExposed, warnIfFewDescriptors } from "./startup_warnings.ts";
import { ConsoleApp } from "./console/console_app.ts";
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
import type { VoicebotSocketDeps } from "./routes/voicebot_socket.ts";
import { RETRY_AFTER_S, VoicebotUpgrade } from "./routes/voicebot_upgrade.ts";
import denoJson from "../deno.json" with { type: "json" };

/** The running version, from `deno.json`. */
export const VERSION: string = denoJson.version;

/** The bots that need no configuration of their own; `agent` is built from its settings in `main.ts`. */
export const BOTS: Partial<Record<BotName, BotFactory>> = {
  echo: createEchoBot,
};

/** Socket backlog above which the player stops sending, per call. */
const MAX_SOCKET_BACKLOG_BYTES = 256 * 1024;

/** Caller audio held per call while `start` has not arrived (1 s at 24 kHz). */
const MAX_PRE_START_BYTES = 48_000;

const log = getLogger(["exovoice", "server"]);

/** A request handler plus what it runs on. */
export interface App {
  /** Handles one request. */
  handler: RequestHandler;
  /** Live calls. */
  registry: SessionRegistry;
  /** Ends calls past a deadline (idle, no `start` in time, too long); {@linkcode startServer} starts it. */
  deadlines: DeadlineSweep;
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
  /** Records, metrics and the live list; metrics alone, built here, by default. */
  services?: Partial<Services>;
  /** The registry of live calls; a fresh one by default. */
  registry?: SessionRegistry;
  /** Time and timers for calls, limits and the deadline sweep; the system clock by default. */
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

/** The metrics object for `config`: built once per server, by its caller or here. */
function metricsFor(config: Config): ExovoiceMetrics {
  return new ExovoiceMetrics({
    version: VERSION,
    instanceId: config.instanceId,
  });
}

/** Builds the request handler for `config`. */
export function createApp(config: Config, options: AppOptions = {}): App {
  const clock = options.clock ?? systemClock;
  const registry = options.registry ?? new SessionRegistry();
  const services: Services = {
    ...options.services,
    metrics: options.services?.metrics ?? metricsFor(config),
  };
  const createBot = botFactory(config.bot, options.createBot);
  const webConsole = consoleApp(config, {
    registry,
    services,
    createBot,
    clock,
  });
  const authFailures = new AuthFailures({
    limitPerMin: config.authFailureLimitPerMin,
    clock,
  });
  const upgrade = voicebotUpgrade(config, {
    registry,
    services,
    createBot,
    options,
    authFailures,
    webConsole,
    clock,
  });
  const router = new Router(
    routeTable(config, { options, registry, services, upgrade, clock }),
  );
  warnIfExposed(config);
  return {
    handler: requestHandler(config, {
      router,
      authFailures,
      metrics: services.metrics,
      webConsole,
    }),
    registry,
    deadlines: new DeadlineSweep({
      calls: () => registry.values(),
      clock,
      deadlines: callDeadlines(config),
    }),
    startDraining: () => {
      upgrade.startDraining();
      // Event streams never end on their own: a drain would wait for them.
      webConsole.close();
    },
    services,
  };
}

/** The one guard in front of the voicebot socket, and the calls it lets through. */
function voicebotUpgrade(
  config: Config,
  parts: {
    registry: SessionRegistry;
    services: Services;
    createBot: BotFactory;
    options: AppOptions;
    authFailures: AuthFailures;
    webConsole: ConsoleApp;
    clock: Clock;
  },
): VoicebotUpgrade {
  const { registry, services, createBot, options, webConsole, clock } = parts;
  return new VoicebotUpgrade({
    socket: voicebotSocketDeps(config, {
      registry,
      clock,
      createBot,
      options,
      metrics: services.metrics,
      onCall: (call) => {
        followCall(call, { services, instanceId: config.instanceId, clock });
        webConsole.follow(call);
      },
    }),
    registry,
    maxSessions: config.maxSessions,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    ipAllowList: config.ipAllowList,
    authFailures: parts.authFailures,
    metrics: services.metrics,
    softphone: (url, deps) => webConsole.softphoneDeps(url, deps),
  });
}

/** The web console over the registry and the services. */
function consoleApp(
  config: Config,
  parts: {
    registry: SessionRegistry;
    services: Services;
    createBot: BotFactory;
    clock: Clock;
  },
): ConsoleApp {
  return new ConsoleApp({
    adminToken: config.adminToken,
    registry: parts.registry,
    store: parts.services.store,
    metrics: parts.services.metrics,
    recordingsDir: config.recordingsDir,
    wsPath: config.wsPath,
    bots: softphoneBots(config.bot, parts.createBot),
    secure: config.tls !== undefined,
    trustProxy: config.trustProxy,
    clock: parts.clock,
  });
}

/** The request handler over the route table, with the console mounted at `/console`. */
function requestHandler(
  config: Config,
  parts: {
    router: Router;
    authFailures: AuthFailures;
    metrics: ExovoiceMetrics;
    webConsole: ConsoleApp;
  },
): RequestHandler {
  return createRequestHandler({
    router: parts.router,
    trustedProxyHops: config.trustedProxyHops,
    admin: { bearer: config.adminToken },
    authFailures: parts.authFailures,
    onAuthFailed: () => parts.metrics.authFailed("admin"),
    mounts: [{
      owns: ConsoleApp.owns,
      handle: (request) => parts.webConsole.handle(request),
      loginPaths: ["/console/login"],
    }],
  });
}

/** `IDLE_TIMEOUT_S`, `HANDSHAKE_TIMEOUT_S` and `MAX_CALL_S`, in ms. */
function callDeadlines(config: Config): CallDeadlines {
  return {
    idleMs: config.idleTimeoutS * 1000,
    handshakeMs: config.handshakeTimeoutS * 1000,
    maxCallMs: config.maxCallS * 1000,
  };
}

/** What every accepted voicebot socket runs on. */
function voicebotSocketDeps(
  config: Config,
  parts: {
    registry: SessionRegistry;
    clock: Clock;
    createBot: BotFactory;
    options: AppOptions;
    metrics: ExovoiceMetrics;
    onCall(call: Call): void;
  },
): VoicebotSocketDeps {
  const settings: CallSettings = {
    chunkBytes: config.chunkBytes,
    leadMs: config.playoutLeadMs,
    maxBufferedBytes: MAX_SOCKET_BACKLOG_BYTES,
    maxFrameBytes: config.maxFrameBytes,
    maxPreStartBytes: MAX_PRE_START_BYTES,
  };
  return {
    credentials: { bearer: config.wsToken, basic: config.wsBasicAuth },
    registry: parts.registry,
    clock: parts.clock,
    settings,
    botName: parts.options.botName ?? config.bot,
    createBot: parts.createBot,
    checkAgent: parts.options.checkAgent,
    createRecorder: recorderFactory(config.recordingsDir),
    onCall: parts.onCall,
    closeTimeoutMs: config.closeTimeoutS * 1000,
    onSocketReleased: () => parts.metrics.connections.socketReleased(),
  };
}

/** What the route table's handlers are built from. */
interface RouteParts {
  options: AppOptions;
  registry: SessionRegistry;
  services: Services;
  upgrade: VoicebotUpgrade;
  clock: Clock;
}

/** The route table: paths, methods and who may call them, as data. */
function routeTable(config: Config, parts: RouteParts): Route[] {
  return [
    ...serviceRoutes(config, parts),
    ...callRecordRoutes(parts.services),
    ...exotelRoutes(config, parts),
    ...outboundCallRoutes(config, parts.clock),
  ];
}

/** Health, the voicebot socket, live sessions and metrics. */
function serviceRoutes(config: Config, parts: RouteParts): Route[] {
  const { options, registry, services, upgrade, clock } = parts;
  const startedAt = clock.now();
  return [
    {
      path: "/health",
      access: "public",
      methods: {
        GET: (request) =>
          handleHealth(request, {
            version: VERSION,
            bot: options.botName ?? config.bot,
            uptimeS: Math.round((clock.now() - startedAt) / 1000),
            activeSessions: registry.size,
            maxSessions: config.maxSessions,
            draining: upgrade.draining,
            problems: services.problems?.() ?? [],
          }),
      },
    },
    {
      path: config.wsPath,
      access: "public",
      countsOwnAuthFailures: true,
      methods: {
        GET: (request, { clientIp }) => upgrade.handle(request, clientIp),
      },
    },
    {
      path: "/voicebot/sessions",
      access: "admin",
      methods: {
        GET: (request) =>
          handleSessions(request, { registry, live: services.live }),
      },
    },
    {
      path: "/metrics",
      access: "admin",
      methods: { GET: (request) => handleMetrics(request, services.metrics) },
    },
  ];
}

/** The stored call records and their webhook redelivery. */
function callRecordRoutes(services: Services): Route[] {
  const { store } = services;
  return [
    {
      path: "/calls",
      access: "admin",
      methods: { GET: (request) => handleListCalls(request, recordsOf(store)) },
    },
    {
      path: "/calls/:id",
      access: "admin",
      methods: {
        GET: (request, { params }) =>
          handleGetCall(request, params.id, recordsOf(store)),
      },
    },
    {
      path: "/calls/:id/webhook",
      access: "admin",
      methods: {
        POST: (request, { params }) =>
          handleRedeliver(request, params.id, {
            store: recordsOf(store),
            webhook: services.callWebhook,
          }),
      },
    },
  ];
}

/** What Exotel calls: the passthru applet, status callbacks, the connect applet. */
function exotelRoutes(config: Config, parts: RouteParts): Route[] {
  const { options, services: { store }, clock } = parts;
  const status = statusCallbacks(config, { store, clock });
  return [
    {
      path: "/api/v1/exotel/passthru",
      access: "public",
      methods: {
        GET: (request) =>
          handlePassthru(request, options.outcomeOf ?? (() => undefined), {
            store,
            token: config.statusCallbackToken,
          }),
      },
    },
    {
      path: "/api/v1/exotel/status",
      access: "public",
      methods: { POST: (request, { clientIp }) => status(request, clientIp) },
    },
    {
      path: "/api/v1/exotel/status/:token",
      access: "public",
      methods: {
        POST: (request, { clientIp, params }) =>
          status(request, clientIp, params.token),
      },
    },
    {
      path: "/api/v1/exotel/voice/connect",
      access: "public",
      methods: {
        GET: (request) => handleVoiceConnect(request, config),
        POST: (request) => handleVoiceConnect(request, config),
      },
    },
  ];
}

/** Placing outbound calls (rate limited per address) and reading their status. */
function outboundCallRoutes(config: Config, clock: Clock): Route[] {
  const outbound = outboundCallDeps(config);
  const callRateLimit = new CallRateLimit({
    limitPerMin: config.callRateLimitPerMin,
    clock,
  });
  return [
    {
      path: "/call",
      access: "admin",
      methods: {
        POST: (request, { clientIp }) => {
          callRateLimit.check(clientIp);
          return handlePlaceCall(request, outbound);
        },
      },
    },
    {
      path: "/call/:sid",
      access: "admin",
      methods: {
        GET: (request, { params }) =>
          handleCallStatus(request, params.sid, outbound),
      },
    },
  ];
}

/** Handles Exotel's status callbacks, limited per address (`STATUS_CALLBACK_RATE_LIMIT_PER_MIN`). */
function statusCallbacks(
  config: Config,
  options: { store: CallStore | undefined; clock: Clock },
) {
  const { store, clock } = options;
  const limiter = new RateLimiter({
    limit: config.statusCallbackRateLimitPerMin,
    windowMs: 60_000,
  });
  return (request: Request, clientIp: string, pathToken?: string) =>
    handleStatusCallback(request, recordsOf(store), {
      token: config.statusCallbackToken,
      pathToken,
      limiter,
      clientIp,
      now: clock.epochMs(),
    });
}

/** The Exotel API client and the socket URL outbound calls stream to. */
function outboundCallDeps(config: Config): OutboundCallDeps {
  return {
    api: config.exotelApi ? new ConnectApi(config.exotelApi) : undefined,
    streamUrlFor: (request, { sampleRate, customParameters }) =>
      voicebotUrl(
        publicBaseUrl(request, {
          configured: config.publicBaseUrl,
          trustedProxyHops: config.trustedProxyHops,
        }),
        { path: config.wsPath, sampleRate, customParameters },
      ),
  };
}

/** Counts a call in the metrics and the live list, and writes its record when it ends. */
function followCall(
  call: Call,
  options: { services: Services; instanceId: string; clock: Clock },
): void {
  const { services, instanceId, clock } = options;
  const { metrics, store, live, callWebhook } = services;
  metrics.callStarted(call.session);
  void live?.announce(call.session);
  void store?.open(call.session);
  call.ended.then((reason) => {
    const endedAt = call.session.endedAt ?? clock.epochMs();
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
      (async () => {
        // After the bot has stopped: the caller's last words, transcribed
        // after the hang-up, are in it.
        const report = await call.finalReport;
        return buildCallRecord(call.session, reason, {
          endedAt,
          instanceId,
          transcript: report?.transcript,
          turns: report?.turns,
          recording: await call.recording,
        });
      })(),
      delivery,
    ).then((saved) => saved && callWebhook?.committed());
  });
}

function recorderFactory(
  dir: string | undefined,
): VoicebotSocketDeps["createRecorder"] {
  if (dir === undefined) return undefined;
  return (session) =>
    new CallRecorder({
      dir,
      id: session.id,
      sampleRate: session.sampleRate,
      startedAt: session.connectedAt,
    });
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
    throw new HttpError(503, {
      code: "records_unavailable",
      message: "Call records are not kept by this server",
      headers: { "retry-after": String(RETRY_AFTER_S) },
    });
  }
  return store;
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

/** The KV-backed services: call records, the live list, the call webhook, and what they report wrong. */
interface Storage {
  kv: Deno.Kv;
  live: LiveSessions;
  store: CallStore;
  callWebhook: CallWebhook | undefined;
  problems(): string[];
  /** Checkpoints live calls' counters and watches the KV file; returns the stop. */
  keepUp(): () => Promise<void>;
  /** Closes everything, after the listener has stopped. */
  close(): Promise<void>;
}

/** The call webhook `CALL_WEBHOOK_URL` asks for, queued in `kv`; none when unset. */
function callWebhookFor(
  config: Config,
  parts: {
    kv: Deno.Kv;
    store: CallStore;
    metrics: ExovoiceMetrics;
    clock: Clock;
  },
): CallWebhook | undefined {
  if (!config.callWebhook) return undefined;
  const { kv, store, metrics, clock } = parts;
  return new CallWebhook({
    config: config.callWebhook,
    queue: new DeliveryQueue(kv),
    loadRecord: (id) => store.get(id),
    metrics: metrics.registry,
    userAgent: `exovoice/${VERSION}`,
    clock,
  });
}

/** Opens the call store, the live-session list and the call webhook on `config`'s KV. */
async function openStorage(
  config: Config,
  parts: { registry: SessionRegistry; metrics: ExovoiceMetrics; clock: Clock },
): Promise<Storage> {
  const { registry, metrics, clock } = parts;
  const kv = await openNamedKv(
    config.kvPath,
    (path) => openKv(path, { clock }),
  );
  const heartbeatMs = config.heartbeatS * 1000;
  const live = new LiveSessions(kv, {
    instanceId: config.instanceId,
    sessions: () => registry.values(),
    heartbeatMs,
    clock,
  });
  const store = new CallStore(kv, {
    retentionMs: config.callRetentionDays * 86_400_000,
    onSaveFailed: () => metrics.recordWriteFailed(),
    instanceId: config.instanceId,
    runId: live.runId,
    clock,
  });
  const kvFile = await KvFileWatch.start(config.kvPath);
  let kvFileProblem: string | undefined;
  const callWebhook = callWebhookFor(config, { kv, store, metrics, clock });
  const problems = () => [
    ...(kvFileProblem ? [kvFileProblem] : []),
    ...liveProblems(live, config.instanceId),
  ];
  const keepUp = () => {
    // Counters of live calls, for the records a crash would leave; and the
    // KV file, which SQLite keeps writing after it is deleted.
    let watching: Promise<void> = Promise.resolve();
    const stopCheckpoints = repeat(clock, () => {
      void store.checkpoint(registry.values());
      watching = watching.then(async () => {
        const problem = await kvFile?.check();
        if (problem !== undefined && kvFileProblem === undefined) {
          log.error("Call records at risk: {problem}", { problem });
        }
        kvFileProblem = problem;
      });
    }, { everyMs: heartbeatMs });
    return async () => {
      stopCheckpoints();
      await watching;
    };
  };
  const close = async () => {
    await store.close();
    await callWebhook?.close();
    kv.close();
  };
  return { kv, live, store, callWebhook, problems, keepUp, close };
}

/** What the live list reports wrong, for `/health`. */
function liveProblems(live: LiveSessions, instanceId: string): string[] {
  return [
    ...(live.publishFailing
      ? ["KV writes are failing: records may be lost"]
      : []),
    ...(live.duplicateRunId
      ? [
        `Another process runs as INSTANCE_ID "${instanceId}": each hides the other's calls`,
      ]
      : []),
  ];
}

/**
 * Opens the call store and the live-session list on `config`'s KV, then
 * serves `config` on its host and port (port 0 picks a free one).
 */
export async function startServer(
  config: Config,
  options: AppOptions = {},
): Promise<RunningServer> {
  // Checked before anything opens, so a bad value leaks nothing.
  const tls = await checkFiles(config);
  const clock = options.clock ?? systemClock;
  const registry = new SessionRegistry();
  const metrics = options.services?.metrics ?? metricsFor(config);
  const storage = await openStorage(config, { registry, metrics, clock });
  const { live, store, callWebhook, problems } = storage;
  const app = createApp(config, {
    ...options,
    registry,
    services: {
      store,
      live,
      problems,
      callWebhook,
      ...options.services,
      metrics,
    },
  });
  warnIfFewDescriptors(config, { agent: config.bot !== "echo" });
  let server: ResilientServer;
  try {
    server = listen(config, { app, clock, tls, botName: options.botName });
  } catch (error) {
    await store.close();
    storage.kv.close();
    throw listenError(error, { ...config, tls: config.tls !== undefined });
  }
  live.start();
  callWebhook?.start();
  const recovered = live.previousRunEnded().then((ended) =>
    ended ? store.recoverCrashed() : 0
  );
  const stopKeepingUp = storage.keepUp();
  app.deadlines.start();
  let stopped: Promise<number> | undefined;
  const drain = (timeoutMs: number): Promise<number> =>
    stopped ??= (async () => {
      app.startDraining();
      await waitForCalls(app.registry, { timeoutMs, clock });
      app.deadlines.stop();
      const stopping = stopKeepingUp();
      const cut = endCalls(app.registry);
      await server.shutdown();
      await live.stop();
      await recovered;
      await stopping;
      await storage.close();
      return cut;
    })();
  const shutdown = async () => void await drain(0);
  return {
    registry: app.registry,
    addr: server.addr as Deno.NetAddr,
    drain,
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}

/** Reads the TLS files and checks the recordings folder. @throws {ConfigError} naming the variable. */
async function checkFiles(
  config: Config,
): Promise<{ cert?: string; key?: string }> {
  const tls = config.tls ? await readTlsFiles(config.tls) : {};
  if (config.recordingsDir !== undefined) {
    await checkRecordingsDir(config.recordingsDir);
  }
  return tls;
}

/** Serves `app` on `config`'s host and port, logging where. */
function listen(
  config: Config,
  parts: {
    app: App;
    clock: Clock;
    tls: { cert?: string; key?: string };
    botName: string | undefined;
  },
): ResilientServer {
  const listener = listenerReporter(parts.app.services.metrics, parts.clock);
  return serveResilient({
    hostname: config.host,
    port: config.port,
    ...parts.tls,
    clock: parts.clock,
    onListen({ hostname, port }) {
      log.info(
        "Listening on {url} (voicebot socket at {wsPath}, bot {bot})",
        {
          url: `${config.tls ? "https" : "http"}://${hostname}:${port}`,
          wsPath: config.wsPath,
          bot: parts.botName ?? config.bot,
        },
      );
    },
    onListenerFailed: listener.failed,
    onListenerRestored: listener.restored,
  }, parts.app.handler);
}

/** Ends every live call with 1001; returns how many. */
function endCalls(registry: SessionRegistry): number {
  const cut = registry.size;
  for (const session of [...registry.values()]) {
    session.end("server_shutdown", 1001);
  }
  return cut;
}

/** Waits until `registry` is empty or `timeoutMs` has passed on `clock`. */
async function waitForCalls(
  registry: SessionRegistry,
  options: { timeoutMs: number; clock: Clock },
): Promise<void> {
  const { clock } = options;
  const deadline = clock.now() + options.timeoutMs;
  while (registry.size > 0 && clock.now() < deadline) {
    await new Promise<void>((resolve) =>
      clock.schedule(resolve, Math.min(DRAIN_POLL_MS, deadline - clock.now()))
    );
  }
}
