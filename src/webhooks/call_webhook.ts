/**
 * Delivers finished calls' records to `CALL_WEBHOOK_URL`: at least once,
 * signed, retried with backoff from a {@linkcode DeliveryQueue} in Deno KV.
 *
 * A delivery is a `POST` of the record exactly as `GET /calls/:id` returns it
 * at the time of the attempt, with `Idempotency-Key: <record id>` and
 * `X-Exovoice-Signature: sha256=<hex HMAC-SHA256 of the body>`. Any 2xx
 * answer delivers it; anything else — another status, a redirect, a
 * timeout, a refused connection — is retried after `CALL_WEBHOOK_RETRY_MS`,
 * doubled each time up to an hour, until `CALL_WEBHOOK_MAX_ATTEMPTS` or
 * `CALL_WEBHOOK_MAX_AGE_S` is reached, when it is given up (logged, kept in
 * KV for a week, counted).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type Cancel, type Clock, systemClock } from "../call/clock.ts";
import type { Counter, MetricsRegistry } from "../metrics/registry.ts";
import type { DeliveryQueue, TakenDelivery } from "./delivery_queue.ts";
import { SIGNATURE_HEADER, signWebhookBody } from "./signature.ts";
import type { CallWebhookConfig } from "./webhook_config.ts";

/** How a delivery attempt ended, as counted in `/metrics`. */
export type DeliveryResult = "delivered" | "retried" | "failed";

/** Options of {@linkcode CallWebhook}. */
export interface CallWebhookOptions {
  /** Where to, signed how, retried how often. */
  config: CallWebhookConfig;
  /** The queue in KV. */
  queue: DeliveryQueue;
  /**
   * The record with id `recordId` as `GET /calls/:id` answers it; undefined
   * when there is none (expired or never written).
   */
  loadRecord(recordId: string): Promise<unknown>;
  /** Where the delivery metrics are declared; none when absent. */
  metrics?: MetricsRegistry;
  /** The `User-Agent` sent. */
  userAgent?: string;
  /** Longest wait between looks at the queue, for deliveries other instances queued; default 1000 ms. */
  pollMs?: number;
  /** Time (its wall clock dates the queue) and the poll timer; the system clock by default. */
  clock?: Clock;
  /** Called after each attempt, for tests and hooks. */
  onAttempt?: (attempt: AttemptReport) => void;
}

/** What one attempt did. */
export interface AttemptReport {
  /** The record delivered. */
  recordId: string;
  /** Its attempt number, from 1. */
  attempt: number;
  /** How it ended. */
  result: DeliveryResult;
  /** What went wrong, when something did. */
  error?: string;
}

/** Deliveries attempted at once. */
const CONCURRENCY = 10;
/** The longest wait between retries. */
const MAX_RETRY_DELAY_MS = 3_600_000;
/**
 * Time beyond the attempt's timeout before a taken delivery is due again:
 * covers loading, signing and settling it, so only an instance that died
 * mid-attempt lets a lease run out.
 */
const LEASE_MARGIN_MS = 5000;
/** Characters of a failed answer's body kept in the error. */
const ERROR_BODY_CHARS = 200;
/** Least time between two counts of the queue. */
const RECOUNT_MS = 5000;
/** Looks at the queue in one pass, at most, so a pass always ends. */
const MAX_ROUNDS_PER_PASS = 50;

const LOOPBACK_HOST = /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/;

const log = getLogger(["exovoice", "webhooks"]);

/**
 * The call webhook's deliverer: watches the queue from
 * {@linkcode CallWebhook.start} to {@linkcode CallWebhook.close}.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { DeliveryQueue } from "./delivery_queue.ts";
 * import { verifyWebhookSignature } from "./signature.ts";
 *
 * // The receiver (a CRM, say), on a loopback port.
 * const received = Promise.withResolvers<Request>();
 * await using crm = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   (request) => {
 *     received.resolve(request.clone());
 *     return new Response(null, { status: 204 });
 *   },
 * );
 * const kv = await Deno.openKv(":memory:");
 * const secret = "a-long-random-secret";
 * const attempted = Promise.withResolvers<AttemptReport>();
 * const webhook = new CallWebhook({
 *   config: {
 *     url: `http://127.0.0.1:${crm.addr.port}/exovoice`,
 *     secret,
 *     timeoutMs: 5000,
 *     maxAttempts: 3,
 *     retryMs: 1000,
 *     maxAgeS: 3600,
 *   },
 *   queue: new DeliveryQueue(kv),
 *   loadRecord: (id) => Promise.resolve({ id, durationMs: 41_000 }),
 *   onAttempt: (attempt) => attempted.resolve(attempt),
 * });
 * webhook.start();
 * // The delivery is queued in the same commit as the record it announces.
 * const operation = kv.atomic();
 * webhook.add(operation, "call-1");
 * await operation.commit();
 * webhook.committed();
 *
 * const request = await received.promise;
 * const body = await request.text();
 * assertEquals(JSON.parse(body), { id: "call-1", durationMs: 41_000 });
 * const signature = request.headers.get("x-exovoice-signature") ?? "";
 * assertEquals(await verifyWebhookSignature(body, { signature, secret }), true);
 * assertEquals((await attempted.promise).result, "delivered");
 * await webhook.close();
 * kv.close();
 * ```
 */
