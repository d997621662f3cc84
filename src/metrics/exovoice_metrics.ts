/**
 * The metrics exovoice exports at `GET /metrics`.
 *
 * Nothing runs per frame: a call already counts its frames, bytes and
 * playout in its snapshot ({@linkcode CallSnapshot}). {@linkcode ExovoiceMetrics.callStarted}
 * adds the session to a live set that a scrape sums;
 * {@linkcode ExovoiceMetrics.callEnded} folds its counters in and drops it
 * from the set in one step, so no counter ever goes down, whenever after
 * the end it runs.
 *
 * Every label comes from a bounded set: free text from peers (stop reasons,
 * close reasons) is mapped to a few values first.
 *
 * @module
 */

import type { CallSnapshot } from "../call/call_snapshot.ts";
import { type Clock, systemClock } from "../call/clock.ts";
import type { ProviderErrorKind } from "../providers/provider_error.ts";
import type { ProviderHealthEntry } from "../providers/fallback/provider_health.ts";
import type { BreakerState } from "../providers/fallback/circuit_breaker.ts";
import {
  callOutcome,
  LATENCY_STAGES,
  type LatencyStage,
} from "../records/call_record.ts";
import { ConnectionMetrics } from "./connection_metrics.ts";
import { type LiveTotals, liveTotals, plainLabel } from "./live_totals.ts";
import {
  type Counter,
  type Histogram,
  MetricsRegistry,
  type Sample,
} from "./registry.ts";

/** Where an authentication failure happened. */
export type AuthEndpoint = "voicebot" | "admin";

/** Options of {@linkcode ExovoiceMetrics}. */
export interface ExovoiceMetricsOptions {
  /** The running version, shown by `exovoice_info`. */
  version?: string;
  /** This instance's id, shown by `exovoice_info`. */
  instanceId?: string;
  /** The providers' circuit breakers and fallback counts (the agent's), read at scrape time. */
  providerHealth?: { entries(): ProviderHealthEntry[] };
  /** Where a call's end time comes from when its snapshot has none; the system clock by default. */
  clock?: Clock;
}

/** The states `exovoice_provider_breaker_state` reports, one series each. */
const BREAKER_STATES: readonly BreakerState[] = ["closed", "open", "half_open"];

/** Upper bounds of the turn latency buckets, in seconds. */
export const TURN_LATENCY_BUCKETS_S: readonly number[] = [
  0.1,
  0.2,
  0.3,
  0.5,
  0.75,
  1,
  1.5,
  2,
  3,
  5,
  10,
];

/** Upper bounds of the call duration buckets, in seconds. */
export const CALL_DURATION_BUCKETS_S: readonly number[] = [
  1,
  5,
  15,
  30,
  60,
  120,
  300,
  600,
  1200,
  1800,
  3600,
];

const PROVIDER_ERROR_KINDS: ReadonlySet<string> = new Set<ProviderErrorKind>([
  "http",
  "timeout",
  "protocol",
  "network",
  "aborted",
]);
const PROVIDER_NAME = /^[a-z0-9][a-z0-9_.-]{0,31}$/;

/**
 * exovoice's metrics, backed by a {@linkcode MetricsRegistry}.
 *
 * @example
 * ```ts ignore
 * const metrics = new ExovoiceMetrics({ version: "0.1.0" });
 * metrics.callStarted(call.session);
 * call.ended.then((reason) => metrics.callEnded(call.session, reason));
 * // at GET /metrics:
 * new Response(await metrics.render(), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } });
 * ```
 */
export class ExovoiceMetrics {
  /** The underlying registry, for metrics declared elsewhere. */
  readonly registry: MetricsRegistry = new MetricsRegistry();
  /** Listener failures, dropped sockets, refused connections, descriptors. */
  readonly connections: ConnectionMetrics = new ConnectionMetrics(
    this.registry,
  );
  #sessions = new Set<CallSnapshot>();
  #live?: LiveTotals;
  #calls: CallMetrics;
  #traffic: TrafficMetrics;
  #playout: PlayoutMetrics;
  #authFailures: Counter;
  #agent: AgentMetrics;
  #recordWriteFailures: Counter;
  #clock: Clock;

