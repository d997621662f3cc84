/**
 * Live calls shared between instances through Deno KV, so that any instance
 * can list the calls of all of them (`GET /voicebot/sessions?scope=all`).
 *
 * Each instance writes its live sessions under its own id on a heartbeat,
 * each entry expiring a few heartbeats later, and deletes a session as its
 * call ends. Starts and ends are queued and written together a moment
 * later, in one commit per batch: a commit per call start was most of what
 * a call cost to set up, and at hundreds of starts a second it stalled
 * calls already live. An instance that dies without cleaning up drops out of the list
 * once its entries are older than the expiry: readers skip stale entries
 * themselves, since KV deletes expired keys only eventually.
 *
 * Each run of an instance has its own random run id, carried in its
 * heartbeat. Before each heartbeat an instance reads its entry: another
 * run's heartbeat written since its own means a second process uses the
 * same `INSTANCE_ID` (their calls would hide each other's), which is
 * logged and reported ({@linkcode LiveSessions.duplicateRunId}). At
 * startup, the entries an earlier run left (after a crash) are removed as
 * soon as that run is known to be dead: at once when its heartbeat is
 * stale, else after two heartbeats in which it wrote nothing. Meanwhile
 * readers skip another instance's entries older than its current run.
 *
 * Keys: `["live_sessions", instanceId, sessionId]` and
 * `["instances", instanceId]`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Session } from "../call/registry.ts";
import { type Cancel, type Clock, repeat, systemClock } from "../call/clock.ts";
import type { TurnTiming } from "../call/bot_report.ts";
import {
  type CallSnapshot,
  type SessionSummary,
  summarizeCall,
} from "../call/call_snapshot.ts";

/** A live session as listed across instances. */
export interface LiveSessionEntry extends SessionSummary {
  /** The session's own id (unique per socket). */
  sessionId: string;
  /** The instance serving the call. */
  instanceId: string;
  /** When this entry was written (ISO 8601); now for the local instance's own. */
  publishedAt: string;
}

/** Where and when a {@linkcode LiveSessionEntry} is published. */
export interface LiveEntryOptions {
  /** The instance serving the call. */
  instanceId: string;
  /** When the entry is written, epoch ms. */
  publishedAt: number;
  /** The bot's per-turn latencies so far. */
  turns?: readonly TurnTiming[];
}

/**
 * Projects a call's snapshot to its entry in the list shared between
 * instances: its monitoring view, tagged with who published it and when.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const entry = liveSessionEntry({
 *   id: "0b6e", callId: "CA1", streamSid: "ST1", accountSid: "AC1",
 *   from: "+919800000001", to: "08012345678", customParameters: {},
 *   sampleRate: 8000, encoding: "pcm", bot: "echo", remoteAddress: "127.0.0.1",
 *   connectedAt: 0, lastActivity: 1000, sequenceNumber: 7, state: "started",
 *   framesIn: 6, bytesIn: 19200, badFrames: {}, audioChunksBuffered: 0, dtmfDigits: "",
 *   playout: { framesOut: 6, bytesOut: 19200, marksSent: 1, marksAcknowledged: 1, clears: 0, underruns: 0, droppedBytes: 0 },
 * }, { instanceId: "vm-1", publishedAt: 2000 });
 * assertEquals(entry.sessionId, "0b6e");
 * assertEquals(entry.publishedAt, "1970-01-01T00:00:02.000Z");
 * ```
 */
export function liveSessionEntry(
  snapshot: CallSnapshot,
  options: LiveEntryOptions,
): LiveSessionEntry {
  return {
    ...summarizeCall(snapshot, { turns: options.turns }),
    sessionId: snapshot.id,
    instanceId: options.instanceId,
    publishedAt: new Date(options.publishedAt).toISOString(),
  };
}

