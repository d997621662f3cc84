/**
 * The HTTP server: a hand-written router over `Deno.serve`, admin auth, JSON
 * errors, and the sweep that closes idle calls.
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
import { type Credentials, isAuthorized, isOpen } from "./http/auth.ts";
import { errorResponse, HttpError } from "./http/json.ts";
import { publicBaseUrl, voicebotUrl } from "./http/public_url.ts";
import { handleHealth } from "./routes/health.ts";
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

/** The bots `BOT` can name. */
export const BOTS: Record<BotName, BotFactory> = { echo: createEchoBot };

const log = getLogger(["exovoice", "server"]);

/** A route's handler; `params` holds the `:name` segments of its path. */
type Handler = (
  request: Request,
  context: { info: Deno.ServeHandlerInfo; params: Record<string, string> },
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
  /** Ends calls that sent nothing for `IDLE_TIMEOUT_S`. Returns how many it ended. */
  sweepIdleCalls(): number;
}

/** Replaceable parts, for tests. */
export interface AppOptions {
  /** Time and timers for calls; the system clock by default. */
  clock?: Clock;
  /** Bot factory overriding `BOT`. */
  createBot?: BotFactory;
}

/** Builds the request handler for `config`. */
export function createApp(config: Config, options: AppOptions = {}): App {
  const registry = new SessionRegistry();
  const startedAt = performance.now();
  const settings: CallSettings = {
    chunkBytes: config.chunkBytes,
    leadMs: config.playoutLeadMs,
    maxBufferedBytes: 256 * 1024,
    maxFrameBytes: config.maxFrameBytes,
    maxPreStartBytes: 48_000,
  };
  const socketDeps: VoicebotSocketDeps = {
    credentials: { bearer: config.wsToken, basic: config.wsBasicAuth },
    registry,
    clock: options.clock ?? systemClock,
    settings,
    botName: config.bot,
    createBot: options.createBot ?? BOTS[config.bot],
  };
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
  const routes: Route[] = [
    route("/health", false, {
      GET: (request) =>
        handleHealth(request, {
          version: VERSION,
          bot: config.bot,
          startedAt,
          registry,
        }),
    }),
    route(config.wsPath, false, {
      GET: (request, { info }) =>
        handleVoicebotSocket(request, info, socketDeps),
    }),
    route("/voicebot/sessions", true, {
      GET: (request) => handleSessions(request, registry),
    }),
    route("/api/v1/exotel/voice/connect", false, {
      GET: (request) => handleVoiceConnect(request, config),
      POST: (request) => handleVoiceConnect(request, config),
    }),
    route("/call", true, {
      POST: (request) => handlePlaceCall(request, outboundDeps),
    }),
    route("/call/:sid", true, {
      GET: (request, { params }) =>
        handleCallStatus(request, params.sid, outboundDeps),
    }),
  ];

  async function handler(
    request: Request,
    info: Deno.ServeHandlerInfo,
  ): Promise<Response> {
    try {
      const { pathname } = new URL(request.url);
      const match = findRoute(routes, pathname);
      if (!match) {
        throw new HttpError(404, "not_found", `No route for "${pathname}"`);
      }
      const { route, params } = match;
      const method = request.method === "HEAD" ? "GET" : request.method;
      const handle = route.methods[method];
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
      return await handle(request, { info, params });
    } catch (error) {
      if (!(error instanceof HttpError)) {
        log.error("Request {method} {url} failed: {error}", {
          method: request.method,
          url: request.url,
          error,
        });
      }
      return errorResponse(error);
    }
  }

  function sweepIdleCalls(): number {
    const cutoff = Date.now() - config.idleTimeoutS * 1000;
    let ended = 0;
    for (const session of [...registry.values()]) {
      if (session.lastActivity < cutoff) {
        session.end("idle_timeout");
        ended++;
      }
    }
    return ended;
  }

  if (isOpen(admin)) {
    log.warn(
      "ADMIN_TOKEN is not set: /voicebot/sessions and /call are open to anyone who can reach this server",
    );
  }
  return { handler, registry, sweepIdleCalls };
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
      if (expected.startsWith(":")) {
        params[expected.slice(1)] = decodeURIComponent(segments[i]);
        return true;
      }
      return expected === segments[i];
    });
    if (matches) return { route, params };
  }
  return undefined;
}

/** A running server. */
export interface RunningServer extends AsyncDisposable {
  /** Live calls. */
  registry: SessionRegistry;
  /** The address it listens on. */
  addr: Deno.NetAddr;
  /** Ends every call with 1001, then stops listening. */
  shutdown(): Promise<void>;
}

/** Starts serving `config` on its host and port (port 0 picks a free one). */
export function startServer(
  config: Config,
  options: AppOptions = {},
): RunningServer {
  const app = createApp(config, options);
  const tls = config.tls
    ? {
      cert: Deno.readTextFileSync(config.tls.certFile),
      key: Deno.readTextFileSync(config.tls.keyFile),
    }
    : {};
  const server = Deno.serve({
    hostname: config.host,
    port: config.port,
    ...tls,
    onListen({ hostname, port }) {
      const scheme = config.tls ? "https" : "http";
      log.info("Listening on {url} (voicebot socket at {wsPath}, bot {bot})", {
        url: `${scheme}://${hostname}:${port}`,
        wsPath: config.wsPath,
        bot: config.bot,
      });
    },
  }, app.handler);
  const sweepMs = Math.min(5000, config.idleTimeoutS * 500);
  const sweep = setInterval(() => app.sweepIdleCalls(), sweepMs);
  async function shutdown() {
    clearInterval(sweep);
    for (const session of [...app.registry.values()]) {
      session.end("server_shutdown", 1001);
    }
    await server.shutdown();
  }
  return {
    registry: app.registry,
    addr: server.addr as Deno.NetAddr,
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}
