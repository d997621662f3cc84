/**
 * What the `exovoice` lint rules share: which files they check, how they
 * name a function in a diagnostic, and their report-only lists.
 *
 * @module
 */

/** A function node the rules look at. */
export type FunctionNode =
  | Deno.lint.FunctionDeclaration
  | Deno.lint.FunctionExpression
  | Deno.lint.ArrowFunctionExpression;

/**
 * The folder the rules hold in, as a path segment: the issue asks it of
 * `src/`. Tests keep their long `Deno.test` bodies, and tools and benchmarks
 * are scripts.
 */
export const CHECKED_FOLDER = "src/";

/** Whether the rules check a file: one under {@linkcode CHECKED_FOLDER}. */
export function isChecked(filename: string): boolean {
  const path = filename.replaceAll("\\", "/");
  return path.startsWith(CHECKED_FOLDER) || path.includes(`/${CHECKED_FOLDER}`);
}

/**
 * A rule that calls `check` on every function of a checked file:
 * declarations, expressions and arrows.
 */
export function functionRule(
  check: (fn: FunctionNode, context: Deno.lint.RuleContext) => void,
): Deno.lint.Rule {
  return {
    create(context) {
      if (!isChecked(context.filename)) return {};
      return {
        FunctionDeclaration: (fn) => check(fn, context),
        FunctionExpression: (fn) => check(fn, context),
        ArrowFunctionExpression: (fn) => check(fn, context),
      };
    },
  };
}

function keyName(key: Deno.lint.Node): string {
  if (key.type === "Identifier") return key.name;
  if (key.type === "PrivateIdentifier") return `#${key.name}`;
  if (key.type === "Literal") return String(key.value);
  return "[computed]";
}

function className(classBody: Deno.lint.ClassBody): string {
  const owner = classBody.parent;
  if (
    owner !== undefined &&
    (owner.type === "ClassDeclaration" || owner.type === "ClassExpression") &&
    owner.id
  ) {
    return owner.id.name;
  }
  return "(class)";
}

function ownName(fn: FunctionNode): string | undefined {
  if (fn.type !== "ArrowFunctionExpression" && fn.id) return fn.id.name;
  const parent = fn.parent;
  switch (parent.type) {
    case "MethodDefinition":
    case "PropertyDefinition":
      return `${className(parent.parent)}.${keyName(parent.key)}`;
    case "VariableDeclarator":
      return parent.id.type === "Identifier" ? parent.id.name : undefined;
    case "Property":
      return keyName(parent.key);
    case "AssignmentExpression":
      return parent.left.type === "MemberExpression"
        ? keyName(parent.left.property)
        : undefined;
    default:
      return undefined;
  }
}

/**
 * The name the rule reports a function by: its own name; `Class.method`
 * (`Class.#method` for a private one) for methods and class fields; the
 * variable or property it is assigned to; or, for an anonymous callback,
 * `(callback in outer)` after the nearest named function that holds it.
 */
export function functionName(
  fn: FunctionNode,
  sourceCode: Deno.lint.SourceCode,
): string {
  const own = ownName(fn);
  if (own !== undefined) return own;
  const ancestors = sourceCode.getAncestors(fn).reverse();
  for (const ancestor of ancestors) {
    if (
      ancestor.type === "FunctionDeclaration" ||
      ancestor.type === "FunctionExpression" ||
      ancestor.type === "ArrowFunctionExpression"
    ) {
      const outer = ownName(ancestor);
      if (outer !== undefined) return `(callback in ${outer})`;
    }
  }
  return "(callback)";
}

/**
 * The report-only entry (function names) for a linted file, matched on the end of
 * its path so that it holds from any working directory.
 */
export function reportOnlyFor(
  filename: string,
  reportOnly: Readonly<Record<string, readonly string[]>>,
): readonly string[] {
  const path = filename.replaceAll("\\", "/");
  for (const [suffix, names] of Object.entries(reportOnly)) {
    if (path.endsWith(`/${suffix}`) || path === suffix) return names;
  }
  return [];
}
