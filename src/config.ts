/**
 * Configuration from environment variables into a typed {@linkcode Config}.
 * Every bad value stops startup with a {@linkcode ConfigError} naming the
 * variable and what it accepts.
 *
 * @module
 */

import {
  ConfigError,
  type Env,
  integer,
  type IntegerOptions,
  oneOf,
  type Read,
  reader,
} from "./env_values.ts";
import {
  DEFAULT_CHUNK_BYTES,
  isSampleRate,
  isValidChunkSize,
  MAX_CHUNK_BYTES,
  MIN_CHUNK_BYTES,
  type SampleRate,
} from "./audio/pcm.ts";
import {
  type ExotelApiConfig,
  normalizePhoneNumber,
} from "./exotel/connect_api.ts";
import { InvalidCidrError, IpAllowList } from "./http/ip_allowlist.ts";
import type { BasicCredentials } from "./http/auth.ts";
import {
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
} from "./log.ts";
import {
  type CallWebhookConfig,
  loadCallWebhookConfig,
} from "./webhooks/webhook_config.ts";

/** Bots that `BOT` may name. */
export const BOT_NAMES = ["echo", "agent", "realtime"] as const;

/** A bot `BOT` may name. */
export type BotName = typeof BOT_NAMES[number];

// Defined by the modules that use them (config imports downwards only);
// re-exported here, where the variables that set them are read.
export {
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
} from "./log.ts";
export type { BasicCredentials } from "./http/auth.ts";

