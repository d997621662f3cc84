/**
 * A small Prometheus metrics registry: counters, gauges and histograms with
 * labels. Pure: values live in memory, {@linkcode MetricsRegistry.collect}
 * snapshots them for a renderer.
 *
 * Counters and gauges may also take a `collect` callback, read at scrape time,
 * so that values already kept elsewhere (a call's own counters) cost nothing
 * until someone asks for them.
 *
 * @module
 */

/** Label names to values, e.g. `{ stage: "stt_final" }`. */
export type Labels = Readonly<Record<string, string>>;

/** The metric types the registry knows. */
export type MetricType = "counter" | "gauge" | "histogram";

/** One value of a counter or gauge. */
export interface Sample {
  /** The labels, one per label name of the metric. */
  labels: Labels;
  /** The value. */
  value: number;
}

/** One label set of a histogram. */
export interface HistogramSample {
  /** The labels, one per label name of the metric (never `le`). */
  labels: Labels;
  /** Observations at or below each bucket's bound, cumulative, in bucket order. */
  bucketCounts: number[];
  /** Sum of every observation. */
  sum: number;
  /** Number of observations. */
  count: number;
}

/** A snapshot of one metric, as a renderer sees it. */
export type MetricFamily =
  | {
    type: "counter" | "gauge";
    name: string;
    help: string;
    samples: Sample[];
  }
  | {
    type: "histogram";
    name: string;
    help: string;
    /** Upper bounds, ascending, without `+Inf`. */
    buckets: readonly number[];
    samples: HistogramSample[];
  };

/** A metric or label name the exposition format does not allow, or a clash. */
export class InvalidMetricError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "InvalidMetricError";
  }
}

/** What every metric is declared with. */
export interface MetricOptions {
  /** The metric's name, e.g. `exovoice_calls_ended_total`. */
  name: string;
  /** One line saying what it counts. */
  help: string;
  /** Label names, in the order they are rendered. */
  labelNames?: readonly string[];
}

/** Options of {@linkcode MetricsRegistry.counter}. */
export interface CounterOptions extends MetricOptions {
  /**
   * Values kept elsewhere, read at scrape time and added to the counter's
   * own. They must never decrease, or the counter would.
   */
  collect?: () => Iterable<Sample>;
}

/** Options of {@linkcode MetricsRegistry.gauge}. */
export interface GaugeOptions extends MetricOptions {
  /** Values read at scrape time; they replace set values with the same labels. */
  collect?: () => Iterable<Sample>;
}

/** Options of {@linkcode MetricsRegistry.histogram}. */
export interface HistogramOptions extends MetricOptions {
  /** Upper bounds of the buckets, ascending; `+Inf` is implied. */
  buckets: readonly number[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Series kept by label values joined with a character label values never need. */
const SEPARATOR = "\u0000";

abstract class Metric {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];

  constructor(options: MetricOptions) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
  }

  /** `labels` in declaration order, so every series renders its labels alike. */
  protected ordered(labels: Labels): Labels {
    const ordered: Record<string, string> = {};
    for (const name of this.labelNames) ordered[name] = labels[name];
    return ordered;
  }

  /** The series key of `labels`, checking they are exactly the declared ones. */
  protected keyOf(labels: Labels): string {
    const names = this.labelNames;
    let given = 0;
    for (const name in labels) {
      given++;
      if (!names.includes(name)) throw this.#labelError(labels);
    }
    if (given !== names.length) throw this.#labelError(labels);
    return names.map((name) => labels[name]).join(SEPARATOR);
  }

  #labelError(labels: Labels): InvalidMetricError {
    return new InvalidMetricError(
      `Invalid labels ${JSON.stringify(labels)} for "${this.name}": expected ${
        this.labelNames.length === 0 ? "none" : this.labelNames.join(", ")
      }`,
    );
  }

  abstract snapshot(): MetricFamily;
}

const NO_LABELS: Labels = Object.freeze({});

/** A value that only goes up. */
export class Counter extends Metric {
  #series = new Map<string, Sample>();
  #collect?: () => Iterable<Sample>;