export class CallWebhook {
  #options: CallWebhookOptions;
  #clock: Clock;
  #results?: Counter;
  #pending = 0;
  /** When the queue was last counted; -Infinity before the first count. */
  #countedAt = -Infinity;
  #cancelPoll?: Cancel;
  #pass?: Promise<void>;
  #again = false;
  #closed = false;
  #closing = new AbortController();

  /** Declares its metrics; delivers nothing before {@linkcode CallWebhook.start}. */
  constructor(options: CallWebhookOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    const registry = options.metrics;
    if (registry) {
      this.#results = registry.counter({
        name: "exovoice_call_webhook_deliveries_total",
        help:
          "Call webhook attempts, by result: delivered, retried (failed, will be tried again) or failed (given up).",
        labelNames: ["result"],
      });
      for (const result of ["delivered", "retried", "failed"]) {
        this.#results.inc({ result }, 0);
      }
      registry.gauge({
        name: "exovoice_call_webhook_pending",
        help:
          "Call records queued for the call webhook, in progress or waiting for a retry (as of the last look at the queue).",
        collect: () => [{ labels: {}, value: this.#pending }],
      });
    }
  }

  /** Deliveries waiting or in progress, as of the last look at the queue. */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Adds a delivery of `recordId` to `operation`, the atomic write of the
   * record itself: the record and its delivery are committed together.
   * Call {@linkcode CallWebhook.committed} once it has committed.
   */
  add(operation: Deno.AtomicOperation, recordId: string): void {
    this.#options.queue.add(operation, recordId, {
      now: this.#clock.epochMs(),
    });
  }

  /**
   * Queues another delivery of a record already written, as an operator
   * asks after a receiver's outage, and starts it at once.
   */
  async redeliver(recordId: string): Promise<void> {
    await this.#options.queue.enqueue(recordId, { now: this.#clock.epochMs() });
    this.#pending++;
    this.wake();
  }

  /** Starts delivering: what is queued already (from before a restart) first. */
  start(): void {
    const url = new URL(this.#options.config.url);
    // Origin and path only: credentials or tokens in the URL stay out of logs.
    log.info("Call records are delivered to {url}", {
      url: `${url.origin}${url.pathname}`,
    });
    if (url.protocol === "http:" && !LOOPBACK_HOST.test(url.hostname)) {
      log.warn(
        "CALL_WEBHOOK_URL is plain http to {host}: call records (phone numbers, transcripts) cross the network unencrypted",
        { host: url.hostname },
      );
    }
    this.wake();
  }

  /**
   * A record saved with {@linkcode CallWebhook.add}'s mutation has
   * committed: counts it pending and delivers it now.
   */
  committed(): void {
    this.#pending++;
    this.wake();
  }

  /** Looks at the queue now rather than at the next poll. */
  wake(): void {
    if (this.#closed) return;
    this.#cancelPoll?.();
    this.#cancelPoll = undefined;
    if (this.#pass) {
      this.#again = true;
      return;
    }
    this.#pass = this.#run().finally(() => {
      this.#pass = undefined;
      if (this.#again) {
        this.#again = false;
        this.wake();
      }
    });
  }

  /**
   * Stops: attempts in progress are cut and put back in the queue, not
   * counted, for the next start (or another instance) to make.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#cancelPoll?.();
    this.#closing.abort();
    await this.#pass;
  }

  async #run(): Promise<void> {
    const { queue } = this.#options;
    try {
      await this.#recount();
      for (let round = 0; round < MAX_ROUNDS_PER_PASS; round++) {
        if (this.#closed) return;
        const due = await queue.due(this.#clock.epochMs(), CONCURRENCY);
        if (due.length === 0) break;
        const leaseMs = this.#options.config.timeoutMs + LEASE_MARGIN_MS;
        const taken = await Promise.all(
          due.map((entry) =>
            queue.take(entry, { now: this.#clock.epochMs(), leaseMs })
          ),
        );
        await Promise.all(
          taken.map((delivery) => delivery && this.#attempt(delivery)),
        );
      }
      await this.#recount();
    } catch (error) {
      if (this.#closed) return;
      log.error("Call webhook queue failed: {error}", { error });
    }
    if (!this.#closed) await this.#schedule();
  }

  /**
   * Counts the queue for the pending gauge, at most every few seconds: a
   * count reads every entry, and a receiver that is down lets thousands
   * pile up. In between, this instance's own adds and settlements move it.
   */
  async #recount(): Promise<void> {
    const now = this.#clock.epochMs();
    if (now - this.#countedAt < RECOUNT_MS) return;
    this.#pending = await this.#options.queue.count();
    this.#countedAt = now;
  }

  async #schedule(): Promise<void> {
    const pollMs = this.#options.pollMs ?? 1000;
    let delayMs = pollMs;
    try {
      const next = await this.#options.queue.nextDueAt();
      if (next !== undefined) {
        delayMs = Math.max(0, Math.min(pollMs, next - this.#clock.epochMs()));
      }
    } catch {
      // Logged by the pass that failed; the poll tries again.
    }
    if (this.#closed) return;
    this.#cancelPoll = this.#clock.schedule(() => this.wake(), delayMs);
  }

  async #attempt(taken: TakenDelivery): Promise<void> {
    const { queue } = this.#options;
    let error: string | undefined;
    try {
      error = await this.#post(taken);
    } catch (cause) {
      if (this.#closed) {
        await queue.release(taken, { now: this.#clock.epochMs() });
        return;
      }
      error = describeFailure(cause, this.#options.config.timeoutMs);
    }
    const { recordId, attempts } = taken;
    if (error === undefined) {
      await queue.delivered(taken);
      log.info("Call record {recordId} delivered on attempt {attempts}", {
        recordId,
        attempts,
      });
      return this.#count({ recordId, attempt: attempts, result: "delivered" });
    }
    const now = this.#clock.epochMs();
    const { maxAttempts, maxAgeS } = this.#options.config;
    const delayMs = retryDelayMs(attempts, this.#options.config.retryMs);
    if (
      attempts >= maxAttempts || now + delayMs - taken.queuedAt > maxAgeS * 1000
    ) {
      await queue.giveUp(taken, { now, error });
      log.error(
        "Call record {recordId} not delivered, given up after {attempts} attempts: {error}",
        { recordId, attempts, error },
      );
      return this.#count({
        recordId,
        attempt: attempts,
        result: "failed",
        error,
      });
    }
    await queue.retryAt(taken, { dueAt: now + delayMs, error });
    log.warn(
      "Call record {recordId} not delivered (attempt {attempts}), retrying in {delayMs} ms: {error}",
      { recordId, attempts, delayMs, error },
    );
    this.#count({ recordId, attempt: attempts, result: "retried", error });
  }

  /** POSTs the record; resolves with what went wrong, undefined once delivered. */
  async #post(taken: TakenDelivery): Promise<string | undefined> {
    const { config, userAgent } = this.#options;
    const record = await this.#options.loadRecord(taken.recordId);
    if (record === undefined) {
      return `call record "${taken.recordId}" not found: expired or never written`;
    }
    const body = JSON.stringify(record);
    const response = await fetch(config.url, {
      method: "POST",
      headers: {
        "content-type": "application/json; charset=utf-8",
        "idempotency-key": taken.recordId,
        [SIGNATURE_HEADER]: await signWebhookBody(body, config.secret),
        "x-exovoice-attempt": String(taken.attempts),
        ...(userAgent ? { "user-agent": userAgent } : {}),
      },
      body,
      redirect: "manual",
      signal: AbortSignal.any([
        AbortSignal.timeout(config.timeoutMs),
        this.#closing.signal,
      ]),
    });
    const text = await startOf(response);
    if (response.ok) return undefined;
    if (response.status >= 300 && response.status < 400) {
      const location = response.headers.get("location") ?? "";
      return `HTTP ${response.status}: redirect to "${location}" not followed (set CALL_WEBHOOK_URL to the final URL)`;
    }
    return `HTTP ${response.status}${text ? `: ${text}` : ""}`;
  }

  #count(report: AttemptReport): void {
    this.#results?.inc({ result: report.result });
    if (report.result !== "retried") {
      this.#pending = Math.max(0, this.#pending - 1);
    }
    this.#options.onAttempt?.(report);
  }
}

/** The wait before retrying after failed attempt number `attempt`: doubling, capped, ±20 % so retries spread. */
function retryDelayMs(attempt: number, firstMs: number): number {
  const base = Math.min(MAX_RETRY_DELAY_MS, firstMs * 2 ** (attempt - 1));
  return Math.round(base * (0.8 + 0.4 * Math.random()));
}

/** The first characters of an answer's body, on one line; the rest is dropped unread. */
async function startOf(response: Response): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const { value } = await reader.read().catch(() => ({ value: undefined }));
  await reader.cancel().catch(() => {});
  if (!value) return "";
  return new TextDecoder().decode(value.subarray(0, ERROR_BODY_CHARS * 4))
    .replace(/\s+/g, " ").trim().slice(0, ERROR_BODY_CHARS);
}

function describeFailure(error: unknown, timeoutMs: number): string {
  if (error instanceof DOMException && error.name === "TimeoutError") {
    return `timeout after ${timeoutMs} ms`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return `request failed: ${message}`;
}
