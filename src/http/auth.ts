/**
 * Checking `Authorization` headers against configured secrets, in constant
 * time so that response timing reveals nothing about a secret.
 *
 * @module
 */

/** Credentials for `Authorization: Basic`, as Exotel sends from `wss://user:password@host`. */
export interface BasicCredentials {
  /** The user name (Exotel: the API key). */
  user: string;
  /** The password (Exotel: the API token). */
  password: string;
}

import { timingSafeEqual as timingSafeEqualBytes } from "../../std/crypto.ts";

const encoder = new TextEncoder();

/**
 * Compares two strings in time that depends only on their lengths: std's
 * byte comparison, which refuses buffers of different lengths, so unequal
 * lengths compare the given string with itself to spend the same time.
 *
 * @example
 * ```ts
 * import { assert, assertFalse } from "@std/assert";
 * assert(timingSafeEqual("secret", "secret"));
 * assertFalse(timingSafeEqual("secret", "secrets"));
 * ```
 */
export function timingSafeEqual(a: string, b: string): boolean {
  const given = encoder.encode(a);
  const expected = encoder.encode(b);
  if (given.length !== expected.length) {
    timingSafeEqualBytes(given, given);
    return false;
  }
  return timingSafeEqualBytes(given, expected);
}

/** What a protected endpoint accepts. */
export interface Credentials {
  /** A token accepted as `Authorization: Bearer <token>`. */
  bearer?: string;
  /** A user and password accepted as `Authorization: Basic …`. */
  basic?: BasicCredentials;
}

/** Returns true when `credentials` require nothing. */
export function isOpen(credentials: Credentials): boolean {
  return credentials.bearer === undefined && credentials.basic === undefined;
}

/** Returns true when `header` (an `Authorization` value, or null) carries accepted credentials. */
export function isAuthorized(
  header: string | null,
  credentials: Credentials,
): boolean {
  if (isOpen(credentials)) return true;
  if (header === null) return false;
  const space = header.indexOf(" ");
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === "bearer" && credentials.bearer !== undefined) {
    return timingSafeEqual(value, credentials.bearer);
  }
  if (scheme === "basic" && credentials.basic !== undefined) {
    let decoded: string;
    try {
      decoded = new TextDecoder().decode(Uint8Array.fromBase64(value));
    } catch {
      return false;
    }
    const { user, password } = credentials.basic;
    return timingSafeEqual(decoded, `${user}:${password}`);
  }
  return false;
}
