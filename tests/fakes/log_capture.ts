/**
 * Collects what the server logs, for tests that assert on log lines.
 *
 * @module
 */

import { configure, type LogRecord, reset } from "@logtape/logtape";

/** Log records captured while a test runs. */
export interface LogCapture extends AsyncDisposable {
  /** Every `exovoice` record logged since the capture began. */
  records: LogRecord[];
  /** The records at `level`, each rendered as its text line would read. */
  lines(level?: LogRecord["level"]): string[];
}

/** Renders a record's message with its values filled in, as the text formatter does. */
export function renderMessage(record: LogRecord): string {
  return record.message.map((part) =>
    typeof part === "string" ? part : JSON.stringify(part)
  ).join("");
}

/** Sends every `exovoice` log record, from debug up, to memory until disposed. */
export async function captureLogs(): Promise<LogCapture> {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { memory: (record) => records.push(record) },
    loggers: [
      { category: ["exovoice"], lowestLevel: "debug", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
    ],
  });
  return {
    records,
    lines: (level) =>
      records.filter((record) => level === undefined || record.level === level)
        .map(renderMessage),
    [Symbol.asyncDispose]: () => reset(),
  };
}
