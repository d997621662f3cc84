/**
 * Signing call webhooks: `X-Exovoice-Signature: sha256=<hex>`, the lowercase
 * hex HMAC-SHA256 of the raw body under `CALL_WEBHOOK_SECRET`, and checking
 * one as a receiver would.
 *
 * @module
 */

import { timingSafeEqual } from "../http/auth.ts";

/** The header that carries the signature. */
export const SIGNATURE_HEADER = "X-Exovoice-Signature";

const encoder = new TextEncoder();

async function hmacSha256Hex(body: string | Uint8Array, secret: string) {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  const mac = await crypto.subtle.sign("HMAC", key, bytes as BufferSource);
  return new Uint8Array(mac).toHex();
}

/**
 * The value of {@linkcode SIGNATURE_HEADER} for `body` under `secret`:
 * `sha256=` and the lowercase hex HMAC-SHA256 of the body's bytes (UTF-8
 * for a string).
 *
 * @example
 * ```ts
 * import { assertMatch } from "@std/assert";
 * const signature = await signWebhookBody('{"id":"c1"}', "shhh");
 * assertMatch(signature, /^sha256=[0-9a-f]{64}$/);
 * ```
 */
export async function signWebhookBody(
  body: string | Uint8Array,
  secret: string,
): Promise<string> {
  return `sha256=${await hmacSha256Hex(body, secret)}`;
}

/**
 * Whether `signature` (the header's value, with or without `sha256=`, any
 * case) is `body`'s under `secret`, compared in constant time. A receiver
 * checks the raw bytes it received, before parsing them.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const body = '{"id":"c1"}';
 * const header = await signWebhookBody(body, "shhh");
 * assertEquals(
 *   await verifyWebhookSignature(body, { signature: header, secret: "shhh" }),
 *   true,
 * );
 * // A changed body does not verify.
 * assertEquals(
 *   await verifyWebhookSignature(body + " ", { signature: header, secret: "shhh" }),
 *   false,
 * );
 * ```
 */
export async function verifyWebhookSignature(
  body: string | Uint8Array,
  options: { signature: string | null; secret: string },
): Promise<boolean> {
  if (options.signature === null) return false;
  const given = options.signature.trim().toLowerCase().replace(/^sha256=/, "");
  return timingSafeEqual(given, await hmacSha256Hex(body, options.secret));
}