/** The server's whole configuration. */
export interface Config {
  /** `HOST`: the address to listen on. */
  host: string;
  /** `PORT`: the port to listen on. */
  port: number;
  /** `TLS_CERT_FILE` and `TLS_KEY_FILE`: PEM files for serving `https`/`wss` directly. */
  tls?: { certFile: string; keyFile: string };
  /** `WS_PATH`: the voicebot WebSocket path. */
  wsPath: string;
  /** `EXOTEL_WS_TOKEN`: bearer token required on the socket. */
  wsToken?: string;
  /** `EXOTEL_WS_BASIC_AUTH`: `user:password` accepted on the socket. */
  wsBasicAuth?: BasicCredentials;
  /** `ADMIN_TOKEN`: bearer token for monitoring and call endpoints. */
  adminToken?: string;
  /** `BOT`: which bot answers calls. */
  bot: BotName;
  /** `CHUNK_BYTES`: outbound media chunk size. */
  chunkBytes: number;
  /** `PLAYOUT_LEAD_MS`: audio kept queued at Exotel ahead of playback. */
  playoutLeadMs: number;
  /** `MAX_FRAME_BYTES`: inbound frames longer than this are skipped. */
  maxFrameBytes: number;
  /** `IDLE_TIMEOUT_S`: a call with no frame for this long is closed. */
  idleTimeoutS: number;
  /** `DEFAULT_SAMPLE_RATE`: the rate the dynamic URL endpoint asks for. */
  defaultSampleRate: SampleRate;
  /** `WEBHOOK_BASE_URL`, else `RENDER_EXTERNAL_URL`: our public URL. */
  publicBaseUrl?: string;
  /** `EXOTEL_API_*`: the Connect API, when configured. */
  exotelApi?: ExotelApiConfig;
  /** `MAX_SESSIONS`: live calls beyond this get 503 on upgrade. */
  maxSessions: number;
  /** `MAX_CALL_S`: a call is ended after this long (Exotel's own cap is an hour). */
  maxCallS: number;
  /** `HANDSHAKE_TIMEOUT_S`: a socket that sends no `start` within this is closed. */
  handshakeTimeoutS: number;
  /** `DRAIN_TIMEOUT_S`: on SIGTERM/SIGINT, how long live calls may finish. */
  drainTimeoutS: number;
  /** `WS_CLOSE_TIMEOUT_S`: how long a peer may take to answer our close before the connection is dropped. */
  closeTimeoutS: number;
  /** `MAX_CONNECTIONS_PER_IP`: voicebot sockets one address may hold at once; 0 for no limit. */
  maxConnectionsPerIp: number;
  /** `CALL_RATE_LIMIT_PER_MIN`: `POST /call` requests per client IP per minute. */
  callRateLimitPerMin: number;
  /** `AUTH_FAILURE_LIMIT_PER_MIN`: failed auth attempts per client IP per minute before 429. */
  authFailureLimitPerMin: number;
  /** `EXOTEL_IP_ALLOWLIST`: CIDR ranges allowed to open the voicebot socket; empty allows all. */
  ipAllowList: string[];
  /** `TRUST_PROXY`: whether reverse proxies we run are trusted (`trustedProxyHops` > 0). */
  trustProxy: boolean;
  /**
   * `TRUST_PROXY`: how many reverse proxies we run in front of the server
   * (`true` is 1, `false` is 0). The client address is the one the outermost
   * of them saw: the entry this many from the right of `X-Forwarded-For`.
   */
  trustedProxyHops: number;
  /**
   * `KV_PATH`: the Deno KV file holding call records and live sessions;
   * `:memory:` for none kept; undefined for the runtime's default (Deno Deploy).
   */
  kvPath?: string;
  /** `CALL_RETENTION_DAYS`: call records expire after this many days; 0 keeps them. */
  callRetentionDays: number;
  /** `RECORDINGS_DIR`: when set, each call's audio is saved there as WAV. */
  recordingsDir?: string;
  /** `INSTANCE_ID`: this instance's name in the live-session list. */
  instanceId: string;
  /**
   * `INSTANCE_HEARTBEAT_S`: how often this instance publishes its live calls
   * and checkpoints their records' counters.
   */
  heartbeatS: number;
  /** `STATUS_CALLBACK_TOKEN`: the secret a status callback must carry. */
  statusCallbackToken?: string;
  /** `STATUS_CALLBACK_RATE_LIMIT_PER_MIN`: status callbacks per minute per address. */
  statusCallbackRateLimitPerMin: number;
  /** `LOG_PHONE_NUMBERS`: log callers' numbers in full instead of masked. */
  logPhoneNumbers: boolean;
  /** `LOG_LEVEL`. */
  logLevel: LogLevel;
  /** `LOG_FORMAT`. */
  logFormat: LogFormat;
  /** `CALL_WEBHOOK_*`: where finished calls' records are delivered, when set. */
  callWebhook?: CallWebhookConfig;
}

/** Where call records live when `KV_PATH` is unset, off Deno Deploy. */
export const DEFAULT_KV_PATH = "./data/exovoice.kv";

export { ConfigError, type Env } from "./env_values.ts";

/**
 * The whole-number variables read here: each one's value when unset and the
 * range it accepts (both ends included).
 */
const WHOLE_NUMBERS = {
  PORT: { fallback: 3000, range: [0, 65535] },
  PLAYOUT_LEAD_MS: { fallback: 400, range: [0, 5000] },
  MAX_FRAME_BYTES: { fallback: 256 * 1024, range: [1024, 64 * 1024 * 1024] },
  IDLE_TIMEOUT_S: { fallback: 60, range: [1, 24 * 3600] },
  CALL_RETENTION_DAYS: { fallback: 30, range: [0, 36_500] },
  INSTANCE_HEARTBEAT_S: { fallback: 10, range: [1, 300] },
  STATUS_CALLBACK_RATE_LIMIT_PER_MIN: { fallback: 600, range: [1, 1_000_000] },
  CHUNK_BYTES: {
    fallback: DEFAULT_CHUNK_BYTES,
    range: [MIN_CHUNK_BYTES, MAX_CHUNK_BYTES],
  },
  DEFAULT_SAMPLE_RATE: { fallback: 8000, range: [8000, 24000] },
  MAX_SESSIONS: { fallback: 3000, range: [1, 1_000_000] },
  MAX_CALL_S: { fallback: 3600, range: [1, 24 * 3600] },
  HANDSHAKE_TIMEOUT_S: { fallback: 10, range: [1, 3600] },
  DRAIN_TIMEOUT_S: { fallback: 30, range: [0, 24 * 3600] },
  WS_CLOSE_TIMEOUT_S: { fallback: 5, range: [1, 60] },
  MAX_CONNECTIONS_PER_IP: { fallback: 0, range: [0, 1_000_000] },
  CALL_RATE_LIMIT_PER_MIN: { fallback: 30, range: [1, 1_000_000] },
  AUTH_FAILURE_LIMIT_PER_MIN: { fallback: 20, range: [1, 1_000_000] },
  EXOTEL_API_TIMEOUT_MS: { fallback: 10_000, range: [100, 120_000] },
} as const satisfies Record<string, IntegerOptions>;

