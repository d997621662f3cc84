/**
 * Rendering metrics in the Prometheus text exposition format, version 0.0.4.
 * Pure: snapshots in, text out.
 *
 * @module
 */

import type { Labels, MetricFamily } from "./registry.ts";

/** The `Content-Type` of the text this module renders. */
export const PROMETHEUS_CONTENT_TYPE =
  "text/plain; version=0.0.4; charset=utf-8";

/**
 * Renders `families` as exposition text: a `# HELP` and `# TYPE` line per
 * metric, then its samples; histograms as cumulative `_bucket` lines ending
 * in `le="+Inf"`, then `_sum` and `_count`. Ends with a newline.
 *
 * @example
 * ```ts
 * renderPrometheus([{
 *   type: "counter",
 *   name: "hits_total",
 *   help: "Hits.",
 *   samples: [{ labels: { path: "/" }, value: 2 }],
 * }]);
 * // "# HELP hits_total Hits.\n# TYPE hits_total counter\nhits_total{path=\"/\"} 2\n"
 * ```
 */
export function renderPrometheus(families: Iterable<MetricFamily>): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`);
    lines.push(`# TYPE ${family.name} ${family.type}`);
    if (family.type !== "histogram") {
      for (const { labels, value } of family.samples) {
        lines.push(`${family.name}${labelText(labels)} ${formatValue(value)}`);
      }
      continue;
    }
    for (const sample of family.samples) {
      family.buckets.forEach((bound, i) => {
        lines.push(
          `${family.name}_bucket${
            labelText(sample.labels, formatValue(bound))
          } ${formatValue(sample.bucketCounts[i])}`,
        );
      });
      lines.push(
        `${family.name}_bucket${labelText(sample.labels, "+Inf")} ${
          formatValue(sample.count)
        }`,
      );
      const labels = labelText(sample.labels);
      lines.push(`${family.name}_sum${labels} ${formatValue(sample.sum)}`);
      lines.push(`${family.name}_count${labels} ${formatValue(sample.count)}`);
    }
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

/** Formats a sample value the way Prometheus parses it: `+Inf`, `-Inf`, `NaN`, or a float. */
export function formatValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  if (Number.isNaN(value)) return "NaN";
  return String(value);
}

/** Escapes a label value: backslash, double quote and newline. */
export function escapeLabelValue(value: string): string {
  return value.replace(
    /[\\"\n]/g,
    (char) => char === "\n" ? "\\n" : `\\${char}`,
  );
}

/** HELP text escapes only backslash and newline. */
function escapeHelp(help: string): string {
  return help.replace(/[\\\n]/g, (char) => char === "\n" ? "\\n" : "\\\\");
}

function labelText(labels: Labels, le?: string): string {
  const pairs = Object.entries(labels).map(([name, value]) =>
    `${name}="${escapeLabelValue(value)}"`
  );
  if (le !== undefined) pairs.push(`le="${le}"`);
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
}