  /** Declares every metric. */
  constructor(options: ExovoiceMetricsOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    const registry = this.registry;
    const live = () => this.#liveTotals();
    declareInfo(registry, options);
    this.#calls = callMetrics(registry, live);
    this.#traffic = trafficMetrics(registry, live);
    this.#playout = playoutMetrics(registry, live);
    this.#authFailures = authFailureMetric(registry);
    this.#agent = agentMetrics(registry);
    if (options.providerHealth) {
      declareProviderHealth(registry, options.providerHealth);
    }
    this.#recordWriteFailures = registry.counter({
      name: "exovoice_call_record_write_failures_total",
      help: "Call records that could not be written to KV after every retry.",
    });
  }

  /** Counts a new call and watches its session's counters until it ends. */
  callStarted(session: CallSnapshot): void {
    this.#sessions.add(session);
  }

  /**
   * Folds an ended call's counters in and counts its outcome. Ignored for a
   * session not started here or already ended.
   */
  callEnded(
    session: CallSnapshot,
    reason: string,
    endedAt = session.endedAt ?? this.#clock.epochMs(),
  ): void {
    if (!this.#sessions.delete(session)) return;
    const { playout } = session;
    const calls = this.#calls;
    calls.started.inc();
    const { outcome, detail } = callOutcome(reason);
    calls.ended.inc({ outcome, detail });
    calls.duration.observe(
      {},
      Math.max(0, endedAt - session.connectedAt) / 1000,
    );
    const traffic = this.#traffic;
    traffic.frames.inc({ direction: "in" }, session.framesIn);
    traffic.frames.inc({ direction: "out" }, playout.framesOut);
    traffic.bytes.inc({ direction: "in" }, session.bytesIn);
    traffic.bytes.inc({ direction: "out" }, playout.bytesOut);
    for (const [kind, count] of Object.entries(session.badFrames)) {
      traffic.badFrames.inc({ kind: plainLabel(kind) }, count);
    }
    traffic.dtmf.inc({}, session.dtmfDigits.length);
    const played = this.#playout;
    played.marks.inc({ event: "sent" }, playout.marksSent);
    played.marks.inc({ event: "acknowledged" }, playout.marksAcknowledged);
    played.underruns.inc({}, playout.underruns);
    played.clears.inc({}, playout.clears);
    played.dropped.inc({}, playout.droppedBytes);
  }

  /** Counts a request refused for its credentials. */
  authFailed(endpoint: AuthEndpoint): void {
    this.#authFailures.inc({ endpoint });
  }

  /**
   * Observes one turn's latencies, in milliseconds from the end of the
   * caller's speech, for each stage it reached.
   */
  turnCompleted(latenciesMs: Partial<Record<LatencyStage, number>>): void {
    for (const stage of LATENCY_STAGES) {
      const ms = latenciesMs[stage];
      if (ms !== undefined && Number.isFinite(ms) && ms >= 0) {
        this.#agent.turnLatency.observe({ stage }, ms / 1000);
      }
    }
  }

  /** Counts a provider failure (see {@linkcode ProviderError}'s `provider` and `kind`). */
  providerError(provider: string, kind: ProviderErrorKind): void {
    const name = provider.toLowerCase();
    this.#agent.providerErrors.inc({
      provider: PROVIDER_NAME.test(name) ? name : "other",
      kind: PROVIDER_ERROR_KINDS.has(kind) ? kind : "other",
    });
  }

  /**
   * Counts a tool call. Tool names come from the agent file or code, so
   * they are a bounded set; anything else is `other`.
   */
  toolCall(tool: string, outcome: string, latencyMs: number): void {
    const name = /^[a-zA-Z0-9_-]{1,64}$/.test(tool) ? tool : "other";
    const result = PROVIDER_NAME.test(outcome) ? outcome : "other";
    this.#agent.toolCalls.inc({ tool: name, outcome: result });
    if (Number.isFinite(latencyMs) && latencyMs >= 0) {
      this.#agent.toolLatency.observe({ tool: name }, latencyMs / 1000);
    }
  }

  /** Counts a call record lost after every retry (wire to `CallStore`'s `onSaveFailed`). */
  recordWriteFailed(): void {
    this.#recordWriteFailures.inc();
  }

  /** Renders every metric in the Prometheus text format 0.0.4. */
  async render(): Promise<string> {
    // One sum of the live calls serves every metric of this scrape.
    this.#live = this.#sumLive();
    try {
      return await this.registry.render();
    } finally {
      this.#live = undefined;
    }
  }

  #liveTotals(): LiveTotals {
    return this.#live ?? this.#sumLive();
  }

  #sumLive(): LiveTotals {
    return liveTotals(this.#sessions);
  }
}

