/**
 * Batches Silero inference across calls. Every call's detector hands its
 * due 32 ms windows to one shared batcher; the batcher runs the model once
 * for all windows that became due in the same turn of the event loop, one
 * row per call, with each call's own recurrent state in its row (the
 * model's state input is `[2, rows, 128]`). One run of 32 rows costs a
 * fraction of 32 runs of one: most of a small model's cost is the run
 * itself, not the arithmetic.
 *
 * A run blocks the thread it runs on, so batches are capped
 * ({@linkcode DEFAULT_MAX_BATCH} rows) and the batcher yields to the event
 * loop between runs: socket reads and writes that became ready meanwhile
 * go first, and the windows that arrived with them join the next batch.
 * Under light load a batch is a call or two and waits for nothing; under
 * heavy load batches fill up by themselves.
 *
 * Pure scheduling: the model is behind a {@linkcode BatchRunner}, so tests
 * can drive it with a fake.
 *
 * @module
 */

import { setImmediate } from "node:timers";

/** The rates the Silero model takes. */
export type SileroRate = 8000 | 16000;

/** Size of one layer of one call's recurrent state; the state is two layers. */
export const STATE_WIDTH = 128;

/** Rows per run unless {@linkcode SileroBatcherOptions.maxBatch} says otherwise. */
export const DEFAULT_MAX_BATCH = 32;

/** One run's input: `rows` windows of one rate, and their states. */
export interface BatchInput {
  /** The windows' rate. */
  rate: SileroRate;
  /** How many windows. */
  rows: number;
  /** The windows one after another: `rows` × window length (with context). */
  input: Float32Array;
  /** The states as the model takes them: `[2, rows, 128]`. */
  state: Float32Array;
}

/** One run's output. */
export interface BatchOutput {
  /** Speech probability per row. */
  probabilities: Float32Array;
  /** The next states, `[2, rows, 128]`. */
  state: Float32Array;
}

/** Runs the model on a batch. */
export type BatchRunner = (batch: BatchInput) => Promise<BatchOutput>;

/**
 * One call's stream as the batcher sees it. The batcher takes at most one
 * window of a row per run, since a row's next window needs the state its
 * previous one produced.
 */
export interface BatchRow {
  /** The rate of this row's windows. */
  readonly rate: SileroRate;
  /** Window length with context, in samples. */
  readonly length: number;
  /** This call's recurrent state, `[2, 1, 128]`; the batcher replaces it after each run. */
  readonly state: Float32Array;
  /**
   * Copies the next window that needs the model into `into` at `offset`
   * and returns true; windows the row can answer without the model are
   * answered on the way. False when nothing is left.
   */
  take(into: Float32Array, offset: number): boolean;
  /** The model's answer for the window `take` gave (0 when the run failed). */
  answer(probability: number): void;
}

/** Runs `callback` after `ms` on a clock; the returned function cancels it. */
export type Schedule = (callback: () => void, ms: number) => () => void;

/** Options of a {@linkcode SileroBatcher}. */
export interface SileroBatcherOptions {
  /** Most rows per run (default {@linkcode DEFAULT_MAX_BATCH}). */
  maxBatch?: number;
  /**
   * How long a run waits for more calls' windows, in ms, unless the batch
   * fills first; 0 (the default) runs at the next turn of the event loop.
   * Calls' frames come on their own clocks, spread over each 20 ms, so
   * without a wait most runs hold a few rows, and a row costs more the
   * fewer share its run. Needs `schedule`.
   */
  gatherMs?: number;
  /** The timer `gatherMs` waits on (the injected clock's `schedule`). */
  schedule?: Schedule;
  /**
   * Called when a run fails (its windows are answered with probability 0)
   * or a row's `take` or `answer` throws (that row's window is dropped).
   */
  onError?(error: unknown): void;
}

/** How many runs a batcher made, over how many windows, and how many failed. */
export interface SileroBatcherStats {
  /** Model runs. */
  runs: number;
  /** Windows answered by the model, over all runs. */
  windows: number;
  /** Runs that failed. */
  failures: number;
  /** The largest batch so far. */
  largestBatch: number;
}

/**
 * Collects due windows from many calls and runs them through the model in
 * batches, one run at a time.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { SileroBatcher } from "./silero_batcher.ts";
 *
 * const batcher = new SileroBatcher(({ rows, state }) =>
 *   Promise.resolve({ probabilities: new Float32Array(rows).fill(0.5), state })
 * );
 * const heard: number[] = [];
 * const rows = [0, 1, 2].map(() => {
 *   let due = 1;
 *   return {
 *     rate: 8000 as const,
 *     length: 288,
 *     state: new Float32Array(256),
 *     take: () => due-- > 0,
 *     answer: (probability: number) => heard.push(probability),
 *   };
 * });
 * for (const row of rows) batcher.request(row);
 * await new Promise((resolve) => setTimeout(resolve, 10));
 * assertEquals(heard, [0.5, 0.5, 0.5]);
 * assertEquals(batcher.stats.runs, 1); // one run for three calls
 * ```
 */