/** An instance sharing the KV, as its last heartbeat described it. */
export interface InstanceInfo {
  /** Its id. */
  instanceId: string;
  /** When it started publishing (ISO 8601). */
  startedAt: string;
  /** Its last heartbeat (ISO 8601). */
  heartbeatAt: string;
  /** Live sessions it had then. */
  sessions: number;
  /** The process's run: a new random id at every start. */
  runId?: string;
}

/** What {@linkcode LiveSessions.listAll} answers. */
export interface LiveSessionList {
  /** Number of sessions. */
  total: number;
  /** Every instance's live sessions, oldest call first. */
  sessions: LiveSessionEntry[];
  /** The instances seen alive. */
  instances: string[];
  /** False when KV could not be read: `sessions` then holds only this instance's. */
  complete: boolean;
}

/** Options of {@linkcode LiveSessions}. */
export interface LiveSessionsOptions {
  /** This instance's id (`INSTANCE_ID`). */
  instanceId: string;
  /** This instance's live sessions (e.g. `() => registry.values()`). */
  sessions: () => Iterable<Session>;
  /** Time between heartbeats; default 10 s. */
  heartbeatMs?: number;
  /** Age after which an entry no longer counts; default three heartbeats. */
  ttlMs?: number;
  /** How long announcements and withdrawals wait to be written together; default 500 ms. */
  flushMs?: number;
  /** Time (its wall clock stamps the entries) and timers; the system clock by default. */
  clock?: Clock;
  /** This process's run id; a random one by default. */
  runId?: string;
}

/** Sessions written per atomic operation: well under KV's 800 KiB per commit. */
const SESSIONS_PER_COMMIT = 200;

const log = getLogger(["exovoice", "instances"]);

/**
 * This instance's live sessions, published to KV, and everyone's, read back.
 *
 * @example
 * ```ts ignore
 * const live = new LiveSessions(kv, { instanceId: "vm-1", sessions: () => registry.values() });
 * live.start();
 * // on a call's start: live.announce(session); on its end: live.withdraw(session.id)
 * const { sessions } = await live.listAll();
 * await live.stop();
 * ```
 */
export class LiveSessions {
  /** This instance's id. */
  readonly instanceId: string;
  /** This process's run of the instance. */
  readonly runId: string;
  #kv: Deno.Kv;
  #options: LiveSessionsOptions;
  #heartbeatMs: number;
  #ttlMs: number;
  #clock: Clock;
  #startedAt: number;
  #stopHeartbeat?: Cancel;
  #inFlight = new Set<Promise<unknown>>();
  #flushMs: number;
  #stopped = false;
  #cancelFlush?: Cancel;
  /** Sessions to write at the next flush, by id. */
  #announced = new Map<string, Session>();
  /** Session ids to delete at the next flush. */
  #withdrawn = new Set<string>();
  /** Settles with the next flush's outcome; exists while anything is queued. */
  #nextFlush?: PromiseWithResolvers<boolean>;
  /** The last write: writes run one after another, so a late heartbeat never undoes a withdrawal. */
  #lastWrite: Promise<unknown> = Promise.resolve();
  /** The versionstamp of this run's last heartbeat entry. */
  #ownVersion?: string;
  #heartbeats = 0;
  #duplicate?: string;
  #lastPublishFailed = false;
  #previousRun = Promise.withResolvers<boolean>();
  #previousRunSettled = false;

  /** Publishes through `kv`, which other instances open too. */
  constructor(kv: Deno.Kv, options: LiveSessionsOptions) {
    this.#kv = kv;
    this.#options = options;
    this.instanceId = options.instanceId;
    this.runId = options.runId ?? crypto.randomUUID();
    this.#heartbeatMs = options.heartbeatMs ?? 10_000;
    this.#ttlMs = options.ttlMs ?? this.#heartbeatMs * 3;
    this.#flushMs = options.flushMs ?? 500;
    this.#clock = options.clock ?? systemClock;
    this.#startedAt = this.#clock.epochMs();
  }

