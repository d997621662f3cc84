/**
 * A `deno lint` plugin with one rule, `exovoice/max-function-lines`: no
 * function, method or arrow in exovoice longer than {@linkcode MAX_FUNCTION_LINES}
 * lines. A function that long does several things; split it into functions
 * whose names say what each does. Loaded from `deno.json`:
 *
 * ```json
 * { "lint": { "plugins": ["./tools/lint/max_function_lines.ts"] } }
 * ```
 *
 * A function counts the lines its body spans, braces included (for an arrow
 * with an expression body, the expression's lines). Nested functions count
 * inside the function that holds them, and are measured on their own too.
 *
 * Data tables are exempt: a function whose body is a single `return` of an
 * object or array literal (or an arrow returning one), optionally `as const`
 * or `satisfies T`. Anything else that must stay long takes an explicit,
 * reviewed comment on the line before it:
 *
 * ```ts ignore
 * // deno-lint-ignore exovoice/max-function-lines -- data table
 * ```
 *
 * @module
 */

import {
  functionName,
  type FunctionNode,
  functionRule,
  reportOnlyFor,
} from "./rule_support.ts";
import { maxParamsRule } from "./max_params.ts";

export { CHECKED_FOLDER, isChecked } from "./rule_support.ts";

/** The longest a function body may be, in lines. */
export const MAX_FUNCTION_LINES = 60;

/**
 * Functions that are still too long in files other work in progress owns,
 * by path (relative to the project root) → function names as the rule names
 * them. The rule does not report these (and only these: a new long function
 * in the same file is reported); `tests/max_function_lines_test.ts` lists
 * them and fails when one of them is no longer too long, so the list cannot
 * go stale. Empty: a branch may list its files' functions here while it
 * rewrites them (ignore comments would conflict with that work), and empties
 * it before it merges.
 */
export const REPORT_ONLY: Readonly<Record<string, readonly string[]>> = {};

/** The one fact the rule reports: a function and how long its body is. */
interface LongFunction {
  /** The function's name as the rule reports it (see {@linkcode functionName}). */
  name: string;
  /** Lines its body spans. */
  lines: number;
}

/** A function with a body (an overload signature has none). */
type FunctionWithBody = FunctionNode & {
  body: Deno.lint.BlockStatement | Deno.lint.Expression;
};

/**
 * Lines the text between two offsets spans: 1 plus the line breaks in it.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { linesSpanned } from "./max_function_lines.ts";
 *
 * assertEquals(linesSpanned("a {\n  b;\n}", [2, 10]), 3);
 * ```
 */
export function linesSpanned(text: string, range: Deno.lint.Range): number {
  let lines = 1;
  for (let i = range[0]; i < range[1]; i++) {
    if (text.charCodeAt(i) === 10) lines++;
  }
  return lines;
}

/** The expression under `as T`, `satisfies T` and `!` wrappers. */
function unwrapped(node: Deno.lint.Node): Deno.lint.Node {
  let inner = node;
  while (
    inner.type === "TSAsExpression" || inner.type === "TSSatisfiesExpression" ||
    inner.type === "TSNonNullExpression"
  ) {
    inner = inner.expression;
  }
  return inner;
}

function isLiteralTable(node: Deno.lint.Node | null): boolean {
  if (node === null) return false;
  const inner = unwrapped(node);
  return inner.type === "ObjectExpression" || inner.type === "ArrayExpression";
}

/**
 * Whether a function is a data table: its whole body is one object or array
 * literal, returned.
 */
function isDataTable(fn: FunctionWithBody): boolean {
  if (fn.body.type !== "BlockStatement") return isLiteralTable(fn.body);
  const statements = fn.body.body;
  if (statements.length !== 1) return false;
  const only = statements[0];
  return only.type === "ReturnStatement" && isLiteralTable(only.argument);
}

function measure(
  fn: FunctionWithBody,
  context: Deno.lint.RuleContext,
): LongFunction | undefined {
  const lines = linesSpanned(context.sourceCode.text, fn.body.range);
  if (lines <= MAX_FUNCTION_LINES || isDataTable(fn)) return undefined;
  return { name: functionName(fn, context.sourceCode), lines };
}

function check(
  fn: FunctionNode,
  context: Deno.lint.RuleContext,
  reportOnly: Readonly<Record<string, readonly string[]>>,
): void {
  if (fn.body === null) return;
  const withBody = fn as FunctionWithBody;
  const long = measure(withBody, context);
  if (long === undefined) return;
  if (reportOnlyFor(context.filename, reportOnly).includes(long.name)) return;
  // Point at the head of the function (up to its body's opening brace), not
  // the whole body, so the diagnostic stays readable.
  const head: Deno.lint.Range = [fn.range[0], withBody.body.range[0] + 1];
  context.report({
    range: head,
    message:
      `Function "${long.name}" is ${long.lines} lines long; the limit is ${MAX_FUNCTION_LINES}.`,
    hint:
      "Split it into smaller functions named for what each does. A data table " +
      "(one returned object or array literal) is exempt; anything else that " +
      "must stay long takes `// deno-lint-ignore exovoice/max-function-lines -- <why>`.",
  });
}

/** Options of {@linkcode createPlugin}. */
export interface PluginOptions {
  /** Long functions not to report, as in {@linkcode REPORT_ONLY} (its default). */
  reportOnly?: Readonly<Record<string, readonly string[]>>;
  /**
   * Functions with too many parameters not to report, as in
   * `MAX_PARAMS_REPORT_ONLY` in `max_params.ts` (its default).
   */
  maxParamsReportOnly?: Readonly<Record<string, readonly string[]>>;
}

/**
 * Builds the plugin with its rules `max-function-lines` and `max-params`.
 * The default export is `createPlugin()`; tests pass `{ reportOnly: {} }`
 * (or `{ maxParamsReportOnly: {} }`) to see every offender.
 *
 * @example
 * ```ts ignore
 * // Only inside `deno test`: Deno.lint.runPlugin throws anywhere else.
 * import { createPlugin } from "./max_function_lines.ts";
 *
 * const source = `function short() {\n  return 1;\n}\n`;
 * Deno.lint.runPlugin(createPlugin(), "short.ts", source); // → []
 * ```
 */
export function createPlugin(options: PluginOptions = {}): Deno.lint.Plugin {
  const reportOnly = options.reportOnly ?? REPORT_ONLY;
  return {
    name: "exovoice",
    rules: {
      "max-function-lines": functionRule((fn, context) =>
        check(fn, context, reportOnly)
      ),
      "max-params": maxParamsRule(options.maxParamsReportOnly),
    },
  };
}

/**
 * The plugin `deno.json` loads: `exovoice/max-function-lines` and
 * `exovoice/max-params` (see `max_params.ts`).
 */
const plugin: Deno.lint.Plugin = createPlugin();

export default plugin;