/** Variable `name` from {@linkcode WHOLE_NUMBERS}, checked against its range. */
function wholeNumber(read: Read, name: keyof typeof WHOLE_NUMBERS): number {
  return integer(read, name, WHOLE_NUMBERS[name]);
}

/**
 * Builds the configuration from `env`.
 *
 * @throws {ConfigError} for the first bad value.
 * @example
 * ```ts
 * import { assertEquals, assertThrows } from "@std/assert";
 * import { ConfigError } from "./config.ts";
 * const config = loadConfig({ PORT: "8080" });
 * assertEquals(config.port, 8080);
 * assertEquals(config.bot, "echo");
 * assertThrows(() => loadConfig({ PORT: "eighty" }), ConfigError, "PORT");
 * ```
 */
export function loadConfig(env: Env): Config {
  const read = reader(env);
  const tls = tlsFiles(read);
  const chunkBytes = chunkSize(read);
  const defaultSampleRate = defaultRate(read);
  const wsPath = socketPath(read);
  const trustedProxyHops = proxyHops(read);
  return {
    host: read("HOST") ?? "0.0.0.0",
    port: wholeNumber(read, "PORT"),
    tls,
    wsPath,
    wsToken: read("EXOTEL_WS_TOKEN"),
    wsBasicAuth: basicCredentials(read("EXOTEL_WS_BASIC_AUTH")),
    adminToken: read("ADMIN_TOKEN"),
    bot: oneOf(read, "BOT", { accepted: BOT_NAMES, fallback: "echo" }),
    chunkBytes,
    playoutLeadMs: wholeNumber(read, "PLAYOUT_LEAD_MS"),
    maxFrameBytes: wholeNumber(read, "MAX_FRAME_BYTES"),
    idleTimeoutS: wholeNumber(read, "IDLE_TIMEOUT_S"),
    defaultSampleRate,
    publicBaseUrl: baseUrl(read, "WEBHOOK_BASE_URL") ??
      baseUrl(read, "RENDER_EXTERNAL_URL"),
    exotelApi: exotelApi(read),
    ...callLimits(read),
    ipAllowList: ipRanges(read("EXOTEL_IP_ALLOWLIST")),
    trustProxy: trustedProxyHops > 0,
    trustedProxyHops,
    kvPath: read("KV_PATH") ??
      (env.DENO_DEPLOYMENT_ID ? undefined : DEFAULT_KV_PATH),
    callRetentionDays: wholeNumber(read, "CALL_RETENTION_DAYS"),
    recordingsDir: read("RECORDINGS_DIR"),
    instanceId: read("INSTANCE_ID") ?? env.HOSTNAME ??
      crypto.randomUUID().slice(0, 8),
    heartbeatS: wholeNumber(read, "INSTANCE_HEARTBEAT_S"),
    statusCallbackToken: read("STATUS_CALLBACK_TOKEN"),
    statusCallbackRateLimitPerMin: wholeNumber(
      read,
      "STATUS_CALLBACK_RATE_LIMIT_PER_MIN",
    ),
    logPhoneNumbers: oneOf(read, "LOG_PHONE_NUMBERS", {
      accepted: ["true", "false"],
      fallback: "false",
    }) === "true",
    logLevel: oneOf(read, "LOG_LEVEL", {
      accepted: LOG_LEVELS,
      fallback: "info",
    }),
    logFormat: oneOf(read, "LOG_FORMAT", {
      accepted: LOG_FORMATS,
      fallback: "json",
    }),
    callWebhook: loadCallWebhookConfig(read),
  };
}

