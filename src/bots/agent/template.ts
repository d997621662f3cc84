/**
 * Prompt and greeting templates: `{{caller}}`, `{{called}}`,
 * `{{custom.KEY}}`, `{{date}}`, `{{time}}` and the agent's declared
 * variables (`{{account_tier}}`), filled per call. Placeholders are checked
 * at startup, so a typo stops the server instead of reaching a caller.
 * Pure.
 *
 * @module
 */

/** The placeholders every template may use, besides `custom.KEY` and the variables. */
export const BUILT_IN_PLACEHOLDERS = ["caller", "called", "date", "time"];

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const CUSTOM_NAME = /^custom\.[A-Za-z0-9_.-]+$/;

/**
 * The placeholders of `text` that no call could fill: not built in, not
 * `custom.KEY`, not one of `variables`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(
 *   unknownPlaceholders("Hi {{caller}}, {{tier}} {{nmae}}", ["tier"]),
 *   ["nmae"],
 * );
 * ```
 */
export function unknownPlaceholders(
  text: string,
  variables: readonly string[],
): string[] {
  const unknown: string[] = [];
  for (const [, name] of text.matchAll(PLACEHOLDER)) {
    const known = BUILT_IN_PLACEHOLDERS.includes(name) ||
      CUSTOM_NAME.test(name) ||
      (VARIABLE_NAME.test(name) && variables.includes(name));
    if (!known && !unknown.includes(name)) unknown.push(name);
  }
  return unknown;
}

/** What a call fills templates with. */
export interface TemplateValues {
  /** Exotel's `from`, as received. */
  caller: string;
  /** Exotel's `to`, as received. */
  called: string;
  /** Exotel's custom parameters. */
  custom: Record<string, string>;
  /** Today, spelt out, in the agent's time zone. */
  date: string;
  /** The time of day in the agent's time zone. */
  time: string;
  /** The declared variables, with the setup webhook's values over their defaults. */
  variables: Record<string, string>;
}

/** A filled template, and the placeholders that had no value. */
export interface Rendered {
  /** The text. */
  text: string;
  /** Placeholders rendered empty for want of a value. */
  missing: string[];
}

/**
 * Fills `text`. A placeholder without a value renders empty and is listed
 * in `missing`, for a warning.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const values = {
 *   caller: "09876543210", called: "08012345678", custom: { lang: "hi" },
 *   date: "Thursday, 3 December 2026", time: "6:30 pm", variables: {},
 * };
 * assertEquals(
 *   renderTemplate("Caller {{caller}} ({{custom.lang}}) on {{date}}", values).text,
 *   "Caller 09876543210 (hi) on Thursday, 3 December 2026",
 * );
 * ```
 */
export function renderTemplate(text: string, values: TemplateValues): Rendered {
  const missing: string[] = [];
  const filled = text.replace(PLACEHOLDER, (_, name: string) => {
    const value = lookup(name, values);
    if (value === undefined || value === "") {
      if (!missing.includes(name)) missing.push(name);
      return "";
    }
    return value;
  });
  return { text: filled, missing };
}

function lookup(name: string, values: TemplateValues): string | undefined {
  switch (name) {
    case "caller":
      return values.caller;
    case "called":
      return values.called;
    case "date":
      return values.date;
    case "time":
      return values.time;
  }
  if (name.startsWith("custom.")) {
    return values.custom[name.slice("custom.".length)];
  }
  return Object.hasOwn(values.variables, name)
    ? values.variables[name]
    : undefined;
}

/**
 * `{{date}}` and `{{time}}` for epoch ms `at` in `timeZone`, spelt the way
 * a person would say them.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(
 *   dateAndTime(Date.UTC(2026, 11, 3, 13, 0), "Asia/Kolkata"),
 *   { date: "Thursday, 3 December 2026", time: "6:30 pm" },
 * );
 * ```
 */
export function dateAndTime(
  at: number,
  timeZone: string,
): { date: string; time: string } {
  const date = new Intl.DateTimeFormat("en-GB", {
    timeZone,
    weekday: "long",
    day: "numeric",
    month: "long",
    year: "numeric",
  }).format(at);
  const time = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hour: "numeric",
    minute: "2-digit",
    hour12: true,
  }).format(at).replace(
    /\s*([AP])M$/i,
    (_, half: string) => ` ${half.toLowerCase()}m`,
  );
  return { date, time };
}

/** Whether `timeZone` is an IANA zone this runtime knows. */
export function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone });
    return true;
  } catch {
    return false;
  }
}
