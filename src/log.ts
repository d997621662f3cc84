/**
 * Log setup: LogTape, one JSON object per line on stdout (or readable text
 * for development), at the configured level.
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
import type { LogFormat, LogLevel } from "./config.ts";

/** Sends every `exovoice` log record at `level` or above to stdout in `format`. */
export async function configureLogging(
  level: LogLevel,
  format: LogFormat,
): Promise<void> {
  await configure({
    reset: true,
    sinks: {
      stdout: getConsoleSink({
        formatter: format === "json"
          ? jsonLinesFormatter
          : defaultTextFormatter,
      }),
    },
    loggers: [
      {
        category: ["exovoice"],
        lowestLevel: level as LogTapeLevel,
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
