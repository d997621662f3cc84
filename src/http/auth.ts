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

const encoder = new TextEncoder();

/**
 * Compares two strings in time that depends only on their lengths.
 *
 * @example
 * ```ts
 * timingSafeEqual("secret", "secret"); // true
 * ```
 */
export function timingSafeEqual(a: string, b: string): boolean {
  const left = encoder.encode(a);
  const right = encoder.encode(b);
  const length = Math.max(left.length, right.length);
  let difference = left.length ^ right.length;
  for (let i = 0; i < length; i++) {
    difference |= (left[i] ?? 0) ^ (right[i] ?? 0);
  }
  return difference === 0;
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
