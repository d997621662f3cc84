/**
 * Call records in Deno KV: written `in_progress` as a call starts, saved
 * again with its counters on every checkpoint, completed when it ends,
 * listed newest first, joined with what Exotel's status callbacks said.
 * Records of calls starting or ending close together are written in shared
 * commits a moment later: a commit per call was most of what a call cost
 * to end, and at hundreds of ends a second it stalled calls still live.
 *
 * Durability: a record reaches KV up to `batchMs` after the call starts or
 * ends, and its counters up to one checkpoint interval late. A process
 * killed in that window loses that much; every other call's record
 * survives, and {@linkcode CallStore.recoverCrashed} closes the records a
 * dead run of the same instance left in progress.
 *
 * Keys:
 * - `["calls", id]`: the record, without its transcript and turns;
 * - `["call_detail", id, n]`: the transcript and turns as JSON bytes, in
 *   chunks under Deno KV's 64 KiB value limit, however long the call;
 * - `["calls_by_time", endedAtMs, id]`, `["calls_by_number", last10digits,
 *   endedAtMs, id]`, `["calls_by_sid", callSid, id]`: indexes (an in-progress
 *   record is indexed by when it connected, a finished one by when it
 *   ended);
 * - `["calls_open", instanceId, id]`: `{ runId }` of each record still in
 *   progress, so that the instance's next run can close them after a crash;
 * - `["call_status", callSid]`: Exotel's status, merged, kept apart from the
 *   record so that a callback may arrive before, during or after the call
 *   and is joined when the record is read.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type Cancel, type Clock, systemClock } from "../call/clock.ts";
import type { Session } from "../call/registry.ts";
import type { CallRecord } from "./call_record.ts";
import { buildCallRecord, crashedRecord, numberKey } from "./call_record.ts";
import { type ExotelCallStatus, mergeCallStatus } from "./call_status.ts";

/** A call as read back: its record and, when Exotel reported it, its status. */
export interface StoredCall extends CallRecord {
  /** What Exotel's status callbacks said, merged. */
  exotel?: ExotelCallStatus;
}

/** A call in a list: everything but the transcript and turns. */
export type CallSummary = Omit<StoredCall, "transcript" | "turns">;

/** Which calls {@linkcode CallStore.list} returns. */
export interface CallQuery {
  /** Calls per page, 1 to {@linkcode MAX_PAGE_SIZE}; default 50. */
  limit?: number;
  /** The `cursor` of the previous page. */
  cursor?: string;
  /** Only calls that ended at or after this. */
  from?: Date;
  /** Only calls that ended before this. */
  to?: Date;
  /** Only calls from or to this number (matched on its last ten digits). */
  number?: string;
}

/** One page of calls, newest first. */
export interface CallPage {
  /** The calls. */
  calls: CallSummary[];
  /** Pass this as {@linkcode CallQuery.cursor} for the next page; absent on the last. */
  cursor?: string;
}

/** Options of {@linkcode CallStore}. */
export interface CallStoreOptions {
  /**
   * Records and statuses are deleted this long after they are written (the
   * record is hidden once this long past its end, since KV deletes expired
   * keys only eventually); kept forever when absent or 0.
   */
  retentionMs?: number;
  /** Tries per record before giving up; default 5. */
  attempts?: number;
  /** Wait before the first retry, doubled for each next; default 200 ms. */
  retryDelayMs?: number;
  /** Called when a record could not be written after every try. */
  onSaveFailed?: (record: CallRecord, error: unknown) => void;
  /** Close the KV handle in {@linkcode CallStore.close}; default false. */
  ownsKv?: boolean;
  /** How long a record waits to be written with others; default 500 ms. */
  batchMs?: number;
  /** The instance whose calls {@linkcode CallStore.open} records; default `local`. */
  instanceId?: string;
  /** This process's run of the instance; a random id by default. */
  runId?: string;
  /**
   * Statuses kept at once for calls this store has no record of (calls
   * that never reached the bot, or forged callbacks); default 1000.
   */
  maxUnknownStatuses?: number;
  /** How long such a status is kept unless its call's record appears; default 1 h. */
  unknownStatusTtlMs?: number;
  /**
   * Time (its wall clock dates in-progress records and decides retention)
   * and the batch and retry timers; the system clock by default.
   */
  clock?: Clock;
}

