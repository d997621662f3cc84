/**
 * The lint rule `exovoice/max-params`: no function, method, arrow or
 * constructor in exovoice takes more than {@linkcode MAX_PARAMS} parameters.
 * The house rule is "at most two positional arguments plus an options
 * object"; past that, call sites read as a row of unnamed values
 * (`integer(read, "PORT", 3000, [0, 65535])`) and a swapped pair still
 * type-checks. Name them in an options object instead
 * (`integer(read, "PORT", { fallback: 3000, range: [0, 65535] })`).
 *
 * The rule counts parameters, so it is simple and predictable: four or more
 * fail; three pass (whether the third is an options object is left to
 * review). A rest parameter counts as one, as do constructor parameter
 * properties. It runs from the plugin in `max_function_lines.ts` (one
 * plugin per name: `deno lint` refuses two plugins called `exovoice`), on
 * files under `src/`. Anything that must take more takes an explicit,
 * reviewed comment on the line before it:
 *
 * ```ts ignore
 * // deno-lint-ignore exovoice/max-params -- <why>
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

/** The most parameters a function may take: two positional plus options. */
export const MAX_PARAMS = 3;

/**
 * Functions that still take too many parameters in files other work in
 * progress owns, by path (relative to the project root) → function names as
 * the rule names them. The rule does not report these (and only these);
 * `tests/max_params_test.ts` fails when one of them no longer takes too
 * many, so the list cannot go stale. Empty: a branch may list its files'
 * functions here while it rewrites them, and empties it before it merges.
 */
export const MAX_PARAMS_REPORT_ONLY: Readonly<
  Record<string, readonly string[]>
> = {};

function check(
  fn: FunctionNode,
  context: Deno.lint.RuleContext,
  reportOnly: Readonly<Record<string, readonly string[]>>,
): void {
  const count = fn.params.length;
  if (count <= MAX_PARAMS) return;
  const name = functionName(fn, context.sourceCode);
  if (reportOnlyFor(context.filename, reportOnly).includes(name)) return;
  // Point at the head of the function (up to its body or its last
  // parameter), not the whole body, so the diagnostic stays readable.
  const end = fn.body?.range[0] ?? fn.params[count - 1].range[1];
  context.report({
    range: [fn.range[0], end],
    message:
      `Function "${name}" takes ${count} parameters; the limit is ${MAX_PARAMS} (two positional and an options object).`,
    hint:
      "Keep the one or two arguments every call passes positional and move " +
      "the rest into a named options object; anything that must take more " +
      "takes `// deno-lint-ignore exovoice/max-params -- <why>`.",
  });
}

/**
 * The rule `max-params`, reporting every function in `src/` with more than
 * {@linkcode MAX_PARAMS} parameters except those in `reportOnly` (default
 * {@linkcode MAX_PARAMS_REPORT_ONLY}).
 */
export function maxParamsRule(
  reportOnly: Readonly<Record<string, readonly string[]>> =
    MAX_PARAMS_REPORT_ONLY,
): Deno.lint.Rule {
  return functionRule((fn, context) => check(fn, context, reportOnly));
}
