/**
 * A strict parser of the Prometheus text exposition format 0.0.4, written
 * from the format's specification, the way Prometheus's own parser reads a
 * scrape: it throws on anything Prometheus would reject, and checks the
 * histogram rules (cumulative buckets, a `+Inf` bucket equal to `_count`).
 *
 * @module
 */

/** One parsed sample line. */
export interface ParsedSample {
  /** The sample's own name (`x_bucket`, `x_sum`, …). */
  name: string;
  /** Its labels, unescaped. */
  labels: Record<string, string>;
  /** Its value. */
  value: number;
}

/** One metric family. */
export interface ParsedFamily {
  /** The family's name. */
  name: string;
  /** From `# TYPE`; `untyped` without one. */
  type: string;
  /** From `# HELP`, unescaped. */
  help?: string;
  /** Its samples in order. */
  samples: ParsedSample[];
}

/** A scrape Prometheus would refuse. */
export class ExpositionError extends Error {
  /** Creates the error for line `line` (1-based). */
  constructor(line: number, message: string) {
    super(`Line ${line}: ${message}`);
    this.name = "ExpositionError";
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Parses `text`, throwing an {@linkcode ExpositionError} at the first fault. */
export function parsePrometheusText(text: string): Map<string, ParsedFamily> {
  const families = new Map<string, ParsedFamily>();
  const finished = new Set<string>();
  let current: ParsedFamily | undefined;
  const seriesSeen = new Set<string>();
  if (text !== "" && !text.endsWith("\n")) {
    throw new ExpositionError(0, "text does not end with a newline");
  }
  const lines = text.split("\n");
  lines.pop();
  lines.forEach((line, index) => {
    const number = index + 1;
    const fail = (message: string): never => {
      throw new ExpositionError(number, `${message}: ${JSON.stringify(line)}`);
    };
    if (line.trim() === "") return;
    const family = (name: string) => {
      if (current?.name === name) return current;
      if (finished.has(name) || families.has(name)) {
        fail(`lines of "${name}" are not grouped together`);
      }
      if (current) finished.add(current.name);
      current = { name, type: "untyped", samples: [] };
      families.set(name, current);
      return current;
    };
    if (line.startsWith("#")) {
      const match = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (!match) return; // A plain comment.
      const [, keyword, name, rest = ""] = match;
      if (!METRIC_NAME.test(name) || METRIC_NAME.exec(name)![0] !== name) {
        fail("invalid metric name");
      }
      const target = family(name);
      if (keyword === "HELP") {
        if (target.help !== undefined) fail("second HELP line");
        target.help = unescape(rest, false, fail);
      } else {
        if (target.samples.length > 0) fail("TYPE after samples");
        if (target.type !== "untyped") {
          fail("second TYPE line");
        }
        if (!TYPES.has(rest.trim())) fail("unknown type");
        target.type = rest.trim();
      }
      return;
    }
    const sample = parseSample(line, fail);
    const base = familyName(sample.name, current);
    const target = family(base);
    if (target.type === "histogram") {
      if (sample.name === base) fail("bare sample of a histogram");
      if (sample.name === `${base}_bucket` && !("le" in sample.labels)) {
        fail("bucket without le");
      }
    } else if (sample.name !== base) {
      fail(`sample "${sample.name}" under "${base}"`);
    }
    const series = `${sample.name}${
      JSON.stringify(sortedLabels(sample.labels))
    }`;
    if (seriesSeen.has(series)) fail("duplicate series");
    seriesSeen.add(series);
    target.samples.push(sample);
  });
  for (const family of families.values()) {
    if (family.type === "histogram") checkHistogram(family);
  }
  return families;
}

function familyName(
  sampleName: string,
  current: ParsedFamily | undefined,
): string {
  if (current?.type === "histogram" || current?.type === "summary") {
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      if (sampleName === `${current.name}${suffix}`) return current.name;
    }
  }
  return sampleName;
}

function parseSample(line: string, fail: (message: string) => never) {
  const name = METRIC_NAME.exec(line)?.[0] ?? fail("no metric name");
  let rest = line.slice(name.length);
  const labels: Record<string, string> = {};
  if (rest.startsWith("{")) {
    rest = rest.slice(1);
    while (true) {
      rest = rest.trimStart();
      if (rest.startsWith("}")) {
        rest = rest.slice(1);
        break;
      }
      const label = LABEL_NAME.exec(rest)?.[0] ?? fail("bad label name");
      rest = rest.slice(label.length).trimStart();
      if (!rest.startsWith('="')) fail(`no ="value" after label ${label}`);
      rest = rest.slice(2);
      let raw = "";
      while (true) {
        if (rest === "") fail("unterminated label value");
        const char = rest[0];
        if (char === '"') break;
        if (char === "\n") fail("raw newline in label value");
        if (char === "\\") {
          raw += rest.slice(0, 2);
          rest = rest.slice(2);
        } else {
          raw += char;
          rest = rest.slice(1);
        }
      }
      rest = rest.slice(1);
      if (label in labels) fail(`duplicate label ${label}`);
      labels[label] = unescape(raw, true, fail);
      rest = rest.trimStart();
      if (rest.startsWith(",")) rest = rest.slice(1);
      else if (!rest.startsWith("}")) fail("expected , or } after label");
    }
  }
  if (!/^[ \t]/.test(rest)) fail("no space before the value");
  const fields = rest.trim().split(/[ \t]+/);
  if (fields.length > 2) fail("too many fields");
  const value = parseValue(fields[0]) ?? fail("bad value");
  if (fields[1] !== undefined && !/^-?\d+$/.test(fields[1])) {
    fail("bad timestamp");
  }
  return { name, labels, value };
}

/**
 * Prometheus reads values with Go's `strconv.ParseFloat`, which takes
 * `Inf` and `NaN` in any case (prom-client writes `Nan`).
 */
function parseValue(text: string): number | undefined {
  const lower = text.toLowerCase();
  if (lower === "+inf" || lower === "inf") return Infinity;
  if (lower === "-inf") return -Infinity;
  if (lower === "nan") return NaN;
  return FLOAT.test(text) ? Number(text) : undefined;
}

function unescape(
  text: string,
  quotes: boolean,
  fail: (message: string) => never,
): string {
  return text.replace(/\\(.)/gs, (_, char: string) => {
    if (char === "\\") return "\\";
    if (char === "n") return "\n";
    if (char === '"' && quotes) return '"';
    return fail(`invalid escape \\${char}`);
  });
}

function sortedLabels(labels: Record<string, string>): [string, string][] {
  return Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
}

function checkHistogram(family: ParsedFamily): void {
  const groups = new Map<
    string,
    { buckets: [number, number][]; sum?: number; count?: number }
  >();
  for (const sample of family.samples) {
    const { le, ...rest } = sample.labels;
    const key = JSON.stringify(sortedLabels(rest));
    const group = groups.get(key) ?? { buckets: [] };
    groups.set(key, group);
    if (sample.name.endsWith("_bucket")) {
      const bound = parseValue(le);
      if (bound === undefined) {
        throw new ExpositionError(0, `${family.name}: bad le "${le}"`);
      }
      group.buckets.push([bound, sample.value]);
    } else if (sample.name.endsWith("_sum")) group.sum = sample.value;
    else group.count = sample.value;
  }
  for (const [key, group] of groups) {
    const where = `${family.name}${key}`;
    for (let i = 1; i < group.buckets.length; i++) {
      if (group.buckets[i][0] <= group.buckets[i - 1][0]) {
        throw new ExpositionError(0, `${where}: buckets out of order`);
      }
      if (group.buckets[i][1] < group.buckets[i - 1][1]) {
        throw new ExpositionError(0, `${where}: buckets not cumulative`);
      }
    }
    const last = group.buckets.at(-1);
    if (last?.[0] !== Infinity) {
      throw new ExpositionError(0, `${where}: no +Inf bucket`);
    }
    if (group.count === undefined || group.sum === undefined) {
      throw new ExpositionError(0, `${where}: _sum or _count missing`);
    }
    if (last[1] !== group.count) {
      throw new ExpositionError(0, `${where}: +Inf bucket is not _count`);
    }
  }
}

/** The value of the sample named `name` with exactly `labels`, if any. */
export function sampleValue(
  families: Map<string, ParsedFamily>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const wanted = JSON.stringify(sortedLabels(labels));
  for (const family of families.values()) {
    for (const sample of family.samples) {
      if (
        sample.name === name &&
        JSON.stringify(sortedLabels(sample.labels)) === wanted
      ) {
        return sample.value;
      }
    }
  }
  return undefined;
}