/** Reads the live calls' totals (summed once per scrape). */
type LiveRead = () => LiveTotals;

/** `exovoice_info`, when there is a version or an instance id to show. */
function declareInfo(
  registry: MetricsRegistry,
  options: ExovoiceMetricsOptions,
): void {
  if (options.version === undefined && options.instanceId === undefined) {
    return;
  }
  const info = registry.gauge({
    name: "exovoice_info",
    help: "Always 1: the running version and instance id.",
    labelNames: ["version", "instance"],
  });
  info.set({
    version: options.version ?? "",
    instance: options.instanceId ?? "",
  }, 1);
}

/** Calls started and ended, and how long they lasted. */
interface CallMetrics {
  started: Counter;
  ended: Counter;
  duration: Histogram;
}

function callMetrics(registry: MetricsRegistry, live: LiveRead): CallMetrics {
  registry.gauge({
    name: "exovoice_live_calls",
    help:
      "Calls in progress, by state: connected (waiting for start) or started.",
    labelNames: ["state"],
    collect: () => [
      { labels: { state: "connected" }, value: live().connected },
      { labels: { state: "started" }, value: live().started },
    ],
  });
  return {
    started: liveCounter(registry, live, {
      name: "exovoice_calls_started_total",
      help: "Voicebot sockets accepted.",
      value: (totals) => totals.calls,
    }),
    ended: registry.counter({
      name: "exovoice_calls_ended_total",
      help:
        "Calls ended, by outcome (stop, closed, hangup, idle_timeout, …) and detail (stop reason or close code).",
      labelNames: ["outcome", "detail"],
    }),
    duration: registry.histogram({
      name: "exovoice_call_duration_seconds",
      help: "Length of ended calls, from upgrade to end.",
      buckets: CALL_DURATION_BUCKETS_S,
    }),
  };
}

/** What came over the socket: frames, audio bytes, skipped frames, DTMF. */
interface TrafficMetrics {
  frames: Counter;
  bytes: Counter;
  badFrames: Counter;
  dtmf: Counter;
}

function trafficMetrics(
  registry: MetricsRegistry,
  live: LiveRead,
): TrafficMetrics {
  return {
    frames: registry.counter({
      name: "exovoice_frames_total",
      help:
        "WebSocket frames: in counts every frame received, out every media frame sent.",
      labelNames: ["direction"],
      collect: () => directions(live().framesIn, live().framesOut),
    }),
    bytes: registry.counter({
      name: "exovoice_audio_bytes_total",
      help:
        "Audio bytes received (in) and sent, padding included (out), as on the wire (PCM or μ-law).",
      labelNames: ["direction"],
      collect: () => directions(live().bytesIn, live().bytesOut),
    }),
    badFrames: registry.counter({
      name: "exovoice_bad_frames_total",
      help:
        "Inbound frames skipped, by kind (invalid_json, binary, too_large, …).",
      labelNames: ["kind"],
      collect: () =>
        [...live().badFrames].map(([kind, value]) => ({
          labels: { kind },
          value,
        })),
    }),
    dtmf: liveCounter(registry, live, {
      name: "exovoice_dtmf_digits_total",
      help: "DTMF digits received.",
      value: (totals) => totals.dtmfDigits,
    }),
  };
}

/** How the bot's audio played out: marks, underruns, clears, drops. */
interface PlayoutMetrics {
  marks: Counter;
  underruns: Counter;
  clears: Counter;
  dropped: Counter;
}

function playoutMetrics(
  registry: MetricsRegistry,
  live: LiveRead,
): PlayoutMetrics {
  return {
    marks: registry.counter({
      name: "exovoice_marks_total",
      help: "Marks sent after utterances, and acknowledged by Exotel.",
      labelNames: ["event"],
      collect: () => [
        { labels: { event: "sent" }, value: live().marksSent },
        { labels: { event: "acknowledged" }, value: live().marksAcknowledged },
      ],
    }),
    underruns: liveCounter(registry, live, {
      name: "exovoice_playout_underruns_total",
      help:
        "Times Exotel's playout queue ran dry in the middle of an utterance.",
      value: (totals) => totals.underruns,
    }),
    clears: liveCounter(registry, live, {
      name: "exovoice_playout_clears_total",
      help: "clear frames sent (barge-in).",
      value: (totals) => totals.clears,
    }),
    dropped: liveCounter(registry, live, {
      name: "exovoice_playout_dropped_bytes_total",
      help:
        "Bot audio (PCM bytes) dropped unplayed for falling too far behind, e.g. an echo backlog beyond its bound.",
      value: (totals) => totals.droppedBytes,
    }),
  };
}

