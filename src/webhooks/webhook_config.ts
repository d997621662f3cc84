/**
 * The call webhook's settings, `CALL_WEBHOOK_*`, checked at startup.
 *
 * @module
 */

import { ConfigError, integer, type Read } from "../env_values.ts";

/** Where and how call records are delivered. */
export interface CallWebhookConfig {
  /** `CALL_WEBHOOK_URL`: records are POSTed here. */
  url: string;
  /** `CALL_WEBHOOK_SECRET`: the HMAC-SHA256 key of `X-Exovoice-Signature`. */
  secret: string;
  /** `CALL_WEBHOOK_TIMEOUT_MS`: how long one attempt may take. */
  timeoutMs: number;
  /** `CALL_WEBHOOK_MAX_ATTEMPTS`: attempts before a delivery is given up. */
  maxAttempts: number;
  /** `CALL_WEBHOOK_RETRY_MS`: wait before the first retry, doubled for each next up to an hour. */
  retryMs: number;
  /** `CALL_WEBHOOK_MAX_AGE_S`: a delivery still failing this long after it was queued is given up. */
  maxAgeS: number;
}

/** Shortest secret accepted: an HMAC key shorter than this is guessable. */
export const MIN_SECRET_LENGTH = 16;

/**
 * Reads `CALL_WEBHOOK_*`; undefined when `CALL_WEBHOOK_URL` is unset.
 *
 * @throws {ConfigError} for a URL that is not http(s), a missing or short
 * secret, or a number out of range.
 * @example
 * ```ts
 * import { assertEquals, assertThrows } from "@std/assert";
 * import { ConfigError, reader } from "../env_values.ts";
 *
 * const config = loadCallWebhookConfig(reader({
 *   CALL_WEBHOOK_URL: "https://crm.example/exovoice",
 *   CALL_WEBHOOK_SECRET: "a-long-random-secret",
 * }));
 * assertEquals(config?.maxAttempts, 15); // the default
 * assertEquals(loadCallWebhookConfig(reader({})), undefined); // no URL: off
 * assertThrows(
 *   () => loadCallWebhookConfig(reader({ CALL_WEBHOOK_URL: "https://crm.example/x", CALL_WEBHOOK_SECRET: "short" })),
 *   ConfigError,
 *   "CALL_WEBHOOK_SECRET",
 * );
 * ```
 */
export function loadCallWebhookConfig(
  read: Read,
): CallWebhookConfig | undefined {
  const url = read("CALL_WEBHOOK_URL");
  const secret = read("CALL_WEBHOOK_SECRET");
  if (url === undefined) {
    if (secret !== undefined) {
      throw new ConfigError(
        "CALL_WEBHOOK_URL",
        "Missing CALL_WEBHOOK_URL: CALL_WEBHOOK_SECRET is set, but no URL to deliver call records to",
      );
    }
    return undefined;
  }
  const parsed = URL.parse(url);
  if (!parsed || !["http:", "https:"].includes(parsed.protocol)) {
    throw new ConfigError(
      "CALL_WEBHOOK_URL",
      `Invalid CALL_WEBHOOK_URL "${url}": expected an http(s):// URL`,
    );
  }
  if (secret === undefined || secret.length < MIN_SECRET_LENGTH) {
    // The value is a secret: name the variable, never echo it.
    throw new ConfigError(
      "CALL_WEBHOOK_SECRET",
      `${
        secret === undefined ? "Missing" : "Invalid"
      } CALL_WEBHOOK_SECRET: CALL_WEBHOOK_URL's deliveries are signed with it; expected at least ${MIN_SECRET_LENGTH} characters`,
    );
  }
  return {
    url,
    secret,
    timeoutMs: integer(read, "CALL_WEBHOOK_TIMEOUT_MS", {
      fallback: 10_000,
      range: [100, 120_000],
    }),
    maxAttempts: integer(read, "CALL_WEBHOOK_MAX_ATTEMPTS", {
      fallback: 15,
      range: [1, 100],
    }),
    retryMs: integer(read, "CALL_WEBHOOK_RETRY_MS", {
      fallback: 5000,
      range: [100, 3_600_000],
    }),
    maxAgeS: integer(read, "CALL_WEBHOOK_MAX_AGE_S", {
      fallback: 86_400,
      range: [60, 30 * 86_400],
    }),
  };
}
