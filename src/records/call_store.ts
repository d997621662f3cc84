/**
 * Call records in Deno KV: written once per call when it ends, listed newest
 * first, joined with what Exotel's status callbacks said. Records of calls
 * ending close together are written in shared commits a moment later: a
 * commit per call was most of what a call cost to end, and at hundreds of
 * ends a second it stalled calls still live.
 *
 * Keys:
 * - `["calls", id]`: the record, without its transcript and turns;
 * - `["call_detail", id, n]`: the transcript and turns as JSON bytes, in
 *   chunks under Deno KV's 64 KiB value limit, however long the call;
 * - `["calls_by_time", endedAtMs, id]`, `["calls_by_number", last10digits,
 *   endedAtMs, id]`, `["calls_by_sid", callSid, id]`: indexes;
 * - `["call_status", callSid]`: Exotel's status, merged, kept apart from the
 *   record so that a callback may arrive before, during or after the call
 *   and is joined when the record is read.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { CallRecord } from "./call_record.ts";
import { numberKey } from "./call_record.ts";
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

type StoredRecord = Omit<CallRecord, "transcript" | "turns"> & {
  detailChunks: number;
};

const log = getLogger(["exovoice", "records"]);

/**
 * Opens Deno KV: the file at `path` (creating its folder), `:memory:`, or
 * with `path` undefined the runtime's default (Deno Deploy's managed KV).
 */
export async function openKv(path?: string): Promise<Deno.Kv> {
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
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
  }
}

const OPEN_ATTEMPTS = 5;

/**
 * Call records in Deno KV.
 *
 * @example
 * ```ts ignore
 * const store = new CallStore(await openKv(":memory:"), { ownsKv: true });
 * await store.save(buildCallRecord(session, "stop:callended"));
 * const { calls } = await store.list({ limit: 20 });
 * await store.close();
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
  /** Settles with the next batch's outcome; exists while `#batch` is not empty. */
  #batchDone?: PromiseWithResolvers<boolean>;
  #batchTimer?: ReturnType<typeof setTimeout>;
  /** {@linkcode SaveOptions.onCommit} of records waiting or being written. */
  #onCommit = new Map<CallRecord, SaveOptions["onCommit"]>();

  /** Uses `kv`, which may be shared with other modules. */
  constructor(kv: Deno.Kv, options: CallStoreOptions = {}) {
    this.#kv = kv;
    this.#options = options;
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

  #enqueue(record: CallRecord): Promise<boolean> {
    this.#batch.push(record);
    this.#batchDone ??= Promise.withResolvers();
    const { promise } = this.#batchDone;
    if (this.#closing) this.#writeBatch();
    else {
      this.#batchTimer ??= setTimeout(
        () => this.#writeBatch(),
        this.#options.batchMs ?? 500,
      );
    }
    return promise;
  }

  /** Writes the waiting records now. */
  #writeBatch(): void {
    clearTimeout(this.#batchTimer);
    this.#batchTimer = undefined;
    const records = this.#batch;
    const done = this.#batchDone;
    this.#batch = [];
    this.#batchDone = undefined;
    if (done) this.#saveWithRetry(records).then(done.resolve);
  }

  async #saveWithRetry(records: CallRecord[]): Promise<boolean> {
    const attempts = Math.max(1, this.#options.attempts ?? 5);
    let delayMs = this.#options.retryDelayMs ?? 200;
    const ids = records.map((record) => record.id);
    for (let attempt = 1;; attempt++) {
      try {
        await this.#write(records);
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
          return false;
        }
        log.warn(
          "Call records {ids} not written (try {attempt}), retrying in {delayMs} ms: {error}",
          { ids, attempt, delayMs, error },
        );
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        delayMs *= 2;
      }
    }
  }

  async #write(records: CallRecord[]): Promise<void> {
    const kv = this.#kv;
    const expireIn = this.#expireIn();
    const stored: StoredRecord[] = [];
    const onCommit: SaveOptions["onCommit"][] = [];
    for (const record of records) {
      const { transcript, turns, ...summary } = record;
      const chunks = transcript.length === 0 && turns.length === 0 ? [] : chunk(
        new TextEncoder().encode(JSON.stringify({ transcript, turns })),
      );
      // Detail first: a record that can be read always has its detail.
      for (let start = 0; start < chunks.length; start += CHUNKS_PER_COMMIT) {
        const operation = kv.atomic();
        chunks.slice(start, start + CHUNKS_PER_COMMIT).forEach((bytes, i) =>
          operation.set(["call_detail", record.id, start + i], bytes, {
            expireIn,
          })
        );
        await operation.commit();
      }
      stored.push({ ...summary, detailChunks: chunks.length });
      onCommit.push(this.#onCommit.get(record));
    }
    for (let start = 0; start < stored.length; start += RECORDS_PER_COMMIT) {
      const operation = kv.atomic();
      const end = Math.min(stored.length, start + RECORDS_PER_COMMIT);
      for (let i = start; i < end; i++) {
        addRecord(operation, stored[i], expireIn);
        onCommit[i]?.(operation, records[i]);
      }
      await operation.commit();
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
   */
  async mergeStatus(
    callSid: string,
    update: ExotelCallStatus,
  ): Promise<ExotelCallStatus> {
    const key = ["call_status", callSid];
    for (let attempt = 0; attempt < MERGE_ATTEMPTS; attempt++) {
      const current = await this.#kv.get<ExotelCallStatus>(key);
      const merged = mergeCallStatus(current.value ?? undefined, {
        ...update,
        callSid,
      });
      const result = await this.#kv.atomic().check(current).set(key, merged, {
        expireIn: this.#expireIn(),
      }).commit();
      if (result.ok) return merged;
    }
    throw new Error(
      `Status of call "${callSid}" not merged: ${MERGE_ATTEMPTS} concurrent updates won`,
    );
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
      Date.parse(record.endedAt) < Date.now() - retentionMs;
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

/** Adds `record` and its index entries to `operation`. */
function addRecord(
  operation: Deno.AtomicOperation,
  record: StoredRecord,
  expireIn: number | undefined,
): void {
  const endedAtMs = Date.parse(record.endedAt);
  operation
    .set(["calls", record.id], record, { expireIn })
    .set(["calls_by_time", endedAtMs, record.id], null, { expireIn });
  for (const key of new Set([numberKey(record.from), numberKey(record.to)])) {
    if (key === "") continue;
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
