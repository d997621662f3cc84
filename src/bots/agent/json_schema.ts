/**
 * Checks a value against the subset of JSON Schema that tool parameters use
 * (the subset OpenAI's function calling accepts): `type`, `properties`,
 * `required`, `additionalProperties`, `items`, `enum`, `const`, `minimum`,
 * `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `minLength`,
 * `maxLength`, `pattern`, `format` (`date`, `time`, `date-time`, `email`),
 * `minItems`, `maxItems`, `anyOf`. Unknown keywords are ignored, as JSON
 * Schema says. Pure.
 *
 * Hand-written rather than Ajv: Ajv compiles schemas with `new Function`,
 * which Deno Deploy forbids, and tool arguments need only this subset.
 *
 * @module
 */

/** A JSON Schema, as parsed from JSON or YAML. */
export type JsonSchema = Readonly<Record<string, unknown>>;

const FORMATS: Record<string, RegExp> = {
  date: /^\d{4}-\d{2}-\d{2}$/,
  time: /^\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$/,
  "date-time":
    /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$/,
  email: /^[^@\s]+@[^@\s]+\.[^@\s]+$/,
};

const TYPES = [
  "string",
  "number",
  "integer",
  "boolean",
  "object",
  "array",
  "null",
];

/**
 * Every way `value` breaks `schema`, each as `path: what was expected, got
 * value` (`path` empty for the value itself, then `date`, `items[2].sku`).
 * An empty list means the value is valid.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const schema = {
 *   type: "object",
 *   properties: { date: { type: "string" } },
 *   required: ["date"],
 * };
 * assertEquals(validateJson(schema, { date: "2026-12-03" }), []);
 * assertEquals(validateJson(schema, { date: 5 }), [
 *   "date: expected a string, got 5",
 * ]);
 * ```
 */
export function validateJson(schema: JsonSchema, value: unknown): string[] {
  const errors: string[] = [];
  check(schema, value, { path: "", errors });
  return errors;
}

/** Where a check is in the value, and where its findings go. */
interface At {
  path: string;
  errors: string[];
}

/**
 * Problems with a schema itself, so a tool file with a misspelt type stops
 * at startup rather than at the model's first call.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(schemaProblems({ type: "strin" }), [
 *   'type: expected one of string, number, integer, boolean, object, array, null, got "strin"',
 * ]);
 * ```
 */
export function schemaProblems(schema: unknown, path = ""): string[] {
  const problems: string[] = [];
  if (!isRecord(schema)) {
    return [`${label(path)}expected a JSON Schema object, got ${show(schema)}`];
  }
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  for (const type of types) {
    if (type !== undefined && !TYPES.includes(type as string)) {
      problems.push(
        `${label(join(path, "type"))}expected one of ${TYPES.join(", ")}, got ${
          show(type)
        }`,
      );
    }
  }
  if (schema.properties !== undefined) {
    if (!isRecord(schema.properties)) {
      problems.push(
        `${label(join(path, "properties"))}expected an object, got ${
          show(schema.properties)
        }`,
      );
    } else {
      for (const [key, sub] of Object.entries(schema.properties)) {
        problems.push(...schemaProblems(sub, join(path, `properties.${key}`)));
      }
    }
  }
  if (
    schema.required !== undefined &&
    !(Array.isArray(schema.required) &&
      schema.required.every((name) => typeof name === "string"))
  ) {
    problems.push(
      `${label(join(path, "required"))}expected a list of property names, got ${
        show(schema.required)
      }`,
    );
  }
  if (schema.items !== undefined) {
    problems.push(...schemaProblems(schema.items, join(path, "items")));
  }
  if (schema.pattern !== undefined) {
    try {
      new RegExp(String(schema.pattern), "u");
    } catch {
      problems.push(
        `${label(join(path, "pattern"))}expected a regular expression, got ${
          show(schema.pattern)
        }`,
      );
    }
  }
  return problems;
}

function check(
  schema: JsonSchema,
  value: unknown,
  { path, errors }: At,
): void {
  if (Array.isArray(schema.anyOf)) {
    const fits = schema.anyOf.some((sub) =>
      isRecord(sub) && validateJson(sub, value).length === 0
    );
    if (!fits) {
      errors.push(
        `${label(path)}matches none of the allowed shapes, got ${show(value)}`,
      );
      return;
    }
  }
  if (schema.const !== undefined && !sameJson(schema.const, value)) {
    errors.push(
      `${label(path)}expected ${show(schema.const)}, got ${show(value)}`,
    );
    return;
  }
  if (
    Array.isArray(schema.enum) &&
    !schema.enum.some((option) => sameJson(option, value))
  ) {
    errors.push(
      `${label(path)}expected one of ${schema.enum.map(show).join(", ")}, got ${
        show(value)
      }`,
    );
    return;
  }
  const types = typeList(schema.type);
  if (types.length > 0 && !types.some((type) => hasType(value, type))) {
    errors.push(
      `${label(path)}expected ${types.map(article).join(" or ")}, got ${
        show(value)
      }`,
    );
    return;
  }
  if (typeof value === "string") checkString(schema, value, { path, errors });
  else if (typeof value === "number") {
    checkNumber(schema, value, { path, errors });
  } else if (Array.isArray(value)) checkArray(schema, value, { path, errors });
  else if (isRecord(value)) checkObject(schema, value, { path, errors });
}

