/**
 * `GET|POST /api/v1/exotel/voice/connect`: the dynamic URL endpoint. Exotel
 * calls it when a call reaches the Voicebot applet and connects to the
 * WebSocket URL it answers with.
 *
 * @module
 */

import { isSampleRate, type SampleRate } from "../audio/pcm.ts";
import { HttpError, jsonResponse, readParams } from "../http/json.ts";
import {
  CustomParametersError,
  MAX_CUSTOM_PARAMETERS,
  publicBaseUrl,
  voicebotUrl,
} from "../http/public_url.ts";

/** What the endpoint needs from the configuration. */
export interface VoiceConnectDeps {
  /** Our configured public URL, if any. */
  publicBaseUrl?: string;
  /** Reverse proxies we run, whose `X-Forwarded-Proto`/`-Host` we follow (`TRUST_PROXY`). */
  trustedProxyHops: number;
  /** The voicebot socket path. */
  wsPath: string;
  /** The rate to ask for when the request names none. */
  defaultSampleRate: SampleRate;
}

/** Request parameters, in the casings Exotel and people use, that name the call. */
const CALL_ID_PARAMS = [
  "CallSid",
  "call_id",
  "callSid",
  "CallLogId",
  "callLogId",
];
const SAMPLE_RATE_PARAMS = [
  "sample-rate",
  "sample_rate",
  "sampleRate",
  "SampleRate",
];
/** Parameters whose names start with this are passed on to the bot as custom parameters. */
const CUSTOM_PREFIX = "custom_";

/**
 * Answers `{"url": "wss://…/voicebot/ws?call_id=…&sample-rate=…"}`. Passes on
 * Exotel's `CustomField` and any `custom_*` parameters (at most 3 in all).
 */
export async function handleVoiceConnect(
  request: Request,
  deps: VoiceConnectDeps,
): Promise<Response> {
  const params = await readParams(request);
  const value = (names: string[]) =>
    names.map((name) => params[name]).find((entry) =>
      typeof entry === "string" && entry !== ""
    ) as
      | string
      | undefined;
  const rateText = value(SAMPLE_RATE_PARAMS);
  const rate = Number(rateText);
  const sampleRate = rateText !== undefined && isSampleRate(rate)
    ? rate
    : deps.defaultSampleRate;
  const customParameters: Record<string, string> = {};
  for (const [name, entry] of Object.entries(params)) {
    if (typeof entry !== "string" && typeof entry !== "number") continue;
    if (name === "CustomField" || name.startsWith(CUSTOM_PREFIX)) {
      customParameters[name] = String(entry);
    }
  }
  let url: string;
  try {
    url = voicebotUrl(
      publicBaseUrl(request, {
        configured: deps.publicBaseUrl,
        trustedProxyHops: deps.trustedProxyHops,
      }),
      {
        path: deps.wsPath,
        sampleRate,
        callId: value(CALL_ID_PARAMS),
        customParameters,
        agent: value(["agent"]),
      },
    );
  } catch (error) {
    if (!(error instanceof CustomParametersError)) throw error;
    throw new HttpError(400, {
      code: "invalid_custom_parameters",
      message:
        `${error.message} (CustomField and custom_* parameters, at most ${MAX_CUSTOM_PARAMETERS})`,
    });
  }
  return jsonResponse({ url });
}
