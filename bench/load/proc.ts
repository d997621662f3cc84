/**
 * A process's CPU time and resident memory, read from Linux's `/proc`.
 *
 * @module
 */

/** Linux reports CPU times in clock ticks of `USER_HZ`, fixed at 100 on every architecture Deno runs on. */
const TICKS_PER_SECOND = 100;

/** One reading of a process's resources. */
export interface ProcSample {
  /** When it was read, `performance.now()` ms. */
  at: number;
  /** User plus system CPU time of every thread, in ms. */
  cpuMs: number;
  /** Resident set size, in KiB. */
  rssKb: number;
}

/** Error thrown when `/proc/<pid>` cannot be read or understood. */
export class ProcError extends Error {
  /** Creates the error for process `pid`. */
  constructor(pid: number, detail: string) {
    super(`Cannot read process "${pid}": ${detail}`);
    this.name = "ProcError";
  }
}

/**
 * Reads CPU time and RSS of process `pid`.
 *
 * Deno grants `/proc` only to `--allow-all`; without it the files are read
 * through `cat` (needs `--allow-run`).
 */
export async function readProc(pid: number): Promise<ProcSample> {
  const before = performance.now();
  const [stat, status] = await readFiles(pid, [
    `/proc/${pid}/stat`,
    `/proc/${pid}/status`,
  ]);
  const at = (before + performance.now()) / 2;
  return { at, cpuMs: parseCpuMs(stat, pid), rssKb: parseRssKb(status, pid) };
}

/** CPU time of the whole machine, all cores. */
export interface MachineSample {
  /** When it was read, `performance.now()` ms. */
  at: number;
  /** Time cores spent on anything but idling, in ms summed over cores. */
  busyMs: number;
  /** Time the hypervisor gave our virtual cores to someone else, in ms. */
  stealMs: number;
}

/** Reads the machine's CPU times from `/proc/stat`, or `undefined` when it cannot. */
export async function tryReadMachine(): Promise<MachineSample | undefined> {
  const before = performance.now();
  let text: string;
  try {
    [text] = await readFiles(0, ["/proc/stat"]);
  } catch (error) {
    if (error instanceof ProcError) return undefined;
    throw error;
  }
  const at = (before + performance.now()) / 2;
  const line = /^cpu\s+(.*)$/m.exec(text)?.[1];
  if (line === undefined) return undefined;
  const [user, nice, system, _idle, _iowait, irq, softirq, steal] = line
    .split(/\s+/).map(Number);
  const toMs = (ticks: number) => ticks * 1000 / TICKS_PER_SECOND;
  return {
    at,
    busyMs: toMs(user + nice + system + irq + softirq),
    stealMs: toMs(steal),
  };
}

async function readFiles(pid: number, files: string[]): Promise<string[]> {
  try {
    return files.map((file) => Deno.readTextFileSync(file));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotCapable)) {
      throw new ProcError(pid, message(error));
    }
  }
  return await Promise.all(files.map((file) => catFile(pid, file)));
}

async function catFile(pid: number, file: string): Promise<string> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("cat", { args: ["--", file] })
      .output();
  } catch (error) {
    throw new ProcError(pid, message(error));
  }
  if (!output.success) {
    throw new ProcError(pid, new TextDecoder().decode(output.stderr).trim());
  }
  return new TextDecoder().decode(output.stdout);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Reads process `pid`, or returns `undefined` when there is no such process or no way to read it. */
export async function tryReadProc(
  pid: number,
): Promise<ProcSample | undefined> {
  try {
    return await readProc(pid);
  } catch (error) {
    if (error instanceof ProcError) return undefined;
    throw error;
  }
}

/**
 * User plus system CPU in ms from the text of `/proc/<pid>/stat`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * // utime 150 + stime 50 ticks of 10 ms
 * assertEquals(parseCpuMs("7 (deno) S 1 7 7 0 -1 0 0 0 0 0 150 50 0 0", 7), 2000);
 * ```
 */
export function parseCpuMs(stat: string, pid = 0): number {
  // The command name may hold spaces and parentheses: fields start after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15; field 3 (state) is index 0 here.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) {
    throw new ProcError(pid, `unexpected stat line "${stat.slice(0, 80)}"`);
  }
  return (utime + stime) * 1000 / TICKS_PER_SECOND;
}

/**
 * `VmRSS` in KiB from the text of `/proc/<pid>/status`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(parseRssKb("Name:\tdeno\nVmRSS:\t  51234 kB\n", 7), 51234);
 * ```
 */
export function parseRssKb(status: string, pid = 0): number {
  const match = /^VmRSS:\s*(\d+)\s*kB/m.exec(status);
  if (!match) throw new ProcError(pid, "no VmRSS line in its status");
  return Number(match[1]);
}

/** CPU use between two samples of one process, in % of one core. */
export function cpuPercent(from: ProcSample, to: ProcSample): number {
  const wallMs = to.at - from.at;
  return wallMs > 0 ? (to.cpuMs - from.cpuMs) / wallMs * 100 : 0;
}