function checkString(
  schema: JsonSchema,
  value: string,
  { path, errors }: At,
): void {
  const length = [...value].length;
  if (typeof schema.minLength === "number" && length < schema.minLength) {
    errors.push(
      `${label(path)}expected at least ${schema.minLength} characters, got ${
        show(value)
      }`,
    );
  }
  if (typeof schema.maxLength === "number" && length > schema.maxLength) {
    errors.push(
      `${label(path)}expected at most ${schema.maxLength} characters, got ${
        show(value)
      }`,
    );
  }
  if (typeof schema.pattern === "string") {
    let pattern: RegExp | undefined;
    try {
      pattern = new RegExp(schema.pattern, "u");
    } catch {
      // schemaProblems reports it at startup; a bad pattern checks nothing.
    }
    if (pattern && !pattern.test(value)) {
      errors.push(
        `${label(path)}expected text matching /${schema.pattern}/, got ${
          show(value)
        }`,
      );
    }
  }
  const format = typeof schema.format === "string"
    ? FORMATS[schema.format]
    : undefined;
  if (format && !format.test(value)) {
    errors.push(
      `${label(path)}expected a ${schema.format}, got ${show(value)}`,
    );
  }
}

function checkNumber(
  schema: JsonSchema,
  value: number,
  { path, errors }: At,
): void {
  const bound = (
    key: string,
    fails: (limit: number) => boolean,
    text: string,
  ) => {
    const limit = schema[key];
    if (typeof limit === "number" && fails(limit)) {
      errors.push(
        `${label(path)}expected a number ${text} ${limit}, got ${value}`,
      );
    }
  };
  bound("minimum", (limit) => value < limit, "of at least");
  bound("maximum", (limit) => value > limit, "of at most");
  bound("exclusiveMinimum", (limit) => value <= limit, "above");
  bound("exclusiveMaximum", (limit) => value >= limit, "below");
}

function checkArray(
  schema: JsonSchema,
  value: unknown[],
  { path, errors }: At,
): void {
  if (typeof schema.minItems === "number" && value.length < schema.minItems) {
    errors.push(
      `${
        label(path)
      }expected at least ${schema.minItems} items, got ${value.length}`,
    );
  }
  if (typeof schema.maxItems === "number" && value.length > schema.maxItems) {
    errors.push(
      `${
        label(path)
      }expected at most ${schema.maxItems} items, got ${value.length}`,
    );
  }
  if (isRecord(schema.items)) {
    const items = schema.items;
    value.forEach((item, index) =>
      check(items, item, { path: `${path}[${index}]`, errors })
    );
  }
}

function checkObject(
  schema: JsonSchema,
  value: Record<string, unknown>,
  { path, errors }: At,
): void {
  const properties = isRecord(schema.properties) ? schema.properties : {};
  if (Array.isArray(schema.required)) {
    for (const name of schema.required) {
      if (typeof name === "string" && value[name] === undefined) {
        errors.push(`${label(join(path, name))}is required, got nothing`);
      }
    }
  }
  for (const [key, item] of Object.entries(value)) {
    const sub = properties[key];
    if (isRecord(sub)) check(sub, item, { path: join(path, key), errors });
    else if (schema.additionalProperties === false) {
      errors.push(
        `${label(join(path, key))}is not an accepted property, got ${
          show(item)
        }`,
      );
    } else if (isRecord(schema.additionalProperties)) {
      check(schema.additionalProperties, item, {
        path: join(path, key),
        errors,
      });
    }
  }
}

function typeList(type: unknown): string[] {
  if (typeof type === "string") return [type];
  if (Array.isArray(type)) {
    return type.filter((item): item is string => typeof item === "string");
  }
  return [];
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case "string":
      return typeof value === "string";
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "integer":
      return Number.isInteger(value);
    case "boolean":
      return typeof value === "boolean";
    case "null":
      return value === null;
    case "array":
      return Array.isArray(value);
    case "object":
      return isRecord(value);
    default:
      return true;
  }
}

function article(type: string): string {
  if (type === "null") return "null";
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

function label(path: string): string {
  return path === "" ? "" : `${path}: `;
}

/** A value as quoted in error messages, cut short when long. */
export function show(value: unknown): string {
  const text = value === undefined ? "nothing" : JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}
