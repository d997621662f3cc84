/**
 * Our public address as Exotel must reach it, and the voicebot socket URL
 * built from it.
 *
 * @module
 */

/** Exotel copies at most this many custom parameters into `start`. */
export const MAX_CUSTOM_PARAMETERS = 3;

/** Exotel accepts at most this many characters of custom parameters on the URL. */
export const MAX_CUSTOM_QUERY_CHARS = 256;

/**
 * Our public base URL: `configured` (from `WEBHOOK_BASE_URL` or
 * `RENDER_EXTERNAL_URL`) when set, else the request's own origin as a
 * reverse proxy reports it in `X-Forwarded-Proto` and `X-Forwarded-Host`.
 */
export function publicBaseUrl(request: Request, configured?: string): URL {
  if (configured) return new URL(configured);
  const url = new URL(request.url);
  const proto = firstValue(request.headers.get("x-forwarded-proto"));
  const host = firstValue(request.headers.get("x-forwarded-host")) ??
    request.headers.get("host") ?? url.host;
  return new URL(`${proto ?? url.protocol.replace(":", "")}://${host}`);
}

function firstValue(header: string | null): string | undefined {
  const value = header?.split(",")[0].trim();
  return value ? value : undefined;
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
 * voicebotUrl(new URL("https://bot.example.com"), { path: "/voicebot/ws", sampleRate: 8000, callId: "CA1" });
 * // "wss://bot.example.com/voicebot/ws?call_id=CA1&sample-rate=8000"
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