  /** Declares the counter; use {@linkcode MetricsRegistry.counter}. */
  constructor(options: CounterOptions) {
    super(options);
    this.#collect = options.collect;
    if (this.labelNames.length === 0) {
      this.#series.set("", { labels: NO_LABELS, value: 0 });
    }
  }

  /** Adds `value` (default 1) to the series with `labels`. */
  inc(labels: Labels = NO_LABELS, value = 1): void {
    if (!(value >= 0)) {
      throw new InvalidMetricError(
        `Invalid increment "${value}" for counter "${this.name}": expected a number of 0 or more`,
      );
    }
    const key = this.keyOf(labels);
    const sample = this.#series.get(key);
    if (sample) sample.value += value;
    else this.#series.set(key, { labels: this.ordered(labels), value });
  }

  /** The current value of the series with `labels`, collected values included. */
  value(labels: Labels = NO_LABELS): number {
    const key = this.keyOf(labels);
    return this.#samples().find((sample) => this.keyOf(sample.labels) === key)
      ?.value ?? 0;
  }

  /** Snapshots the counter. */
  snapshot(): MetricFamily {
    return {
      type: "counter",
      name: this.name,
      help: this.help,
      samples: this.#samples(),
    };
  }

  #samples(): Sample[] {
    const merged = new Map<string, Sample>();
    for (const [key, sample] of this.#series) {
      merged.set(key, { labels: sample.labels, value: sample.value });
    }
    for (const sample of this.#collect?.() ?? []) {
      const key = this.keyOf(sample.labels);
      const existing = merged.get(key);
      if (existing) existing.value += sample.value;
      else {
        merged.set(key, {
          labels: this.ordered(sample.labels),
          value: sample.value,
        });
      }
    }
    return [...merged.values()];
  }
}

/** A value that goes up and down. */
export class Gauge extends Metric {
  #series = new Map<string, Sample>();
  #collect?: () => Iterable<Sample>;

  /** Declares the gauge; use {@linkcode MetricsRegistry.gauge}. */
  constructor(options: GaugeOptions) {
    super(options);
    this.#collect = options.collect;
    if (this.labelNames.length === 0 && !this.#collect) {
      this.#series.set("", { labels: NO_LABELS, value: 0 });
    }
  }

  /** Sets the series with `labels` to `value`. */
  set(labels: Labels, value: number): void {
    const key = this.keyOf(labels);
    this.#series.set(key, { labels: this.ordered(labels), value });
  }

  /** Adds `value` (default 1, may be negative) to the series with `labels`. */
  inc(labels: Labels = NO_LABELS, value = 1): void {
    const key = this.keyOf(labels);
    const sample = this.#series.get(key);
    if (sample) sample.value += value;
    else this.#series.set(key, { labels: this.ordered(labels), value });
  }

  /** Snapshots the gauge. */
  snapshot(): MetricFamily {
    const merged = new Map<string, Sample>();
    for (const [key, sample] of this.#series) {
      merged.set(key, { labels: sample.labels, value: sample.value });
    }
    for (const sample of this.#collect?.() ?? []) {
      merged.set(this.keyOf(sample.labels), {
        labels: this.ordered(sample.labels),
        value: sample.value,
      });
    }
    return {
      type: "gauge",
      name: this.name,
      help: this.help,
      samples: [...merged.values()],
    };
  }
}

interface HistogramSeries {
  labels: Labels;
  /** Observations per bucket, not cumulative; the last is `+Inf`'s own. */
  counts: number[];
  sum: number;
  count: number;
}

/** Observations counted into fixed buckets. */
export class Histogram extends Metric {
  /** Upper bounds, ascending, without `+Inf`. */
  readonly buckets: readonly number[];
  #series = new Map<string, HistogramSeries>();

