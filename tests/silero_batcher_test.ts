import { assertEquals, assertThrows } from "@std/assert";
import { FakeClock } from "./fakes/clock.ts";
import {
  type BatchInput,
  type BatchOutput,
  type BatchRow,
  SileroBatcher,
  type SileroRate,
  STATE_WIDTH,
} from "../src/audio/silero_batcher.ts";

/** A row with `windows` due windows, each filled with `fill`. */
class FakeRow implements BatchRow {
  readonly rate: SileroRate;
  readonly length: number;
  readonly state = new Float32Array(2 * STATE_WIDTH);
  readonly answers: number[] = [];
  #windows: number[];
  #batcher: SileroBatcher;
  #done: () => void = () => {};
  readonly done: Promise<void>;

  constructor(
    batcher: SileroBatcher,
    windows: number[],
    rate: SileroRate = 8000,
  ) {
    this.#batcher = batcher;
    this.#windows = [...windows];
    this.rate = rate;
    this.length = rate === 8000 ? 288 : 576;
    this.done = new Promise((resolve) => this.#done = resolve);
  }

  take(into: Float32Array, offset: number): boolean {
    const fill = this.#windows.shift();
    if (fill === undefined) {
      this.#done();
      return false;
    }
    into.fill(fill, offset, offset + this.length);
    return true;
  }

  answer(probability: number): void {
    this.answers.push(probability);
    if (this.#windows.length > 0) this.#batcher.request(this);
    else this.#done();
  }
}

/**
 * A model stand-in: each row's probability is its window's first sample,
 * and each state value goes up by one per run, so a state that lands in
 * another row's place shows.
 */
function fakeModel(runs: BatchInput[], fail = new Set<number>()) {
  return (batch: BatchInput): Promise<BatchOutput> => {
    runs.push({ ...batch, input: batch.input.slice() });
    if (fail.has(runs.length)) return Promise.reject(new Error("run failed"));
    const length = batch.input.length / batch.rows;
    const probabilities = new Float32Array(batch.rows);
    for (let i = 0; i < batch.rows; i++) {
      probabilities[i] = batch.input[i * length];
    }
    return Promise.resolve({
      probabilities,
      state: batch.state.map((value) => value + 1),
    });
  };
}

Deno.test("windows of calls that come due in the same turn of the event loop go through one model run", async () => {
  const runs: BatchInput[] = [];
  const batcher = new SileroBatcher(fakeModel(runs));
  const rows = [0.1, 0.2, 0.3].map((p) => new FakeRow(batcher, [p]));
  for (const row of rows) batcher.request(row);
  await Promise.all(rows.map((row) => row.done));
  assertEquals(runs.map((run) => run.rows), [3]);
  assertEquals(
    rows.map((row) => row.answers),
    [[0.1], [0.2], [0.3]].map(
      ([p]) => [Math.fround(p)],
    ),
  );
  assertEquals(batcher.stats, {
    runs: 1,
    windows: 3,
    failures: 0,
    largestBatch: 3,
  });
});

Deno.test("a call's next window waits for the state its previous window leaves", async () => {
  const runs: BatchInput[] = [];
  const batcher = new SileroBatcher(fakeModel(runs));
  const busy = new FakeRow(batcher, [0.5, 0.25, 0.125]);
  const quick = new FakeRow(batcher, [0.75]);
  batcher.request(busy);
  batcher.request(quick);
  // Asking twice changes nothing.
  batcher.request(busy);
  await Promise.all([busy.done, quick.done]);
  assertEquals(runs.map((run) => run.rows), [2, 1, 1]);
  assertEquals(busy.answers, [0.5, 0.25, 0.125]);
  // Three runs, each adding one to every state value of the row.
  assertEquals([...new Set(busy.state)], [3]);
  assertEquals([...new Set(quick.state)], [1]);
});

Deno.test("each call's state goes into the model's [2, rows, 128] layout and comes back to the same call", async () => {
  const runs: BatchInput[] = [];
  const batcher = new SileroBatcher(fakeModel(runs));
  const rows = [0, 1, 2].map((i) => {
    const row = new FakeRow(batcher, [0.1 * i]);
    row.state.fill(10 * i, 0, STATE_WIDTH); // layer one
    row.state.fill(10 * i + 5, STATE_WIDTH); // layer two
    return row;
  });
  for (const row of rows) batcher.request(row);
  await Promise.all(rows.map((row) => row.done));
  const sent = runs[0].state;
  for (let i = 0; i < 3; i++) {
    assertEquals(sent[i * STATE_WIDTH], 10 * i, `layer one of row ${i}`);
    assertEquals(sent[(3 + i) * STATE_WIDTH], 10 * i + 5, `layer two ${i}`);
    assertEquals(rows[i].state[0], 10 * i + 1);
    assertEquals(rows[i].state[2 * STATE_WIDTH - 1], 10 * i + 6);
  }
});

Deno.test("a run holds at most maxBatch calls, and calls at 8 and 16 kHz never share one", async () => {
  const runs: BatchInput[] = [];
  const batcher = new SileroBatcher(fakeModel(runs), { maxBatch: 2 });
  const rows = [
    new FakeRow(batcher, [0.1]),
    new FakeRow(batcher, [0.2], 16000),
    new FakeRow(batcher, [0.3]),
    new FakeRow(batcher, [0.4]),
    new FakeRow(batcher, [0.5], 16000),
  ];
  for (const row of rows) batcher.request(row);
  await Promise.all(rows.map((row) => row.done));
  assertEquals(
    runs.map((run) => [run.rate, run.rows, run.input.length]),
    [[8000, 2, 576], [16000, 2, 1152], [8000, 1, 288]],
  );
  assertEquals(rows.map((row) => row.answers.length), [1, 1, 1, 1, 1]);
});

Deno.test("a failed run answers its windows as silence and says why; the next run goes on", async () => {
  const runs: BatchInput[] = [];
  const errors: string[] = [];
  const batcher = new SileroBatcher(fakeModel(runs, new Set([1])), {
    onError: (error) => errors.push((error as Error).message),
  });
  const row = new FakeRow(batcher, [0.5, 0.75]);
  batcher.request(row);
  await row.done;
  assertEquals(row.answers, [0, 0.75]);
  assertEquals(errors, ["run failed"]);
  assertEquals(batcher.stats.failures, 1);
  assertEquals(batcher.stats.runs, 1);
});

Deno.test("a row with nothing left to run is dropped without a run", async () => {
  const runs: BatchInput[] = [];
  const batcher = new SileroBatcher(fakeModel(runs));
  const empty = new FakeRow(batcher, []);
  batcher.request(empty);
  await empty.done;
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(runs.length, 0);
});

Deno.test("the batcher rejects a batch size it cannot use, quoting it", () => {
  for (const maxBatch of [0, 1.5, 5000]) {
    const error = assertThrows(
      () => new SileroBatcher(fakeModel([]), { maxBatch }),
      RangeError,
    );
    assertEquals(
      error.message,
      `Invalid maxBatch "${maxBatch}": expected a whole number from 1 to 1024`,
    );
  }
});

Deno.test("a call whose handlers throw is reported and stalls neither itself nor the other calls of its batch", async () => {
  const runs: BatchInput[] = [];
  const errors: string[] = [];
  const batcher = new SileroBatcher(fakeModel(runs), {
    onError: (error) => errors.push((error as Error).message),
  });
  const calm = new FakeRow(batcher, [0.5, 0.25]);
  const throwsOnAnswer = new FakeRow(batcher, [0.75]);
  throwsOnAnswer.answer = () => {
    throw new Error("answer handler broke");
  };
  let takes = 0;
  const throwsOnTake = new FakeRow(batcher, [0.125]);
  const take = throwsOnTake.take.bind(throwsOnTake);
  throwsOnTake.take = (into, offset) => {
    if (takes++ === 0) throw new Error("take handler broke");
    return take(into, offset);
  };
  for (const row of [throwsOnAnswer, throwsOnTake, calm]) {
    batcher.request(row);
  }
  await Promise.all([calm.done, throwsOnTake.done]);
  assertEquals(calm.answers, [0.5, 0.25]);
  assertEquals(throwsOnTake.answers, [0.125]);
  assertEquals(errors, ["take handler broke", "answer handler broke"]);
});

Deno.test("with gatherMs, windows that come due within the wait share one run; a full batch runs at once", async () => {
  const clock = new FakeClock();
  const runs: BatchInput[] = [];
  const batcher = new SileroBatcher(fakeModel(runs), {
    maxBatch: 4,
    gatherMs: 8,
    schedule: (callback, ms) => clock.schedule(callback, ms),
  });
  const early = new FakeRow(batcher, [0.1]);
  batcher.request(early);
  // Other calls' frames, on their own clocks, a few ms later.
  await clock.advance(3);
  const late = new FakeRow(batcher, [0.2]);
  batcher.request(late);
  await clock.advance(4);
  assertEquals(runs.length, 0);
  await clock.advance(1);
  await Promise.all([early.done, late.done]);
  assertEquals(runs.map((run) => run.rows), [2]);
  // Four due windows fill the batch: no waiting for the clock.
  const full = [0.3, 0.4, 0.5, 0.6].map((p) => new FakeRow(batcher, [p]));
  for (const row of full) batcher.request(row);
  await Promise.all(full.map((row) => row.done));
  assertEquals(runs.map((run) => run.rows), [2, 4]);
  assertEquals(clock.pending, 0);
});

Deno.test("the batcher rejects a wait it cannot keep, quoting it", () => {
  for (
    const options of [
      { gatherMs: -1, schedule: () => () => {} },
      { gatherMs: 5 },
    ]
  ) {
    const error = assertThrows(
      () => new SileroBatcher(fakeModel([]), options),
      RangeError,
    );
    assertEquals(
      error.message,
      `Invalid gatherMs "${options.gatherMs}": expected 0 or more, and a schedule to wait on`,
    );
  }
});
