/**
 * The process's file descriptors: its limit and how many are open, read from
 * Linux's `/proc`, and how many a configuration needs.
 *
 * Deno lets a program read `/proc` only when it runs with `--allow-all`; with
 * the narrower flags `deno task start` uses, or off Linux, both readers return
 * `undefined` and the caller says what it could not check.
 *
 * @module
 */

/**
 * Reads the soft "Max open files" limit from the text of `/proc/<pid>/limits`;
 * `Infinity` for "unlimited", `undefined` when the line is missing.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const text = "Limit Soft Limit Hard Limit Units\n" +
 *   "Max open files            256                  4096                 files\n";
 * assertEquals(parseOpenFilesLimit(text), 256);
 * ```
 */
export function parseOpenFilesLimit(text: string): number | undefined {
  const line = text.split("\n").find((candidate) =>
    candidate.startsWith("Max open files")
  );
  const soft = line?.slice("Max open files".length).trim().split(/\s+/)[0];
  if (soft === "unlimited") return Infinity;
  const limit = Number(soft);
  return soft && Number.isInteger(limit) ? limit : undefined;
}

/** The process's soft descriptor limit, or `undefined` when `/proc` cannot be read. */
export function readDescriptorLimit(): number | undefined {
  try {
    return parseOpenFilesLimit(Deno.readTextFileSync("/proc/self/limits"));
  } catch {
    return undefined;
  }
}

/** How many descriptors the process has open, or `undefined` when `/proc` cannot be read. */
export function countOpenDescriptors(): number | undefined {
  try {
    let count = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) count++;
    // The directory handle used to list it is one of them.
    return count - 1;
  } catch {
    return undefined;
  }
}

/** What decides how many descriptors a server needs. */
export interface DescriptorNeeds {
  /** `MAX_SESSIONS`. */
  maxSessions: number;
  /** Whether calls run the agent, which holds vendor connections (speech in, language model, speech out). */
  agent: boolean;
  /** Whether calls are recorded, one open file each. */
  recording: boolean;
}

/** Descriptors for the runtime, the listener, Deno KV and a margin of plain HTTP requests. */
export const BASE_DESCRIPTORS = 128;

/**
 * The descriptors a server needs at `MAX_SESSIONS` live calls: one socket per
 * call, three vendor connections per agent call, a file per recorded call,
 * plus {@linkcode BASE_DESCRIPTORS}.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(
 *   descriptorsNeeded({ maxSessions: 100, agent: true, recording: false }),
 *   528,
 * );
 * ```
 */
export function descriptorsNeeded(needs: DescriptorNeeds): number {
  const perCall = 1 + (needs.agent ? 3 : 0) + (needs.recording ? 1 : 0);
  return BASE_DESCRIPTORS + needs.maxSessions * perCall;
}