export class SileroBatcher {
  #run: BatchRunner;
  #maxBatch: number;
  #onError: ((error: unknown) => void) | undefined;
  /** Rows with windows waiting, in the order they asked. */
  #due: BatchRow[] = [];
  /** Rows waiting or in the run under way. */
  #queued = new Set<BatchRow>();
  #scheduled = false;
  #gatherMs: number;
  #timer: Schedule | undefined;
  /** Cancels the wait for more rows, while one is under way. */
  #cancelGather: (() => void) | undefined;
  #running = false;
  #buffers = new Map<number, { input: Float32Array; state: Float32Array }>();
  #stats: SileroBatcherStats = {
    runs: 0,
    windows: 0,
    failures: 0,
    largestBatch: 0,
  };

  /**
   * Creates a batcher over `run`.
   *
   * @throws {RangeError} when `maxBatch` is not a whole number from 1 to
   * 1024, or `gatherMs` is negative or set without `schedule`.
   */
  constructor(run: BatchRunner, options: SileroBatcherOptions = {}) {
    const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 1024) {
      throw new RangeError(
        `Invalid maxBatch "${maxBatch}": expected a whole number from 1 to 1024`,
      );
    }
    const gatherMs = options.gatherMs ?? 0;
    if (!(gatherMs >= 0) || (gatherMs > 0 && !options.schedule)) {
      throw new RangeError(
        `Invalid gatherMs "${gatherMs}": expected 0 or more, and a schedule to wait on`,
      );
    }
    this.#run = run;
    this.#maxBatch = maxBatch;
    this.#gatherMs = gatherMs;
    this.#timer = options.schedule;
    this.#onError = options.onError;
  }

  /** Runs, windows and failures so far. */
  get stats(): SileroBatcherStats {
    return { ...this.#stats };
  }

  /**
   * Asks for `row`'s waiting windows to be run, one per batch until it has
   * none. Asking again while it is queued changes nothing.
   */
  request(row: BatchRow): void {
    if (this.#queued.has(row)) return;
    this.#queued.add(row);
    this.#due.push(row);
    this.#schedule();
  }

  /**
   * After the I/O that is ready, or after `gatherMs` unless a batch fills
   * first: windows that arrive meanwhile join the batch.
   */
  #schedule(): void {
    if (this.#running || this.#due.length === 0) return;
    const full = this.#due.length >= this.#maxBatch;
    if (this.#cancelGather && full) {
      this.#cancelGather();
      this.#cancelGather = undefined;
      this.#scheduled = false;
    }
    if (this.#scheduled) return;
    this.#scheduled = true;
    const flush = () => {
      this.#scheduled = false;
      this.#cancelGather = undefined;
      this.#flush();
    };
    if (this.#gatherMs > 0 && !full) {
      this.#cancelGather = this.#timer!(flush, this.#gatherMs);
    } else setImmediate(flush);
  }

  async #flush(): Promise<void> {
    const rows = this.#collect();
    const n = rows.length;
    if (n === 0) {
      this.#schedule();
      return;
    }
    const { rate, length } = rows[0];
    const buffers = this.#buffersFor(length);
    const input = buffers.input.subarray(0, n * length);
    const state = buffers.state.subarray(0, 2 * n * STATE_WIDTH);
    for (let i = 0; i < n; i++) {
      const own = rows[i].state;
      state.set(own.subarray(0, STATE_WIDTH), i * STATE_WIDTH);
      state.set(own.subarray(STATE_WIDTH), (n + i) * STATE_WIDTH);
    }
    this.#running = true;
    let output: BatchOutput | undefined;
    try {
      output = await this.#run({ rate, rows: n, input, state });
      this.#stats.runs++;
      this.#stats.windows += n;
      if (n > this.#stats.largestBatch) this.#stats.largestBatch = n;
    } catch (error) {
      this.#stats.failures++;
      this.#onError?.(error);
    } finally {
      this.#running = false;
    }
    for (let i = 0; i < n; i++) {
      const row = rows[i];
      this.#queued.delete(row);
      if (output) {
        const next = output.state;
        row.state.set(next.subarray(i * STATE_WIDTH, (i + 1) * STATE_WIDTH));
        row.state.set(
          next.subarray((n + i) * STATE_WIDTH, (n + i + 1) * STATE_WIDTH),
          STATE_WIDTH,
        );
      }
      try {
        // A row with more windows asks again from inside `answer`.
        row.answer(output ? output.probabilities[i] : 0);
      } catch (error) {
        // One call's handlers must not stall the other calls of the batch.
        this.#onError?.(error);
      }
    }
    this.#schedule();
  }

  /**
   * Takes one window from each of up to `maxBatch` due rows of the first
   * row's rate, straight into the input buffer.
   */
  #collect(): BatchRow[] {
    const taken: BatchRow[] = [];
    const due = this.#due;
    this.#due = [];
    let input: Float32Array | undefined;
    for (const row of due) {
      const fits = taken.length < this.#maxBatch &&
        (taken.length === 0 ||
          (row.rate === taken[0].rate && row.length === taken[0].length));
      if (!fits) {
        this.#due.push(row);
        continue;
      }
      input ??= this.#buffersFor(row.length).input;
      let due: boolean;
      try {
        due = row.take(input, taken.length * row.length);
      } catch (error) {
        // The row's own handlers threw while it answered windows without
        // the model; each call consumes a window, so retrying ends.
        this.#onError?.(error);
        this.#due.push(row);
        continue;
      }
      if (!due) {
        this.#queued.delete(row);
        continue;
      }
      taken.push(row);
    }
    return taken;
  }

  #buffersFor(length: number): { input: Float32Array; state: Float32Array } {
    let buffers = this.#buffers.get(length);
    if (!buffers) {
      buffers = {
        input: new Float32Array(this.#maxBatch * length),
        state: new Float32Array(2 * this.#maxBatch * STATE_WIDTH),
      };
      this.#buffers.set(length, buffers);
    }
    return buffers;
  }
}
