/**
 * Our public address as Exotel must reach it, and the voicebot socket URL
 * built from it.
 *
 * @module
 */

import { trustedForwardedValue } from "./client_address.ts";
import { HttpError } from "./json.ts";

/** Exotel copies at most this many custom parameters into `start`. */
export const MAX_CUSTOM_PARAMETERS = 3;

/** Exotel accepts at most this many characters of custom parameters on the URL. */
export const MAX_CUSTOM_QUERY_CHARS = 256;

/** Where {@linkcode publicBaseUrl} takes our address from. */
export interface PublicBaseUrlOptions {
  /** `WEBHOOK_BASE_URL` or `RENDER_EXTERNAL_URL`, when set: used as is. */
  configured?: string;
  /**
   * Reverse proxies we run (`TRUST_PROXY`); with none, `X-Forwarded-Proto`
   * and `X-Forwarded-Host` are the client's own claims and are ignored.
   */
  trustedProxyHops?: number;
}

/** A `Host` or `X-Forwarded-Host` that is not a host name or address with an optional port. */
export class InvalidHostError extends HttpError {
  /** Creates the error for `host`: a 400 for the client that sent it. */
  constructor(host: string) {
    super(400, {
      code: "invalid_host",
      message: `Invalid host "${
        host.slice(0, 100)
      }": expected a host name or address with an optional port`,
    });
    this.name = "InvalidHostError";
  }
}

const HOST =
  /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?|\[[0-9a-f:.]{2,45}\])(?::\d{1,5})?$/i;
const PROTOCOLS = ["http", "https", "ws", "wss"];

/**
 * Our public base URL: `configured` when set, else the request's own origin;
 * behind trusted proxies, as the outermost one reports it in
 * `X-Forwarded-Proto` and `X-Forwarded-Host` (see
 * {@linkcode trustedForwardedValue}).
 *
 * @throws {InvalidHostError} (a 400) for a host that is not a host name or address.
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const request = new Request("http://10.0.0.5:3000/x", {
 *   headers: { "x-forwarded-proto": "https", "x-forwarded-host": "bot.example.com" },
 * });
 * assertEquals(publicBaseUrl(request).href, "http://10.0.0.5:3000/");
 * assertEquals(publicBaseUrl(request, { trustedProxyHops: 1 }).href, "https://bot.example.com/");
 * ```
 */
export function publicBaseUrl(
  request: Request,
  options: PublicBaseUrlOptions = {},
): URL {
  if (options.configured) return new URL(options.configured);
  const url = new URL(request.url);
  const hops = options.trustedProxyHops ?? 0;
  const forwardedProto = trustedForwardedValue(
    request.headers.get("x-forwarded-proto"),
    hops,
  )?.toLowerCase();
  const proto = forwardedProto && PROTOCOLS.includes(forwardedProto)
    ? forwardedProto
    : url.protocol.replace(":", "");
  const host = trustedForwardedValue(
    request.headers.get("x-forwarded-host"),
    hops,
  ) ?? request.headers.get("host") ?? url.host;
  if (!HOST.test(host)) throw new InvalidHostError(host);
  return new URL(`${proto}://${host}`);
}

/** What goes on a voicebot socket URL. */
export interface VoicebotUrlOptions {
  /** The socket path, e.g. `/voicebot/ws`. */
  path: string;
  /** Audio rate to ask Exotel for. */
  sampleRate: number;
  /** Exotel's CallSid, when known. */
  callId?: string;
  /** Passed through to `start.custom_parameters`; must fit Exotel's limits. */
  customParameters?: Record<string, string>;
  /** The agent to answer with (`AGENT_FILE` directory), as `agent=`. */
  agent?: string;
}

/** Custom parameters beyond Exotel's limits. */
export class CustomParametersError extends RangeError {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "CustomParametersError";
  }
}

/**
 * The `ws://`/`wss://` URL of our voicebot socket under `base` (an `https`
 * base gives `wss`).
 *
 * @throws {CustomParametersError} past 3 custom parameters or 256 characters of them.
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(
 *   voicebotUrl(new URL("https://bot.example.com"), {
 *     path: "/voicebot/ws",
 *     sampleRate: 8000,
 *     callId: "CA1",
 *   }),
 *   "wss://bot.example.com/voicebot/ws?call_id=CA1&sample-rate=8000",
 * );
 * ```
 */
export function voicebotUrl(base: URL, options: VoicebotUrlOptions): string {
  const url = new URL(options.path, base);
  url.protocol = base.protocol === "https:" || base.protocol === "wss:"
    ? "wss:"
    : "ws:";
  const custom = new URLSearchParams(options.customParameters ?? {});
  const customCount = [...custom.keys()].length;
  if (customCount > MAX_CUSTOM_PARAMETERS) {
    throw new CustomParametersError(
      `Too many custom parameters "${customCount}": Exotel passes at most ${MAX_CUSTOM_PARAMETERS}`,
    );
  }
  const customQuery = custom.toString();
  if (customQuery.length > MAX_CUSTOM_QUERY_CHARS) {
    throw new CustomParametersError(
      `Custom parameters too long "${
        customQuery.slice(0, 40)
      }…" (${customQuery.length} characters): Exotel passes at most ${MAX_CUSTOM_QUERY_CHARS}`,
    );
  }
  const query = new URLSearchParams();
  if (options.callId) query.set("call_id", options.callId);
  query.set("sample-rate", String(options.sampleRate));
  if (options.agent) query.set("agent", options.agent);
  for (const [key, value] of custom) query.append(key, value);
  url.search = query.toString();
  return url.toString();
}