  /** Declares the histogram; use {@linkcode MetricsRegistry.histogram}. */
  constructor(options: HistogramOptions) {
    super(options);
    const buckets = options.buckets.filter((bound) => bound !== Infinity);
    for (let i = 0; i < buckets.length; i++) {
      if (
        !Number.isFinite(buckets[i]) ||
        buckets[i] <= (buckets[i - 1] ?? -Infinity)
      ) {
        throw new InvalidMetricError(
          `Invalid buckets "${
            options.buckets.join(",")
          }" for histogram "${this.name}": expected finite bounds in ascending order`,
        );
      }
    }
    if (this.labelNames.includes("le")) {
      throw new InvalidMetricError(
        `Invalid label "le" for histogram "${this.name}": it is reserved for buckets`,
      );
    }
    this.buckets = Object.freeze(buckets);
    if (this.labelNames.length === 0) this.#seriesFor(NO_LABELS);
  }

  /** Creates the series with `labels` at zero, so it is rendered before its first observation. */
  init(labels: Labels): void {
    this.#seriesFor(labels);
  }

  /** Counts one observation of `value` in the series with `labels`; NaN is ignored. */
  observe(labels: Labels, value: number): void {
    if (Number.isNaN(value)) return;
    const series = this.#seriesFor(labels);
    let bucket = 0;
    while (bucket < this.buckets.length && value > this.buckets[bucket]) {
      bucket++;
    }
    series.counts[bucket]++;
    series.sum += value;
    series.count++;
  }

  #seriesFor(labels: Labels): HistogramSeries {
    const key = this.keyOf(labels);
    let series = this.#series.get(key);
    if (!series) {
      series = {
        labels: this.ordered(labels),
        counts: new Array(this.buckets.length + 1).fill(0),
        sum: 0,
        count: 0,
      };
      this.#series.set(key, series);
    }
    return series;
  }

  /** Snapshots the histogram, with cumulative bucket counts. */
  snapshot(): MetricFamily {
    const samples: HistogramSample[] = [];
    for (const series of this.#series.values()) {
      let running = 0;
      const bucketCounts = series.counts.slice(0, this.buckets.length).map(
        (count) => running += count,
      );
      samples.push({
        labels: series.labels,
        bucketCounts,
        sum: series.sum,
        count: series.count,
      });
    }
    return {
      type: "histogram",
      name: this.name,
      help: this.help,
      buckets: this.buckets,
      samples,
    };
  }
}

/**
 * The metrics of one process, in the order they were declared.
 *
 * @example
 * ```ts
 * const registry = new MetricsRegistry();
 * const hits = registry.counter({
 *   name: "hits_total",
 *   help: "Hits.",
 *   labelNames: ["path"],
 * });
 * hits.inc({ path: "/" });
 * registry.collect()[0].samples.length; // 1
 * ```
 */
export class MetricsRegistry {
  #metrics = new Map<string, Metric>();

  /** Declares a counter. */
  counter(options: CounterOptions): Counter {
    return this.#add(new Counter(this.#check(options)));
  }

  /** Declares a gauge. */
  gauge(options: GaugeOptions): Gauge {
    return this.#add(new Gauge(this.#check(options)));
  }

  /** Declares a histogram. */
  histogram(options: HistogramOptions): Histogram {
    return this.#add(new Histogram(this.#check(options)));
  }

  /** Snapshots every metric, in declaration order. */
  collect(): MetricFamily[] {
    return [...this.#metrics.values()].map((metric) => metric.snapshot());
  }

  #check<T extends MetricOptions>(options: T): T {
    if (!METRIC_NAME.test(options.name)) {
      throw new InvalidMetricError(
        `Invalid metric name "${options.name}": expected letters, digits, "_" and ":", not starting with a digit`,
      );
    }
    if (this.#metrics.has(options.name)) {
      throw new InvalidMetricError(
        `Duplicate metric name "${options.name}": each metric is declared once`,
      );
    }
    const seen = new Set<string>();
    for (const label of options.labelNames ?? []) {
      if (!LABEL_NAME.test(label) || label.startsWith("__")) {
        throw new InvalidMetricError(
          `Invalid label name "${label}" for "${options.name}": expected letters, digits and "_", not starting with a digit or "__"`,
        );
      }
      if (seen.has(label)) {
        throw new InvalidMetricError(
          `Duplicate label name "${label}" for "${options.name}"`,
        );
      }
      seen.add(label);
    }
    return options;
  }

  #add<T extends Metric>(metric: T): T {
    this.#metrics.set(metric.name, metric);
    return metric;
  }
}
