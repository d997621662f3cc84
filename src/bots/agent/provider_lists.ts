/**
 * Comma lists in the provider variables: `TTS_PROVIDER=elevenlabs,deepgram`
 * names vendors in order of preference, and each per-vendor variable
 * (`TTS_BASE_URL`, `TTS_VOICE`, `LLM_MODEL`, …) holds either one value for
 * all of them or a list aligned with them, where an empty entry means that
 * vendor's default. Every mistake names the variable and the position.
 *
 * @module
 */

import { ConfigError, type OneOfOptions, type Read } from "../../env_values.ts";

/** Splits a comma list, trimming spaces; `undefined` when unset. */
export function commaList(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  return text.split(",").map((entry) => entry.trim());
}

/**
 * `name` as a non-empty list of `accepted` names (any case), or
 * `[fallback]` when unset.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const env: Record<string, string> = { TTS_PROVIDER: "ElevenLabs, deepgram" };
 * const read = (name: string) => env[name];
 * assertEquals(
 *   providerList(read, "TTS_PROVIDER", {
 *     accepted: ["deepgram", "elevenlabs"],
 *     fallback: "deepgram",
 *   }),
 *   ["elevenlabs", "deepgram"],
 * );
 * assertEquals(
 *   providerList(read, "STT_PROVIDER", {
 *     accepted: ["deepgram", "sarvam"],
 *     fallback: "deepgram",
 *   }),
 *   ["deepgram"],
 * );
 * ```
 */
export function providerList<T extends string>(
  read: Read,
  name: string,
  options: OneOfOptions<T>,
): T[] {
  const { accepted, fallback } = options;
  const text = read(name);
  const entries = commaList(text);
  if (entries === undefined) return [fallback];
  return entries.map((entry, index) => {
    const value = entry.toLowerCase() as T;
    if (!accepted.includes(value)) {
      const where = entries.length === 1
        ? ""
        : `entry ${index + 1} ${JSON.stringify(entry)}: `;
      throw new ConfigError(
        name,
        `Invalid ${name} "${text}": ${where}expected one of ${
          accepted.join(", ")
        }`,
      );
    }
    return value;
  });
}

/** Options of {@linkcode alignedList}. */
export interface AlignedListOptions {
  /** How many providers the list is aligned with. */
  count: number;
  /** What the entries are aligned with, for the message, e.g. `TTS_PROVIDER (elevenlabs,deepgram)`. */
  alignedWith: string;
  /** Checks one non-empty entry; returns a problem such as `expected a ws:// URL`. */
  check?: (entry: string) => string | undefined;
}

/**
 * The value of `name` for each of `options.count` providers: one value for all, or
 * a list of exactly `count` entries (empty entries are `undefined`).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const env: Record<string, string> = { TTS_VOICE: ", aura-2-thalia-en" };
 * const read = (name: string) => env[name];
 * assertEquals(
 *   alignedList(read, "TTS_VOICE", { count: 2, alignedWith: "TTS_PROVIDER" }),
 *   [undefined, "aura-2-thalia-en"],
 * );
 * ```
 */
export function alignedList(
  read: Read,
  name: string,
  options: AlignedListOptions,
): (string | undefined)[] {
  const { count } = options;
  const text = read(name);
  const entries = commaList(text);
  if (entries === undefined) return new Array(count).fill(undefined);
  if (entries.length !== 1 && entries.length !== count) {
    throw new ConfigError(
      name,
      `Invalid ${name} "${text}": expected one value for all or ${count} comma-separated values aligned with ${options.alignedWith}, got ${entries.length}`,
    );
  }
  const values = entries.map((entry, index) => {
    if (entry === "") return undefined;
    const problem = options.check?.(entry);
    if (problem !== undefined) {
      const where = entries.length === 1
        ? ""
        : `entry ${index + 1} ${JSON.stringify(entry)}: `;
      throw new ConfigError(
        name,
        `Invalid ${name} "${text}": ${where}${problem}`,
      );
    }
    return entry;
  });
  return values.length === count ? values : new Array(count).fill(values[0]);
}

/** A check for {@linkcode alignedList}: the entry is a URL of one of `protocols`. */
export function urlCheck(
  protocols: readonly string[],
): (entry: string) => string | undefined {
  return (entry) => {
    const parsed = URL.parse(entry);
    if (parsed && protocols.includes(parsed.protocol)) return undefined;
    return `expected a ${
      protocols.map((protocol) => `${protocol}//`).join(" or ")
    } URL`;
  };
}