  /** Publishes now and on every heartbeat until {@linkcode LiveSessions.stop}. */
  start(): void {
    if (this.#stopHeartbeat !== undefined) return;
    void this.publish();
    this.#stopHeartbeat = repeat(this.#clock, () => void this.publish(), {
      everyMs: this.#heartbeatMs,
    });
  }

  /**
   * One heartbeat: this instance's entry and every live session's, with a
   * fresh expiry. Failures are logged, never thrown.
   */
  publish(): Promise<boolean> {
    return this.#track(this.#serial(() => this.#publish()));
  }

  /**
   * The run id of another live process publishing under this instance's id,
   * once one was seen; undefined while none was.
   */
  get duplicateRunId(): string | undefined {
    return this.#duplicate;
  }

  /** True when the last heartbeat could not be written. */
  get publishFailing(): boolean {
    return this.#lastPublishFailed;
  }

  /**
   * Resolves true once the earlier run of this instance (if any) is known
   * to be dead, its stale live entries removed; false when another live
   * process shares the id (nothing of its may be touched) or on stop.
   */
  previousRunEnded(): Promise<boolean> {
    return this.#previousRun.promise;
  }

  #settlePreviousRun(ended: boolean): void {
    if (this.#previousRunSettled) return;
    this.#previousRunSettled = true;
    this.#previousRun.resolve(ended);
  }

  /** Reads this instance's heartbeat entry: who else writes it? */
  async #watchOwnEntry(now: number): Promise<void> {
    const entry = await this.#kv.get<InstanceInfo>([
      "instances",
      this.instanceId,
    ]);
    this.#heartbeats++;
    const other = entry.value !== null && entry.value.runId !== this.runId
      ? entry.value
      : undefined;
    if (this.#heartbeats === 1) {
      // Before our first write: an entry is an earlier run's, dead or alive.
      if (!other || !this.#fresh(other.heartbeatAt, now)) {
        await this.#removePreviousRun();
      }
      return;
    }
    if (other && entry.versionstamp !== this.#ownVersion) {
      if (this.#duplicate === undefined) {
        log.error(
          "Another process is running as INSTANCE_ID {instanceId}: each hides the other's calls; give every instance its own INSTANCE_ID",
          {
            instanceId: this.instanceId,
            runId: this.runId,
            other: other.runId,
          },
        );
      }
      this.#duplicate = other.runId ?? "unknown";
      this.#settlePreviousRun(false);
      return;
    }
    // Two heartbeats without another run's write: the earlier run is dead.
    if (this.#heartbeats >= 3 && this.#duplicate === undefined) {
      await this.#removePreviousRun();
    }
  }

  /** Deletes this instance's live entries that no session of this run owns. */
  async #removePreviousRun(): Promise<void> {
    if (this.#previousRunSettled) return;
    const own = new Set(
      [...this.#options.sessions()].map((session) => session.id),
    );
    const stale: Deno.KvKey[] = [];
    for await (
      const entry of this.#kv.list({
        prefix: ["live_sessions", this.instanceId],
      })
    ) {
      if (!own.has(String(entry.key[2]))) stale.push(entry.key);
    }
    for (let start = 0; start < stale.length; start += SESSIONS_PER_COMMIT) {
      const operation = this.#kv.atomic();
      stale.slice(start, start + SESSIONS_PER_COMMIT).forEach((key) =>
        operation.delete(key)
      );
      await operation.commit();
    }
    if (stale.length > 0) {
      log.info("Removed {count} live entries an earlier run left", {
        instanceId: this.instanceId,
        count: stale.length,
      });
    }
    this.#settlePreviousRun(true);
  }

  async #publish(): Promise<boolean> {
    const now = this.#clock.epochMs();
    const sessions = [...this.#options.sessions()];
    let published = 0;
    try {
      await this.#watchOwnEntry(now);
      for (
        let start = 0;
        start < sessions.length;
        start += SESSIONS_PER_COMMIT
      ) {
        const operation = this.#kv.atomic();
        // Read state now, not at the snapshot: a call that ended meanwhile
        // has been withdrawn, and must not be written back.
        for (
          const session of sessions.slice(start, start + SESSIONS_PER_COMMIT)
        ) {
          if (session.state === "stopped") continue;
          published++;
          operation.set(this.#key(session.id), this.#entry(session, now), {
            expireIn: this.#ttlMs,
          });
        }
        await operation.commit();
      }
      const info: InstanceInfo = {
        instanceId: this.instanceId,
        startedAt: new Date(this.#startedAt).toISOString(),
        heartbeatAt: new Date(now).toISOString(),
        sessions: published,
        runId: this.runId,
      };
      const written = await this.#kv.set(["instances", this.instanceId], info, {
        expireIn: this.#ttlMs,
      });
      this.#ownVersion = written.versionstamp;
      this.#lastPublishFailed = false;
      return true;
    } catch (error) {
      this.#lastPublishFailed = true;
      log.warn("Live sessions not published: {error}", {
        instanceId: this.instanceId,
        error,
      });
      return false;
    }
  }

  /**
   * Publishes one session, e.g. when its call starts, with the next batch.
   * Resolves once written (true) or failed (false, logged); never rejects.
   */
  announce(session: Session): Promise<boolean> {
    if (session.state === "stopped") return Promise.resolve(false);
    this.#withdrawn.delete(session.id);
    this.#announced.set(session.id, session);
    return this.#queued();
  }

  /**
   * Removes a session, e.g. when its call ends, with the next batch; an
   * announcement still queued is dropped unwritten. Resolves like
   * {@linkcode LiveSessions.announce}.
   */
  withdraw(sessionId: string): Promise<boolean> {
    this.#announced.delete(sessionId);
    this.#withdrawn.add(sessionId);
    return this.#queued();
  }

  /**
   * Writes the queued announcements and withdrawals now, in as few commits
   * as KV allows. Resolves false when a commit failed (logged); never
   * rejects.
   */
  flush(): Promise<boolean> {
    this.#cancelFlush?.();
    this.#cancelFlush = undefined;
    const next = this.#nextFlush;
    this.#nextFlush = undefined;
    if (!next) return Promise.resolve(true);
    const announced = [...this.#announced.values()];
    const withdrawn = [...this.#withdrawn];
    this.#announced.clear();
    this.#withdrawn.clear();
    const written = this.#track(
      this.#serial(() => this.#write(announced, withdrawn)),
    );
    written.then(next.resolve);
    return written;
  }

  #queued(): Promise<boolean> {
    // After stop nothing is left to correct: stop removed every entry.
    if (this.#stopped) return Promise.resolve(false);
    if (!this.#nextFlush) {
      this.#nextFlush = Promise.withResolvers();
      this.#cancelFlush = this.#clock.schedule(
        () => void this.flush(),
        this.#flushMs,
      );
    }
    return this.#nextFlush.promise;
  }

  async #write(announced: Session[], withdrawn: string[]): Promise<boolean> {
    const now = this.#clock.epochMs();
    try {
      let operation = this.#kv.atomic();
      let mutations = 0;
      const add = async () => {
        if (++mutations < SESSIONS_PER_COMMIT) return;
        await operation.commit();
        operation = this.#kv.atomic();
        mutations = 0;
      };
      for (const sessionId of withdrawn) {
        operation.delete(this.#key(sessionId));
        await add();
      }
      for (const session of announced) {
        // Ended while queued: its withdrawal is in this batch or the next.
        if (session.state === "stopped") continue;
        operation.set(this.#key(session.id), this.#entry(session, now), {
          expireIn: this.#ttlMs,
        });
        await add();
      }
      if (mutations > 0) await operation.commit();
      return true;
    } catch (error) {
      log.warn(
        "Live sessions not updated ({announced} started, {withdrawn} ended): {error}",
        {
          instanceId: this.instanceId,
          announced: announced.length,
          withdrawn: withdrawn.length,
          error,
        },
      );
      return false;
    }
  }

  /**
   * Every instance's live sessions: this instance's from memory, the
   * others' from KV, skipping entries older than the expiry.
   */
  async listAll(): Promise<LiveSessionList> {
    const now = this.#clock.epochMs();
    const local = [...this.#options.sessions()]
      .filter((session) => session.state !== "stopped")
      .map((session) => this.#entry(session, now));
    const sessions = [...local];
    const instances = new Set([this.instanceId]);
    /** When each other instance's current run started. */
    const runStarts = new Map<string, string>();
    let complete = true;
    try {
      for await (
        const entry of this.#kv.list<InstanceInfo>({ prefix: ["instances"] })
      ) {
        if (this.#fresh(entry.value.heartbeatAt, now)) {
          instances.add(entry.value.instanceId);
          runStarts.set(entry.value.instanceId, entry.value.startedAt);
        }
      }
      for await (
        const entry of this.#kv.list<LiveSessionEntry>({
          prefix: ["live_sessions"],
        })
      ) {
        const remote = entry.value;
        if (remote.instanceId === this.instanceId) continue;
        if (!this.#fresh(remote.publishedAt, now)) continue;
        // Left by a run that crashed before the instance restarted.
        const runStart = runStarts.get(remote.instanceId);
        if (runStart !== undefined && remote.publishedAt < runStart) continue;
        instances.add(remote.instanceId);
        sessions.push(remote);
      }
    } catch (error) {
      log.warn("Other instances' sessions not read: {error}", { error });
      complete = false;
    }
    sessions.sort((a, b) => a.connectedAt.localeCompare(b.connectedAt));
    return {
      total: sessions.length,
      sessions,
      instances: [...instances].sort(),
      complete,
    };
  }

  /** Stops the heartbeat, writes what is queued, and removes this instance's entries. */
  async stop(): Promise<void> {
    this.#stopHeartbeat?.();
    this.#stopHeartbeat = undefined;
    this.#stopped = true;
    this.#settlePreviousRun(false);
    await this.flush();
    while (this.#inFlight.size > 0) await Promise.allSettled(this.#inFlight);
    // Another live run owns these entries now: leave them.
    if (this.#duplicate !== undefined) return;
    try {
      const keys: Deno.KvKey[] = [["instances", this.instanceId]];
      for await (
        const entry of this.#kv.list({
          prefix: ["live_sessions", this.instanceId],
        })
      ) {
        keys.push(entry.key);
      }
      for (let start = 0; start < keys.length; start += SESSIONS_PER_COMMIT) {
        const operation = this.#kv.atomic();
        for (const key of keys.slice(start, start + SESSIONS_PER_COMMIT)) {
          operation.delete(key);
        }
        await operation.commit();
      }
    } catch (error) {
      log.warn("Live sessions of {instanceId} not removed: {error}", {
        instanceId: this.instanceId,
        error,
      });
    }
  }

  #key(sessionId: string): Deno.KvKey {
    return ["live_sessions", this.instanceId, sessionId];
  }

  #entry(session: Session, now: number): LiveSessionEntry {
    return liveSessionEntry(session, {
      instanceId: this.instanceId,
      publishedAt: now,
      turns: session.report?.()?.turns,
    });
  }

  #fresh(publishedAt: string, now: number): boolean {
    return Date.parse(publishedAt) > now - this.#ttlMs;
  }

  /** Runs `write` once every earlier write has settled. */
  #serial<T>(write: () => Promise<T>): Promise<T> {
    const task = this.#lastWrite.then(write, write);
    this.#lastWrite = task.catch(() => {});
    return task;
  }

  #track<T>(task: Promise<T>): Promise<T> {
    this.#inFlight.add(task);
    const done = () => void this.#inFlight.delete(task);
    task.then(done, done);
    return task;
  }
}