/** A status callback for a call with no record, while too many such are kept. */
export class UnknownCallLimitError extends Error {
  /** Creates the error for `callSid`. */
  constructor(callSid: string, limit: number) {
    super(
      `Status of unknown call "${
        callSid.slice(0, 64)
      }" not kept: ${limit} statuses of calls without a record are kept already`,
    );
    this.name = "UnknownCallLimitError";
  }
}

/** Options of {@linkcode CallStore.save}. */
export interface SaveOptions {
  /**
   * Adds mutations to the atomic write that commits the record, so they are
   * committed with it or not at all (the call webhook queues its delivery
   * so). Called again for each retry.
   */
  onCommit?: (operation: Deno.AtomicOperation, record: CallRecord) => void;
}

/** A cursor that does not belong to this store or query. */
export class InvalidCursorError extends Error {
  /** Creates the error for `cursor`. */
  constructor(cursor: string) {
    super(
      `Invalid cursor "${
        cursor.slice(0, 40)
      }": use one a previous page returned`,
    );
    this.name = "InvalidCursorError";
  }
}

/** Most calls one page may hold. */
export const MAX_PAGE_SIZE = 500;

/** Bytes per detail chunk: under the 64 KiB value limit. */
const CHUNK_BYTES = 60_000;
/** Chunks per atomic write: under the 800 KiB mutation limit. */
const CHUNKS_PER_COMMIT = 10;
/**
 * Records per atomic write: a record is a few KiB at most (its parameters
 * and ids are bounded) and five mutations, so 25 stay far under KV's limits
 * on mutations, key bytes and total bytes per commit.
 */
const RECORDS_PER_COMMIT = 25;
/** `getMany` reads at most this many keys. */
const GET_MANY_MAX = 10;
/** Attempts at a status merge racing another. */
const MERGE_ATTEMPTS = 10;

/** A record on its way to KV: a finished call's (`entry`) or a live call's, with its index signature. */
interface StoredEntry {
  record: StoredRecord;
  entry?: FinalRecord;
  indexedAs?: string;
}

type StoredRecord = Omit<CallRecord, "transcript" | "turns"> & {
  detailChunks: number;
};

const log = getLogger(["exovoice", "records"]);

/**
 * Opens Deno KV: the file at `path` (creating its folder), `:memory:`, or
 * with `path` undefined the runtime's default (Deno Deploy's managed KV).
 * Retries a few times, waiting on `options.clock`, while SQLite answers
 * "database is locked" to instances racing to create one new file.
 */
export async function openKv(
  path?: string,
  options: { clock?: Clock } = {},
): Promise<Deno.Kv> {
  const clock = options.clock ?? systemClock;
  if (path !== undefined && path !== ":memory:") {
    const folder = path.replace(/[^/\\]*$/, "");
    if (folder !== "") await Deno.mkdir(folder, { recursive: true });
  }
  // Instances that share a new file may race to create it; SQLite then
  // answers "database is locked" to the loser for a moment.
  for (let attempt = 1;; attempt++) {
    try {
      return await Deno.openKv(path);
    } catch (error) {
      if (attempt >= OPEN_ATTEMPTS) throw error;
      log.warn("Opening KV failed, retrying: {error}", { error });
      await new Promise<void>((resolve) =>
        clock.schedule(resolve, 100 * attempt)
      );
    }
  }
}

const OPEN_ATTEMPTS = 5;

