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

/** Variable `name` as a whole number within `[min, max]`, or `fallback` when unset. */
export function integer(
  read: Read,
  name: string,
  fallback: number,
  [min, max]: [number, number],
): number {
  const text = read(name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new ConfigError(
      name,
      `Invalid ${name} "${text}": expected a whole number from ${min} to ${max}`,
    );
  }
  return value;
}

/** Variable `name` as one of `accepted` (any case), or `fallback` when unset. */
export function oneOf<T extends string>(
  read: Read,
  name: string,
  accepted: readonly T[],
  fallback: T,
): T {
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
