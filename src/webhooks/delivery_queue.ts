/**
 * The call webhook's durable queue in Deno KV: one entry per record to
 * deliver, kept until it is delivered or given up, so a restart (or any
 * other instance on the same KV) resumes what was pending.
 *
 * Keys:
 * - `["webhook_queue", dueAtMs, recordId]`: a delivery, ordered by when it
 *   is next due. Taking one moves it to `now + lease` in one atomic step
 *   checked against its versionstamp, so two instances never both take it,
 *   and one whose taker died becomes due again when the lease runs out.
 * - `["webhook_failed", recordId]`: a delivery given up, with its last
 *   error, kept for a week for an operator to look at.
 *
 * @module
 */

const QUEUE = "webhook_queue";
const FAILED = "webhook_failed";

/** How long a given-up delivery is kept. */
const FAILED_RETENTION_MS = 7 * 86_400_000;

/** A record waiting to be delivered. */
export interface Delivery {
  /** The call record's id: the `Idempotency-Key`. */
  recordId: string;
  /** Attempts made so far (the one in progress included, once taken). */
  attempts: number;
  /** When it was queued, epoch ms: bounds its age. */
  queuedAt: number;
  /** What went wrong on the last attempt. */
  lastError?: string;
}

/** A delivery taken off the queue by {@linkcode DeliveryQueue.take}. */
export interface TakenDelivery extends Delivery {
  /** Its entry while taken; the queue's methods settle it. */
  readonly entry: Deno.KvEntry<Delivery>;
}

/** A delivery given up, as kept under `["webhook_failed", recordId]`. */
export interface FailedDelivery extends Delivery {
  /** When it was given up, epoch ms. */
  failedAt: number;
}

/**
 * Queued deliveries in Deno KV.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const kv = await Deno.openKv(":memory:");
 * const queue = new DeliveryQueue(kv);
 * const operation = kv.atomic();
 * queue.add(operation, "call-1", { now: 1000 });
 * await operation.commit();
 * const [due] = await queue.due(1000);
 * const taken = await queue.take(due, { now: 1000, leaseMs: 30_000 });
 * await queue.delivered(taken!);
 * assertEquals(await queue.count(), 0);
 * kv.close();
 * ```
 */
export class DeliveryQueue {
  #kv: Deno.Kv;

  /** Uses `kv`, which may be shared with other modules. */
  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /**
   * Adds a delivery of `recordId`, due at once, to `operation`: committed
   * with the record itself, so a record written is a record queued.
   */
  add(
    operation: Deno.AtomicOperation,
    recordId: string,
    options: { now: number },
  ): void {
    const delivery: Delivery = {
      recordId,
      attempts: 0,
      queuedAt: options.now,
    };
    operation.set([QUEUE, options.now, recordId], delivery);
  }

  /**
   * Queues a delivery of `recordId`, due at once, on its own: for a record
   * already written (an operator's redelivery). Forgets an earlier give-up.
   */
  async enqueue(recordId: string, options: { now: number }): Promise<void> {
    const operation = this.#kv.atomic().delete([FAILED, recordId]);
    this.add(operation, recordId, options);
    await operation.commit();
  }

  /** Up to `limit` deliveries due at `now`, the longest due first. */
  async due(now: number, limit = 20): Promise<Deno.KvEntry<Delivery>[]> {
    const entries: Deno.KvEntry<Delivery>[] = [];
    const list = this.#kv.list<Delivery>(
      { start: [QUEUE], end: [QUEUE, now + 1] },
      { limit },
    );
    for await (const entry of list) entries.push(entry);
    return entries;
  }

  /** When the next delivery is due, epoch ms; undefined when none waits. */
  async nextDueAt(): Promise<number | undefined> {
    for await (
      const entry of this.#kv.list({ prefix: [QUEUE] }, { limit: 1 })
    ) {
      return Number(entry.key[1]);
    }
    return undefined;
  }

  /**
   * Takes `entry` for an attempt: counts the attempt and holds the delivery
   * for `leaseMs`, after which it is due again should this instance die
   * mid-attempt. Undefined when another taker got it first.
   */
  async take(
    entry: Deno.KvEntry<Delivery>,
    options: { now: number; leaseMs: number },
  ): Promise<TakenDelivery | undefined> {
    const delivery = { ...entry.value, attempts: entry.value.attempts + 1 };
    return await this.#move(entry, delivery, options.now + options.leaseMs);
  }

  /** Removes a delivered one. */
  async delivered(taken: TakenDelivery): Promise<void> {
    await this.#kv.atomic().check(taken.entry).delete(taken.entry.key)
      .commit();
  }

  /** Puts a failed attempt back, due at `dueAt`, with its error. */
  async retryAt(
    taken: TakenDelivery,
    options: { dueAt: number; error: string },
  ): Promise<void> {
    await this.#move(taken.entry, {
      ...deliveryOf(taken),
      lastError: options.error,
    }, options.dueAt);
  }

  /**
   * Puts an attempt cut short by a shutdown back, due at once and not
   * counted, since the receiver never had its chance.
   */
  async release(taken: TakenDelivery, options: { now: number }): Promise<void> {
    await this.#move(taken.entry, {
      ...deliveryOf(taken),
      attempts: taken.attempts - 1,
    }, options.now);
  }

  /** Gives a delivery up: moves it to `["webhook_failed", recordId]`. */
  async giveUp(
    taken: TakenDelivery,
    options: { now: number; error: string },
  ): Promise<void> {
    const failed: FailedDelivery = {
      ...deliveryOf(taken),
      lastError: options.error,
      failedAt: options.now,
    };
    await this.#kv.atomic().check(taken.entry).delete(taken.entry.key)
      .set([FAILED, taken.recordId], failed, {
        expireIn: FAILED_RETENTION_MS,
      }).commit();
  }

  /** A given-up delivery of `recordId`, while kept. */
  async failed(recordId: string): Promise<FailedDelivery | undefined> {
    return (await this.#kv.get<FailedDelivery>([FAILED, recordId])).value ??
      undefined;
  }

  /** Deliveries waiting or in progress, counted up to `max`. */
  async count(max = 100_000): Promise<number> {
    let count = 0;
    for await (
      const _ of this.#kv.list({ prefix: [QUEUE] }, { limit: max })
    ) {
      count++;
    }
    return count;
  }

  async #move(
    entry: Deno.KvEntry<Delivery>,
    delivery: Delivery,
    dueAt: number,
  ): Promise<TakenDelivery | undefined> {
    const key = [QUEUE, dueAt, delivery.recordId];
    const result = await this.#kv.atomic().check(entry).delete(entry.key)
      .set(key, delivery).commit();
    if (!result.ok) return undefined;
    return {
      ...delivery,
      entry: { key, value: delivery, versionstamp: result.versionstamp },
    };
  }
}

function deliveryOf(taken: TakenDelivery): Delivery {
  const { entry: _, ...delivery } = taken;
  return delivery;
}