/**
 * Call records in Deno KV.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { parseStatusCallback } from "./call_status.ts";
 *
 * const store = new CallStore(await openKv(":memory:"), { ownsKv: true });
 * // Exotel's status callbacks may come before the call's record, in any order.
 * await store.mergeStatus("CA1", parseStatusCallback({
 *   CallSid: "CA1", Status: "completed", DateUpdated: "2025-01-01 10:01:00",
 * }));
 * await store.mergeStatus("CA1", parseStatusCallback({
 *   CallSid: "CA1", Status: "in-progress", DateUpdated: "2025-01-01 10:00:05",
 * }));
 * assertEquals((await store.getStatus("CA1"))?.status, "completed");
 * // Records are saved as calls end (`save`); none has yet.
 * assertEquals((await store.list({ limit: 20 })).calls, []);
 * await store.close(); // waits for pending writes, then closes KV
 * ```
 */
export class CallStore {
  #kv: Deno.Kv;
  #options: CallStoreOptions;
  #pending = new Set<Promise<boolean>>();
  #closed = false;
  #closing = false;
  /** Records built and waiting for the next batch. */
  #batch: CallRecord[] = [];
  /** Live sessions whose in-progress record the next batch writes, by id. */
  #snapshots = new Map<string, Session>();
  /** Number-index keys written for each in-progress record of this run. */
  #openNumbers = new Map<string, Set<string>>();
  /**
   * What the index entries and open marker of each in-progress record of
   * this run were last written from (see `indexSignature`): while it holds,
   * a checkpoint rewrites the record alone, not its five other keys, which
   * at thousands of live calls was most of what a checkpoint cost.
   */
  #indexed = new Map<string, string>();
  /** The last batch: batches are written in order, so a late in-progress write never undoes a completion. */
  #lastWrite: Promise<unknown> = Promise.resolve();
  /** Statuses written for calls without a record, by CallSid: when each expires. */
  #unknownStatuses = new Map<string, number>();
  /** Settles with the next batch's outcome; exists while anything waits. */
  #batchDone?: PromiseWithResolvers<boolean>;
  #cancelBatch?: Cancel;
  #clock: Clock;
  /** {@linkcode SaveOptions.onCommit} of records waiting or being written. */
  #onCommit = new Map<CallRecord, SaveOptions["onCommit"]>();

  /** Uses `kv`, which may be shared with other modules. */
  constructor(kv: Deno.Kv, options: CallStoreOptions = {}) {
    this.#kv = kv;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  /** Writes still in progress, retries included. */
  get pendingSaves(): number {
    return this.#pending.size;
  }

  /**
   * Writes `record`, retrying with backoff when KV fails. Never rejects:
   * resolves true once written, false when every try failed (logged, and
   * reported to `onSaveFailed`).
   *
   * `record` may be a promise (of a record still waiting for its recording
   * to close, say): the write counts as pending from this call on, so a
   * {@linkcode CallStore.close} during shutdown still waits for it.
   *
   * The write waits up to `batchMs` to share its commits with other
   * records; {@linkcode CallStore.close} writes what waits at once.
   */
  save(
    record: CallRecord | Promise<CallRecord>,
    options: SaveOptions = {},
  ): Promise<boolean> {
    const task = Promise.resolve(record).then(
      (ready) => {
        if (options.onCommit) this.#onCommit.set(ready, options.onCommit);
        return this.#enqueue(ready).finally(() => this.#onCommit.delete(ready));
      },
      (error) => {
        log.error("Call record lost before it was built: {error}", { error });
        return false;
      },
    );
    this.#pending.add(task);
    const done = () => void this.#pending.delete(task);
    task.then(done, done);
    return task;
  }

  /**
   * Writes `session`'s record as `in_progress` with the next batch, read as
   * the batch is written (so a `start` that arrives meanwhile is in it).
   * Resolves like {@linkcode CallStore.save}.
   */
  open(session: Session): Promise<boolean> {
    this.#snapshots.set(session.id, session);
    return this.#track(this.#scheduled());
  }

  /**
   * Saves the counters of every live session in `sessions` into its
   * in-progress record, with the next batch: what a crash would leave.
   */
  checkpoint(sessions: Iterable<Session>): Promise<boolean> {
    for (const session of sessions) {
      if (session.state !== "stopped") {
        this.#snapshots.set(session.id, session);
      }
    }
    if (this.#snapshots.size === 0) return Promise.resolve(true);
    return this.#track(this.#scheduled());
  }

  /**
   * Closes the records this instance's earlier runs left in progress, as
   * crashed, with the counters of their last checkpoint. Call it once the
   * earlier run is known to be dead (see `LiveSessions.previousRunEnded`).
   * Resolves with how many were closed; never rejects.
   */
  recoverCrashed(): Promise<number> {
    return this.#track(this.#recover());
  }

  async #recover(): Promise<number> {
    const instanceId = this.#instanceId;
    try {
      const orphans: string[] = [];
      const markers: Deno.KvKey[] = [];
      for await (
        const entry of this.#kv.list<{ runId: string }>({
          prefix: ["calls_open", instanceId],
        })
      ) {
        if (entry.value.runId === this.#runId) continue;
        orphans.push(String(entry.key[2]));
        markers.push(entry.key);
      }
      if (orphans.length === 0) return 0;
      const found = await this.#records(orphans);
      const closed = found.filter((record) => record.state === "in_progress")
        .map(({ detailChunks: _, ...record }) => ({
          record: { ...crashedRecord(record), transcript: [], turns: [] },
          openNumbers: numberKeys(record),
        }));
      const written = await this.#serial(() => this.#saveWithRetry(closed, []));
      // Markers whose record expired or was completed meanwhile.
      for (let start = 0; start < markers.length; start += 100) {
        const operation = this.#kv.atomic();
        markers.slice(start, start + 100).forEach((key) =>
          operation.delete(key)
        );
        await operation.commit();
      }
      if (written && closed.length > 0) {
        log.warn(
          "Closed {count} call records that a crash of instance {instanceId} left in progress",
          { count: closed.length, instanceId },
        );
      }
      return written ? closed.length : 0;
    } catch (error) {
      log.error("Records left in progress by a crash not closed: {error}", {
        instanceId,
        error,
      });
      return 0;
    }
  }