/** `TLS_CERT_FILE` and `TLS_KEY_FILE`: both or neither. */
function tlsFiles(read: Read): Config["tls"] {
  const certFile = read("TLS_CERT_FILE");
  const keyFile = read("TLS_KEY_FILE");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    const missing = certFile === undefined ? "TLS_CERT_FILE" : "TLS_KEY_FILE";
    throw new ConfigError(
      missing,
      `Missing ${missing}: TLS needs both TLS_CERT_FILE and TLS_KEY_FILE`,
    );
  }
  return certFile && keyFile ? { certFile, keyFile } : undefined;
}

/** `CHUNK_BYTES`: a multiple of 320 within the accepted range. */
function chunkSize(read: Read): number {
  const chunkBytes = wholeNumber(read, "CHUNK_BYTES");
  if (!isValidChunkSize(chunkBytes)) {
    throw new ConfigError(
      "CHUNK_BYTES",
      `Invalid CHUNK_BYTES "${chunkBytes}": expected a multiple of 320 from ${MIN_CHUNK_BYTES} to ${MAX_CHUNK_BYTES}`,
    );
  }
  return chunkBytes;
}

/** `DEFAULT_SAMPLE_RATE`: one of the rates Exotel streams. */
function defaultRate(read: Read): Config["defaultSampleRate"] {
  const defaultSampleRate = wholeNumber(read, "DEFAULT_SAMPLE_RATE");
  if (!isSampleRate(defaultSampleRate)) {
    throw new ConfigError(
      "DEFAULT_SAMPLE_RATE",
      `Invalid DEFAULT_SAMPLE_RATE "${defaultSampleRate}": expected 8000, 16000 or 24000`,
    );
  }
  return defaultSampleRate;
}

/** `WS_PATH`: where Exotel opens the voicebot socket. */
function socketPath(read: Read): string {
  const wsPath = read("WS_PATH") ?? "/voicebot/ws";
  if (!wsPath.startsWith("/")) {
    throw new ConfigError(
      "WS_PATH",
      `Invalid WS_PATH "${wsPath}": expected a path starting with "/"`,
    );
  }
  return wsPath;
}

/** Capacity, deadlines and rate limits. */
function callLimits(read: Read): Pick<
  Config,
  | "maxSessions"
  | "maxCallS"
  | "handshakeTimeoutS"
  | "drainTimeoutS"
  | "closeTimeoutS"
  | "maxConnectionsPerIp"
  | "callRateLimitPerMin"
  | "authFailureLimitPerMin"
> {
  return {
    maxSessions: wholeNumber(read, "MAX_SESSIONS"),
    maxCallS: wholeNumber(read, "MAX_CALL_S"),
    handshakeTimeoutS: wholeNumber(read, "HANDSHAKE_TIMEOUT_S"),
    drainTimeoutS: wholeNumber(read, "DRAIN_TIMEOUT_S"),
    closeTimeoutS: wholeNumber(read, "WS_CLOSE_TIMEOUT_S"),
    maxConnectionsPerIp: wholeNumber(read, "MAX_CONNECTIONS_PER_IP"),
    callRateLimitPerMin: wholeNumber(read, "CALL_RATE_LIMIT_PER_MIN"),
    authFailureLimitPerMin: wholeNumber(read, "AUTH_FAILURE_LIMIT_PER_MIN"),
  };
}

