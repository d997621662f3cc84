/**
 * A small command-line flag parser for the benchmark scripts:
 * `--name value`, `--name=value`, and bare boolean flags.
 *
 * @module
 */

/** What flags a script accepts. */
export interface FlagSpec {
  /** Flags taking a number. */
  numbers?: readonly string[];
  /** Flags taking a string. */
  strings?: readonly string[];
  /** Flags that are on when present. */
  booleans?: readonly string[];
}

/** Parsed flags by name. */
export interface Flags {
  /** Number flags given. */
  numbers: Record<string, number>;
  /** String flags given. */
  strings: Record<string, string>;
  /** Boolean flags given. */
  booleans: Set<string>;
}

/** Error thrown for a flag the script does not know or a value it cannot use. */
export class FlagError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "FlagError";
  }
}

/**
 * Parses `args` against `spec`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const flags = parseFlags(["--calls", "500", "--json"], {
 *   numbers: ["calls"],
 *   booleans: ["json"],
 * });
 * assertEquals(flags.numbers.calls, 500);
 * assertEquals(flags.booleans.has("json"), true);
 * ```
 */
export function parseFlags(args: readonly string[], spec: FlagSpec): Flags {
  const flags: Flags = { numbers: {}, strings: {}, booleans: new Set() };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("--")) {
      throw new FlagError(`Unexpected argument "${arg}": expected --flag`);
    }
    const equals = arg.indexOf("=");
    const name = arg.slice(2, equals === -1 ? undefined : equals);
    const inline = equals === -1 ? undefined : arg.slice(equals + 1);
    if (spec.booleans?.includes(name)) {
      if (inline !== undefined) {
        throw new FlagError(`Invalid flag "${arg}": --${name} takes no value`);
      }
      flags.booleans.add(name);
      continue;
    }
    const isNumber = spec.numbers?.includes(name) ?? false;
    if (!isNumber && !spec.strings?.includes(name)) {
      throw new FlagError(`Unknown flag "--${name}"`);
    }
    const value = inline ?? args[++i];
    if (value === undefined) {
      throw new FlagError(`Missing value for "--${name}"`);
    }
    if (isNumber) {
      const number = Number(value);
      if (value.trim() === "" || !Number.isFinite(number)) {
        throw new FlagError(
          `Invalid --${name} "${value}": expected a number`,
        );
      }
      flags.numbers[name] = number;
    } else {
      flags.strings[name] = value;
    }
  }
  return flags;
}