/** A counter without labels whose live calls' share is one of their totals. */
function liveCounter(
  registry: MetricsRegistry,
  live: LiveRead,
  options: {
    name: string;
    help: string;
    value: (totals: LiveTotals) => number;
  },
): Counter {
  return registry.counter({
    name: options.name,
    help: options.help,
    collect: () => [{ labels: {}, value: options.value(live()) }],
  });
}

/** Refused credentials, both endpoints shown from the start. */
function authFailureMetric(registry: MetricsRegistry): Counter {
  const failures = registry.counter({
    name: "exovoice_auth_failures_total",
    help:
      "Requests refused for missing or wrong credentials, by endpoint (voicebot socket or admin).",
    labelNames: ["endpoint"],
  });
  for (const endpoint of ["voicebot", "admin"]) failures.inc({ endpoint }, 0);
  return failures;
}

/** The agent's turns, its vendors' failures and its tool calls. */
interface AgentMetrics {
  turnLatency: Histogram;
  providerErrors: Counter;
  toolCalls: Counter;
  toolLatency: Histogram;
}

function agentMetrics(registry: MetricsRegistry): AgentMetrics {
  const turnLatency = registry.histogram({
    name: "exovoice_turn_latency_seconds",
    help:
      "Time from the end of the caller's speech to each stage of the bot's answer.",
    labelNames: ["stage"],
    buckets: TURN_LATENCY_BUCKETS_S,
  });
  for (const stage of LATENCY_STAGES) turnLatency.init({ stage });
  return {
    turnLatency,
    providerErrors: registry.counter({
      name: "exovoice_provider_errors_total",
      help:
        "Failed calls to speech and language vendors, by provider and kind.",
      labelNames: ["provider", "kind"],
    }),
    toolCalls: registry.counter({
      name: "exovoice_tool_calls_total",
      help: "Tool calls the agent ran, by tool and outcome.",
      labelNames: ["tool", "outcome"],
    }),
    toolLatency: registry.histogram({
      name: "exovoice_tool_latency_seconds",
      help: "How long tool calls took, by tool.",
      labelNames: ["tool"],
      buckets: TURN_LATENCY_BUCKETS_S,
    }),
  };
}

/** The providers' circuit breakers and fallbacks, read at scrape time. */
function declareProviderHealth(
  registry: MetricsRegistry,
  health: NonNullable<ExovoiceMetricsOptions["providerHealth"]>,
): void {
  registry.gauge({
    name: "exovoice_provider_breaker_state",
    help:
      "Circuit breaker of each speech and language provider: 1 for its current state (closed, open: kept out, half_open: next request probes it).",
    labelNames: ["stage", "provider", "state"],
    collect: () =>
      health.entries().flatMap((entry) =>
        BREAKER_STATES.map((state) => ({
          labels: { stage: entry.stage, provider: entry.provider, state },
          value: entry.state === state ? 1 : 0,
        }))
      ),
  });
  registry.counter({
    name: "exovoice_provider_breaker_opened_total",
    help: "Times each provider's circuit breaker opened.",
    labelNames: ["stage", "provider"],
    collect: () =>
      health.entries().map((entry) => ({
        labels: { stage: entry.stage, provider: entry.provider },
        value: entry.opened,
      })),
  });
  registry.counter({
    name: "exovoice_provider_fallbacks_total",
    help:
      "Requests a provider failed that went on to the next provider of its list.",
    labelNames: ["stage", "provider"],
    collect: () =>
      health.entries().map((entry) => ({
        labels: { stage: entry.stage, provider: entry.provider },
        value: entry.fallbacks,
      })),
  });
}

function directions(inbound: number, outbound: number): Sample[] {
  return [
    { labels: { direction: "in" }, value: inbound },
    { labels: { direction: "out" }, value: outbound },
  ];
}