  get #instanceId(): string {
    return this.#options.instanceId ?? "local";
  }

  get #runId(): string {
    this.#options.runId ??= crypto.randomUUID();
    return this.#options.runId;
  }

  #track<T>(task: Promise<T>): Promise<T> {
    const tracked = task.then(() => true, () => false);
    this.#pending.add(tracked);
    const done = () => void this.#pending.delete(tracked);
    tracked.then(done);
    return task;
  }

  #enqueue(record: CallRecord): Promise<boolean> {
    this.#batch.push(record);
    return this.#scheduled();
  }

  /** The next batch's outcome, scheduling that batch. */
  #scheduled(): Promise<boolean> {
    this.#batchDone ??= Promise.withResolvers();
    const { promise } = this.#batchDone;
    if (this.#closing) this.#writeBatch();
    else {
      this.#cancelBatch ??= this.#clock.schedule(
        () => this.#writeBatch(),
        this.#options.batchMs ?? 500,
      );
    }
    return promise;
  }

  /** Writes the waiting records now. */
  #writeBatch(): void {
    this.#cancelBatch?.();
    this.#cancelBatch = undefined;
    const records = this.#batch.map((record) => ({ record }));
    const sessions = [...this.#snapshots.values()];
    const done = this.#batchDone;
    this.#batch = [];
    this.#snapshots.clear();
    this.#batchDone = undefined;
    if (done) {
      this.#serial(() => this.#saveWithRetry(records, sessions)).then(
        done.resolve,
      );
    }
  }

  /** Runs `write` once every earlier batch has settled. */
  #serial<T>(write: () => Promise<T>): Promise<T> {
    const task = this.#lastWrite.then(write, write);
    this.#lastWrite = task.catch(() => {});
    return task;
  }

  async #saveWithRetry(
    entries: FinalRecord[],
    sessions: Session[],
  ): Promise<boolean> {
    const attempts = Math.max(1, this.#options.attempts ?? 5);
    let delayMs = this.#options.retryDelayMs ?? 200;
    const records = entries.map((entry) => entry.record);
    const ids = [
      ...records.map((record) => record.id),
      ...sessions.map((session) => session.id),
    ];
    for (let attempt = 1;; attempt++) {
      try {
        await this.#write(entries, sessions);
        if (attempt > 1) {
          log.info("Call records {ids} written on try {attempt}", {
            ids,
            attempt,
          });
        }
        return true;
      } catch (error) {
        if (attempt >= attempts) {
          for (const record of records) {
            log.error(
              "Call record {id} lost after {attempt} tries: {error}",
              { id: record.id, callId: record.callId, attempt, error },
            );
            try {
              this.#options.onSaveFailed?.(record, error);
            } catch (hookError) {
              log.error("onSaveFailed failed: {error}", { error: hookError });
            }
          }
          if (sessions.length > 0) {
            log.error(
              "In-progress records of {count} calls not saved after {attempt} tries: {error}",
              { count: sessions.length, attempt, error },
            );
          }
          return false;
        }
        log.warn(
          "Call records {ids} not written (try {attempt}), retrying in {delayMs} ms: {error}",
          { ids, attempt, delayMs, error },
        );
        await new Promise<void>((resolve) =>
          this.#clock.schedule(resolve, delayMs)
        );
        delayMs *= 2;
      }
    }
  }

  async #write(entries: FinalRecord[], sessions: Session[]): Promise<void> {
    const finished = new Set(entries.map((entry) => entry.record.id));
    const { stored, opened } = this.#inProgress(
      sessions.filter((session) => !finished.has(session.id)),
    );
    for (const entry of entries) stored.push(await this.#writeDetail(entry));
    await this.#commitRecords(stored);
    for (const [id, numbers] of opened) {
      const known = this.#openNumbers.get(id);
      if (known) numbers.forEach((key) => known.add(key));
      else this.#openNumbers.set(id, numbers);
    }
    for (const { record } of entries) {
      this.#openNumbers.delete(record.id);
      this.#indexed.delete(record.id);
    }
  }

  /** The in-progress records of live calls whose end is not in this batch, and their numbers' keys. */
  #inProgress(
    sessions: Session[],
  ): { stored: StoredEntry[]; opened: Map<string, Set<string>> } {
    const now = this.#clock.epochMs();
    const stored: StoredEntry[] = [];
    const opened = new Map<string, Set<string>>();
    for (const session of sessions) {
      const { transcript: _, turns: __, ...summary } = buildCallRecord(
        session,
        "in_progress",
        { endedAt: now, instanceId: this.#instanceId, state: "in_progress" },
      );
      const record = { ...summary, detailChunks: 0 };
      opened.set(record.id, numberKeys(record));
      stored.push({ record, indexedAs: indexSignature(record) });
    }
    return { stored, opened };
  }

  /** Writes a finished record's transcript and turns, chunked; returns the record to store beside them. */
  async #writeDetail(entry: FinalRecord): Promise<StoredEntry> {
    const expireIn = this.#expireIn();
    const { transcript, turns, ...summary } = entry.record;
    const chunks = transcript.length === 0 && turns.length === 0 ? [] : chunk(
      new TextEncoder().encode(JSON.stringify({ transcript, turns })),
    );
    // Detail first: a record that can be read always has its detail.
    for (let start = 0; start < chunks.length; start += CHUNKS_PER_COMMIT) {
      const operation = this.#kv.atomic();
      chunks.slice(start, start + CHUNKS_PER_COMMIT).forEach((bytes, i) =>
        operation.set(["call_detail", summary.id, start + i], bytes, {
          expireIn,
        })
      );
      await operation.commit();
    }
    return { record: { ...summary, detailChunks: chunks.length }, entry };
  }

  /** Commits the records with their indexes and open markers, a few per atomic operation. */
  async #commitRecords(stored: StoredEntry[]): Promise<void> {
    const expireIn = this.#expireIn();
    for (let start = 0; start < stored.length; start += RECORDS_PER_COMMIT) {
      const operation = this.#kv.atomic();
      const slice = stored.slice(start, start + RECORDS_PER_COMMIT);
      for (const { record, entry, indexedAs } of slice) {
        if (
          indexedAs !== undefined && this.#indexed.get(record.id) === indexedAs
        ) {
          // Indexes and open marker stand as written: only counters changed.
          operation.set(["calls", record.id], record, { expireIn });
          continue;
        }
        addRecord(operation, record, expireIn);
        if (record.state === "in_progress") {
          operation.set(
            ["calls_open", this.#instanceId, record.id],
            { runId: this.#runId },
            { expireIn },
          );
        } else {
          this.#removeOpen(operation, record, entry?.openNumbers);
        }
        if (entry) this.#onCommit.get(entry.record)?.(operation, entry.record);
      }
      await operation.commit();
      for (const { record, indexedAs } of slice) {
        if (indexedAs !== undefined) this.#indexed.set(record.id, indexedAs);
      }
    }
  }

  /** Deletes what the in-progress record of `record`'s call wrote that its end does not overwrite. */
  #removeOpen(
    operation: Deno.AtomicOperation,
    record: StoredRecord,
    openNumbers: Set<string> | undefined,
  ): void {
    const openedAtMs = Date.parse(record.startedAt);
    operation.delete([
      "calls_open",
      record.instanceId ?? this.#instanceId,
      record.id,
    ]);
    if (openedAtMs === indexTime(record)) return;
    operation.delete(["calls_by_time", openedAtMs, record.id]);
    const numbers = openNumbers ?? this.#openNumbers.get(record.id) ??
      numberKeys(record);
    for (const key of numbers) {
      operation.delete(["calls_by_number", key, openedAtMs, record.id]);
    }
  }

  /**
   * The call with session id `id`, or else the newest call whose CallSid is
   * `id`, with its transcript, turns and Exotel status.
   */
  async get(id: string): Promise<StoredCall | undefined> {
    let stored = (await this.#kv.get<StoredRecord>(["calls", id])).value;
    if (stored === null) {
      const ids: string[] = [];
      for await (
        const entry of this.#kv.list({ prefix: ["calls_by_sid", id] })
      ) {
        ids.push(String(entry.key[2]));
      }
      const candidates = await this.#records(ids);
      stored = candidates.sort((a, b) =>
        b.endedAt.localeCompare(a.endedAt)
      )[0] ??
        null;
    }
    if (stored === null || this.#expired(stored)) return undefined;
    const { detailChunks, ...summary } = stored;
    const detail = await this.#detail(stored.id, detailChunks);
    const status = stored.callId === ""
      ? null
      : (await this.#kv.get<ExotelCallStatus>(["call_status", stored.callId]))
        .value;
    return {
      ...summary,
      ...detail,
      ...(status === null ? {} : { exotel: status }),
    };
  }

  /**
   * Calls newest first (by when they ended), filtered by time and number.
   *
   * @throws {InvalidCursorError} for a cursor no page gave.
   */
  async list(query: CallQuery = {}): Promise<CallPage> {
    const limit = Math.min(MAX_PAGE_SIZE, Math.max(1, query.limit ?? 50));
    const fromMs = query.from?.getTime() ?? 0;
    const toMs = query.to?.getTime() ?? Number.MAX_SAFE_INTEGER;
    const number = query.number === undefined ? "" : numberKey(query.number);
    const base: Deno.KvKey = query.number === undefined
      ? ["calls_by_time"]
      : ["calls_by_number", number];
    const entries = this.#kv.list(
      { start: [...base, fromMs], end: [...base, toMs] },
      { reverse: true, limit: limit + 1, cursor: query.cursor },
    );
    const ids: string[] = [];
    let cursor: string | undefined;
    let lastCursor: string | undefined;
    try {
      // One entry past the page says whether another page exists.
      for await (const entry of entries) {
        if (ids.length === limit) {
          cursor = lastCursor;
          break;
        }
        ids.push(String(entry.key[entry.key.length - 1]));
        lastCursor = entries.cursor;
      }
    } catch (error) {
      if (query.cursor !== undefined && error instanceof TypeError) {
        throw new InvalidCursorError(query.cursor);
      }
      throw error;
    }
    const records = (await this.#records(ids)).filter((record) =>
      !this.#expired(record)
    );
    const statuses = await this.#statuses(
      records.map((record) => record.callId),
    );
    const calls = records.map(({ detailChunks: _, ...summary }) => {
      const status = statuses.get(summary.callId);
      return status === undefined ? summary : { ...summary, exotel: status };
    });
    return cursor === undefined ? { calls } : { calls, cursor };
  }

  /**
   * Merges a status callback for `callSid` into what earlier ones said, and
   * returns the result. Safe to call again with the same callback, and
   * before the call's record exists.
   *
   * A status of a call with no record (not even in progress) is kept only
   * `unknownStatusTtlMs` (it is kept for the retention period once a
   * callback arrives for the call's record), and at most
   * `maxUnknownStatuses` such are kept by this store at once.
   *
   * @throws {UnknownCallLimitError} for an unknown call while the limit is reached.
   */
  async mergeStatus(
    callSid: string,
    update: ExotelCallStatus,
  ): Promise<ExotelCallStatus> {
    const key = ["call_status", callSid];
    const known = await this.#hasRecord(callSid);
    const now = this.#clock.epochMs();
    const unknownTtlMs = this.#options.unknownStatusTtlMs ?? 3_600_000;
    if (!known && !this.#unknownStatuses.has(callSid)) {
      this.#makeUnknownRoom(callSid, now);
    }
    for (let attempt = 0; attempt < MERGE_ATTEMPTS; attempt++) {
      const current = await this.#kv.get<ExotelCallStatus>(key);
      const merged = mergeCallStatus(current.value ?? undefined, {
        ...update,
        callSid,
      });
      const result = await this.#kv.atomic().check(current).set(key, merged, {
        expireIn: known ? this.#expireIn() : unknownTtlMs,
      }).commit();
      if (result.ok) {
        if (known) this.#unknownStatuses.delete(callSid);
        else this.#unknownStatuses.set(callSid, now + unknownTtlMs);
        return merged;
      }
    }
    throw new Error(
      `Status of call "${callSid}" not merged: ${MERGE_ATTEMPTS} concurrent updates won`,
    );
  }

  async #hasRecord(callSid: string): Promise<boolean> {
    for await (
      const _ of this.#kv.list({ prefix: ["calls_by_sid", callSid] }, {
        limit: 1,
      })
    ) {
      return true;
    }
    return false;
  }

  #makeUnknownRoom(callSid: string, now: number): void {
    const limit = this.#options.maxUnknownStatuses ?? 1000;
    if (this.#unknownStatuses.size < limit) return;
    for (const [sid, expiresAt] of this.#unknownStatuses) {
      if (expiresAt <= now) this.#unknownStatuses.delete(sid);
    }
    if (this.#unknownStatuses.size >= limit) {
      throw new UnknownCallLimitError(callSid, limit);
    }
  }

  /** What Exotel's status callbacks said about `callSid`, merged. */
  async getStatus(callSid: string): Promise<ExotelCallStatus | undefined> {
    return (await this.#kv.get<ExotelCallStatus>(["call_status", callSid]))
      .value ?? undefined;
  }

  /**
   * Writes the records waiting for their batch at once, waits for every
   * pending write (retries included), then closes KV if it owns it.
   */
  async close(): Promise<void> {
    // From here on a record is written as soon as it is built.
    this.#closing = true;
    this.#writeBatch();
    while (this.#pending.size > 0) {
      await Promise.allSettled([...this.#pending]);
    }
    if (this.#options.ownsKv && !this.#closed) {
      this.#closed = true;
      this.#kv.close();
    }
  }

  #expireIn(): number | undefined {
    const retentionMs = this.#options.retentionMs ?? 0;
    return retentionMs > 0 ? retentionMs : undefined;
  }

  #expired(record: StoredRecord): boolean {
    const retentionMs = this.#expireIn();
    return retentionMs !== undefined &&
      Date.parse(record.endedAt) < this.#clock.epochMs() - retentionMs;
  }

  async #records(ids: string[]): Promise<StoredRecord[]> {
    const records: StoredRecord[] = [];
    for (let start = 0; start < ids.length; start += GET_MANY_MAX) {
      const entries = await this.#kv.getMany<StoredRecord[]>(
        ids.slice(start, start + GET_MANY_MAX).map((id) => ["calls", id]),
      );
      for (const entry of entries) {
        // An index may outlive its record by a moment as both expire.
        if (entry.value !== null) records.push(entry.value);
      }
    }
    return records;
  }

  async #statuses(callIds: string[]): Promise<Map<string, ExotelCallStatus>> {
    const unique = [...new Set(callIds.filter((id) => id !== ""))];
    const statuses = new Map<string, ExotelCallStatus>();
    for (let start = 0; start < unique.length; start += GET_MANY_MAX) {
      const entries = await this.#kv.getMany<ExotelCallStatus[]>(
        unique.slice(start, start + GET_MANY_MAX).map((id) => [
          "call_status",
          id,
        ]),
      );
      for (const entry of entries) {
        if (entry.value !== null) {
          statuses.set(entry.value.callSid, entry.value);
        }
      }
    }
    return statuses;
  }

  async #detail(
    id: string,
    chunks: number,
  ): Promise<Pick<CallRecord, "transcript" | "turns">> {
    if (chunks === 0) return { transcript: [], turns: [] };
    const parts: Uint8Array[] = [];
    for (let start = 0; start < chunks; start += GET_MANY_MAX) {
      const keys = [];
      for (let i = start; i < Math.min(chunks, start + GET_MANY_MAX); i++) {
        keys.push(["call_detail", id, i]);
      }
      const entries = await this.#kv.getMany<Uint8Array[]>(keys);
      for (const entry of entries) {
        if (entry.value === null) {
          log.warn("Detail of call record {id} is missing", { id });
          return { transcript: [], turns: [] };
        }
        parts.push(entry.value);
      }
    }
    const bytes = new Uint8Array(
      parts.reduce((total, part) => total + part.length, 0),
    );
    let offset = 0;
    for (const part of parts) {
      bytes.set(part, offset);
      offset += part.length;
    }
    return JSON.parse(new TextDecoder().decode(bytes));
  }
}

