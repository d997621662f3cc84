/**
 * The voicebot socket's upgrade guard: every reason to refuse an upgrade
 * before a call begins, decided and counted in one place, in this order —
 * draining (503), the console's softphone token (401), `EXOTEL_IP_ALLOWLIST`
 * (403), `MAX_SESSIONS` (503), `MAX_CONNECTIONS_PER_IP` (429), not a
 * WebSocket upgrade (426), credentials (401, or 429 past
 * `AUTH_FAILURE_LIMIT_PER_MIN`) — then {@linkcode handleVoicebotSocket}.
 *
 * @module
 */

import type { SessionRegistry } from "../call/registry.ts";
import { isAuthorized } from "../http/auth.ts";
import type { AuthFailures } from "../http/auth_failures.ts";
import { ConnectionsPerAddress } from "../http/connections_per_address.ts";
import { IpAllowList } from "../http/ip_allowlist.ts";
import { HttpError } from "../http/json.ts";
import type { ExovoiceMetrics } from "../metrics/exovoice_metrics.ts";
import {
  handleVoicebotSocket,
  type VoicebotSocketDeps,
} from "./voicebot_socket.ts";

/** Seconds a refused caller is told to wait before trying again. */
export const RETRY_AFTER_S = 5;

/** Options of {@linkcode VoicebotUpgrade}. */
export interface VoicebotUpgradeOptions {
  /** What accepted calls run on; its `credentials` are checked here. */
  socket: VoicebotSocketDeps;
  /** Live calls, counted against `maxSessions`. */
  registry: SessionRegistry;
  /** `MAX_SESSIONS`. */
  maxSessions: number;
  /** `MAX_CONNECTIONS_PER_IP`; 0 for no bound. */
  maxConnectionsPerIp: number;
  /** `EXOTEL_IP_ALLOWLIST`'s ranges; none means any address. */
  ipAllowList: string[];
  /** Failed authentications per address. */
  authFailures: AuthFailures;
  /** Where refusals are counted. */
  metrics: ExovoiceMetrics;
  /**
   * The console's softphone: for a URL carrying its single-use token, the
   * deps to run that call on (open to that caller, past the allow-list).
   * Undefined for a URL without one; throws a 401 for a bad token.
   */
  softphone?(
    url: URL,
    deps: VoicebotSocketDeps,
  ): VoicebotSocketDeps | undefined;
}

/**
 * Guards the voicebot socket's upgrades; see the module doc for the order
 * of the checks. Every refusal is an {@linkcode HttpError}, counted in
 * `exovoice_upgrades_refused_total{code}` (and 401s in
 * `exovoice_auth_failures_total`) before it is thrown.
 */
export class VoicebotUpgrade {
  #options: VoicebotUpgradeOptions;
  #allowList: IpAllowList | undefined;
  #connections: ConnectionsPerAddress;
  #draining = false;

  /** Creates the guard. @throws {InvalidCidrError} for a range that does not parse. */
  constructor(options: VoicebotUpgradeOptions) {
    this.#options = options;
    this.#allowList = options.ipAllowList.length > 0
      ? new IpAllowList(options.ipAllowList)
      : undefined;
    this.#connections = new ConnectionsPerAddress(options.maxConnectionsPerIp);
  }

  /** Whether new calls are refused because a drain started. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Refuses new calls from now on, as a drain starts. */
  startDraining(): void {
    this.#draining = true;
  }

  /**
   * Upgrades `request` from `clientIp` to a call, or refuses it.
   *
   * @throws {HttpError} for a refusal, already counted in the metrics.
   */
  handle(request: Request, clientIp: string): Response {
    try {
      return this.#admit(request, clientIp);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      const refusal = error.status === 401
        ? this.#authFailed(error, { clientIp, request })
        : error;
      this.#options.metrics.connections.upgradeRefused(refusal.code);
      throw refusal;
    }
  }

  #admit(request: Request, clientIp: string): Response {
    const { registry, maxSessions, socket, softphone } = this.#options;
    if (this.#draining) {
      throw unavailable(
        "draining",
        "Server is draining for a restart: call another instance",
      );
    }
    // The console's softphone: a browser, so neither Exotel's credentials
    // nor its addresses; a single-use token the console minted instead.
    const softphoneDeps = softphone?.(new URL(request.url), socket);
    if (
      this.#allowList && !softphoneDeps && !this.#allowList.allows(clientIp)
    ) {
      throw new HttpError(403, {
        code: "forbidden",
        message: `Address "${clientIp}" is not in EXOTEL_IP_ALLOWLIST`,
      });
    }
    if (registry.size >= maxSessions) {
      throw unavailable(
        "server_full",
        `Server is at MAX_SESSIONS (${maxSessions} live calls)`,
      );
    }
    return this.#open(request, clientIp, softphoneDeps ?? socket);
  }

  /** Counts the connection against its address until it is really gone, then upgrades. */
  #open(
    request: Request,
    clientIp: string,
    deps: VoicebotSocketDeps,
  ): Response {
    const connections = this.#connections;
    if (!connections.tryOpen(clientIp)) {
      this.#options.metrics.connections.connectionRefused();
      throw new HttpError(429, {
        code: "too_many_connections",
        message:
          `Address "${clientIp}" already holds MAX_CONNECTIONS_PER_IP (${connections.limit}) voicebot sockets`,
        headers: { "retry-after": String(RETRY_AFTER_S) },
      });
    }
    // Counted until the connection is really gone, not just the call: a
    // socket waiting for the peer's close still holds a descriptor.
    let counted = true;
    const gone = () => {
      if (counted) connections.closed(clientIp);
      counted = false;
    };
    try {
      checkCredentials(request, deps);
      return handleVoicebotSocket(request, clientIp, {
        ...deps,
        onSocketGone: gone,
      });
    } catch (error) {
      gone();
      throw error;
    }
  }

  /** Counts a failed authentication; the 429 to answer past the limit, else `error`. */
  #authFailed(
    error: HttpError,
    { clientIp, request }: { clientIp: string; request: Request },
  ): HttpError {
    const { metrics, authFailures } = this.#options;
    metrics.authFailed("voicebot");
    const { pathname } = new URL(request.url);
    return authFailures.failed(clientIp, pathname) ?? error;
  }
}

/**
 * @throws {HttpError} 426 for a request that is not a WebSocket upgrade,
 * 401 for missing or wrong credentials.
 */
function checkCredentials(request: Request, deps: VoicebotSocketDeps): void {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    throw new HttpError(426, {
      code: "upgrade_required",
      message:
        "This is the Exotel voicebot WebSocket endpoint: connect with a WebSocket client (wss://…), not plain HTTP",
      headers: { upgrade: "websocket" },
    });
  }
  if (!isAuthorized(request.headers.get("authorization"), deps.credentials)) {
    throw unauthorized(deps);
  }
}

function unauthorized(deps: VoicebotSocketDeps): HttpError {
  return new HttpError(401, {
    code: "unauthorized",
    message: "Missing or invalid credentials for the voicebot socket",
    headers: deps.credentials.basic
      ? { "www-authenticate": 'Basic realm="exovoice"' }
      : {},
  });
}

function unavailable(code: string, message: string): HttpError {
  return new HttpError(503, {
    code,
    message,
    headers: { "retry-after": String(RETRY_AFTER_S) },
  });
}
