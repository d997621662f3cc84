/**
 * Reading typed values from environment variables, each bad value a
 * {@linkcode ConfigError} that names the variable and what it accepts.
 * Shared by the server's configuration and the agent's.
 *
 * @module
 */

/** A configuration value that cannot be used. */
export class ConfigError extends Error {
  /** The environment variable at fault. */
  readonly variable: string;

  /** Creates the error for `variable`. */
  constructor(variable: string, message: string) {
    super(message);
    this.name = "ConfigError";
    this.variable = variable;
  }
}

/** Environment variables, e.g. `Deno.env.toObject()` or a test's record. */
export type Env = Readonly<Record<string, string | undefined>>;

/** Reads one variable, trimmed; blank counts as unset. */
export type Read = (name: string) => string | undefined;

/** A {@linkcode Read} over `env`. */
export function reader(env: Env): Read {
  return (name) => {
    const value = env[name]?.trim();
    return value === "" ? undefined : value;
  };
}

/** Options of {@linkcode integer}. */
export interface IntegerOptions {
  /** The value when the variable is unset or blank. */
  fallback: number;
  /** The smallest and largest value accepted, both included. */
  range: readonly [min: number, max: number];
}

/**
 * Variable `name` as a whole number within `range`, or `fallback` when unset.
 *
 * @example
 * ```ts
 * import { assertEquals, assertThrows } from "@std/assert";
 * import { ConfigError, integer, reader } from "./env_values.ts";
 *
 * const read = reader({ PORT: "8080" });
 * assertEquals(integer(read, "PORT", { fallback: 3000, range: [0, 65535] }), 8080);
 * assertEquals(integer(read, "UNSET", { fallback: 7, range: [0, 9] }), 7);
 * assertThrows(
 *   () => integer(read, "PORT", { fallback: 3000, range: [0, 1024] }),
 *   ConfigError,
 *   'Invalid PORT "8080": expected a whole number from 0 to 1024',
 * );
 * ```
 */
export function integer(
  read: Read,
  name: string,
  options: IntegerOptions,
): number {
  const text = read(name);
  if (text === undefined) return options.fallback;
  const [min, max] = options.range;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new ConfigError(
      name,
      `Invalid ${name} "${text}": expected a whole number from ${min} to ${max}`,
    );
  }
  return value;
}

/** Options of {@linkcode oneOf}. */
export interface OneOfOptions<T extends string> {
  /** The values accepted, lower case; the variable may use any case. */
  accepted: readonly T[];
  /** The value when the variable is unset or blank. */
  fallback: NoInfer<T>;
}

/**
 * Variable `name` as one of `accepted` (any case), or `fallback` when unset.
 *
 * @example
 * ```ts
 * import { assertEquals, assertThrows } from "@std/assert";
 * import { ConfigError, oneOf, reader } from "./env_values.ts";
 *
 * const read = reader({ LOG_LEVEL: "DEBUG" });
 * const levels = ["debug", "info"] as const;
 * assertEquals(
 *   oneOf(read, "LOG_LEVEL", { accepted: levels, fallback: "info" }),
 *   "debug",
 * );
 * assertThrows(
 *   () => oneOf(read, "LOG_LEVEL", { accepted: ["info"], fallback: "info" }),
 *   ConfigError,
 *   'Invalid LOG_LEVEL "DEBUG": expected one of info',
 * );
 * ```
 */
export function oneOf<T extends string>(
  read: Read,
  name: string,
  options: OneOfOptions<T>,
): T {
  const { accepted, fallback } = options;
  const text = read(name);
  if (text === undefined) return fallback;
  const value = accepted.find((candidate) => candidate === text.toLowerCase());
  if (value === undefined) {
    throw new ConfigError(
      name,
      `Invalid ${name} "${text}": expected one of ${accepted.join(", ")}`,
    );
  }
  return value;
}