/** A finished record to write, with the number keys its in-progress record was indexed under when another run wrote it. */
interface FinalRecord {
  record: CallRecord;
  openNumbers?: Set<string>;
}

/** The distinct, non-empty number keys of a record's two numbers. */
function numberKeys(record: { from: string; to: string }): Set<string> {
  return new Set(
    [numberKey(record.from), numberKey(record.to)].filter((key) => key !== ""),
  );
}

/**
 * The fields an in-progress record's index entries are made of: when it
 * is unchanged since the last write, so are they.
 */
function indexSignature(record: StoredRecord): string {
  return `${record.startedAt}\n${record.callId}\n${record.from}\n${record.to}\n${record.instanceId}`;
}

/** When a record sorts in lists: an in-progress call by when it connected, others by when they ended. */
function indexTime(record: StoredRecord): number {
  return Date.parse(
    record.state === "in_progress" ? record.startedAt : record.endedAt,
  );
}

/** Adds `record` and its index entries to `operation`. */
function addRecord(
  operation: Deno.AtomicOperation,
  record: StoredRecord,
  expireIn: number | undefined,
): void {
  const endedAtMs = indexTime(record);
  operation
    .set(["calls", record.id], record, { expireIn })
    .set(["calls_by_time", endedAtMs, record.id], null, { expireIn });
  for (const key of numberKeys(record)) {
    operation.set(["calls_by_number", key, endedAtMs, record.id], null, {
      expireIn,
    });
  }
  if (record.callId !== "") {
    operation.set(["calls_by_sid", record.callId, record.id], null, {
      expireIn,
    });
  }
}

function chunk(bytes: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let start = 0; start < bytes.length; start += CHUNK_BYTES) {
    chunks.push(bytes.subarray(start, start + CHUNK_BYTES));
  }
  return chunks;
}
