/**
 * Log setup: LogTape, one JSON object per line on stdout (or readable text
 * for development), at the configured level; and the masking of callers'
 * phone numbers in what we log.
 *
 * @module
 */

import {
  configure,
  defaultTextFormatter,
  getConsoleSink,
  jsonLinesFormatter,
  type LogLevel as LogTapeLevel,
} from "@logtape/logtape";

/** Log levels `LOG_LEVEL` accepts. */
export const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;

/** A log level. */
export type LogLevel = typeof LOG_LEVELS[number];

/** Log formats `LOG_FORMAT` accepts. */
export const LOG_FORMATS = ["json", "text"] as const;

/** A log format. */
export type LogFormat = typeof LOG_FORMATS[number];

/**
 * The log calls a module makes on a logger it is given. LogTape's own
 * `Logger` (from `getLogger`) satisfies it; options name this type so the
 * public API does not reach into LogTape's.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { getLogger } from "@logtape/logtape";
 * import type { Logger } from "./log.ts";
 *
 * const log: Logger = getLogger(["exovoice", "example"]);
 * log.info("Call {callId} answered", { callId: "CA1" });
 *
 * const lines: string[] = [];
 * const collecting: Logger = {
 *   debug: (message) => lines.push(message),
 *   info: (message) => lines.push(message),
 *   warn: (message) => lines.push(message),
 *   error: (message) => lines.push(message),
 * };
 * collecting.warn("Slow webhook");
 * assertEquals(lines, ["Slow webhook"]);
 * ```
 */
export interface Logger {
  /** Logs `message` at debug level; `{name}` placeholders read `properties`. */
  debug(message: string, properties?: Record<string, unknown>): void;
  /** Logs `message` at info level; `{name}` placeholders read `properties`. */
  info(message: string, properties?: Record<string, unknown>): void;
  /** Logs `message` at warning level; `{name}` placeholders read `properties`. */
  warn(message: string, properties?: Record<string, unknown>): void;
  /** Logs `message` at error level; `{name}` placeholders read `properties`. */
  error(message: string, properties?: Record<string, unknown>): void;
}

let revealPhoneNumbers = false;

/** Options of {@linkcode configureLogging}. */
export interface LoggingOptions {
  /** The lowest level logged. */
  level: LogLevel;
  /** `json` lines or `text`. */
  format: LogFormat;
  /** Log phone numbers in full instead of masked (`LOG_PHONE_NUMBERS`). */
  revealPhoneNumbers?: boolean;
}

/** Sends every `exovoice` log record at `level` or above to stdout in `format`. */
export async function configureLogging(options: LoggingOptions): Promise<void> {
  revealPhoneNumbers = options.revealPhoneNumbers ?? false;
  await configure({
    reset: true,
    sinks: {
      stdout: getConsoleSink({
        formatter: options.format === "json"
          ? jsonLinesFormatter
          : defaultTextFormatter,
      }),
    },
    loggers: [
      {
        category: ["exovoice"],
        lowestLevel: options.level as LogTapeLevel,
        sinks: ["stdout"],
      },
      {
        category: ["logtape", "meta"],
        lowestLevel: "warning",
        sinks: ["stdout"],
      },
    ],
  });
}

/**
 * A phone number as logs may show it: all but the last four digits masked,
 * unless logging was configured to reveal numbers.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(maskPhoneNumber("+919876543210"), "*********3210");
 * ```
 */
export function maskPhoneNumber(number: string): string {
  if (revealPhoneNumbers || number.length <= 4) return number;
  return `${"*".repeat(number.length - 4)}${number.slice(-4)}`;
}