/** Most proxy hops `TRUST_PROXY` accepts; longer chains are a misconfiguration. */
export const MAX_PROXY_HOPS = 10;

function proxyHops(read: Read): number {
  const text = read("TRUST_PROXY");
  if (text === undefined || text.toLowerCase() === "false") return 0;
  if (text.toLowerCase() === "true") return 1;
  if (/^\d+$/.test(text) && Number(text) <= MAX_PROXY_HOPS) return Number(text);
  throw new ConfigError(
    "TRUST_PROXY",
    `Invalid TRUST_PROXY "${text}": expected true, false, or the number of proxies in front of the server from 0 to ${MAX_PROXY_HOPS}`,
  );
}

function ipRanges(text: string | undefined): string[] {
  const ranges =
    text?.split(",").map((range) => range.trim()).filter(Boolean) ?? [];
  try {
    new IpAllowList(ranges);
  } catch (error) {
    if (!(error instanceof InvalidCidrError)) throw error;
    throw new ConfigError(
      "EXOTEL_IP_ALLOWLIST",
      `Invalid EXOTEL_IP_ALLOWLIST: ${error.message}`,
    );
  }
  return ranges;
}

function basicCredentials(
  text: string | undefined,
): BasicCredentials | undefined {
  if (text === undefined) return undefined;
  const colon = text.indexOf(":");
  if (colon <= 0 || colon === text.length - 1) {
    // The value is a secret: name the variable, never echo it.
    throw new ConfigError(
      "EXOTEL_WS_BASIC_AUTH",
      "Invalid EXOTEL_WS_BASIC_AUTH: expected user:password, both non-empty",
    );
  }
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

function baseUrl(read: Read, name: string): string | undefined {
  const text = read(name);
  if (text === undefined) return undefined;
  const url = URL.parse(text);
  if (!url || !["http:", "https:", "ws:", "wss:"].includes(url.protocol)) {
    throw new ConfigError(
      name,
      `Invalid ${name} "${text}": expected an http(s):// or ws(s):// URL`,
    );
  }
  return text.replace(/\/+$/, "");
}

const EXOTEL_API_REQUIRED = [
  "EXOTEL_API_KEY",
  "EXOTEL_API_TOKEN",
  "EXOTEL_ACCOUNT_SID",
  "EXOTEL_CALLER_ID",
] as const;

function exotelApi(read: Read): ExotelApiConfig | undefined {
  const present = EXOTEL_API_REQUIRED.filter((name) =>
    read(name) !== undefined
  );
  if (present.length === 0) return undefined;
  const missing = EXOTEL_API_REQUIRED.filter((name) =>
    read(name) === undefined
  );
  if (missing.length > 0) {
    throw new ConfigError(
      missing[0],
      `Missing ${missing.join(", ")}: outbound calls need all of ${
        EXOTEL_API_REQUIRED.join(", ")
      }`,
    );
  }
  const apiBaseUrl = baseUrl(read, "EXOTEL_API_BASE_URL");
  const callerId = read("EXOTEL_CALLER_ID")!;
  try {
    normalizePhoneNumber(callerId, { field: "callerId" });
  } catch {
    throw new ConfigError(
      "EXOTEL_CALLER_ID",
      `Invalid EXOTEL_CALLER_ID "${callerId}": expected your ExoPhone as E.164 like +918030752400 or an Indian number like 08030752400`,
    );
  }
  return {
    apiKey: read("EXOTEL_API_KEY")!,
    apiToken: read("EXOTEL_API_TOKEN")!,
    accountSid: read("EXOTEL_ACCOUNT_SID")!,
    callerId,
    subdomain: read("EXOTEL_SUBDOMAIN") ?? "api.exotel.com",
    baseUrl: apiBaseUrl,
    appId: read("EXOTEL_APP_ID"),
    timeoutMs: wholeNumber(read, "EXOTEL_API_TIMEOUT_MS"),
  };
}
