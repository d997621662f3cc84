/**
 * A tiny appointment API for the clinic example, in memory: what the
 * agent's webhook tools in `agent.yaml` call. Run alone with
 * `deno run --allow-net --allow-env examples/clinic/clinic_api.ts`, or
 * with the voicebot by `deno task clinic`.
 *
 * - `GET /availability?date=YYYY-MM-DD` → `{"date", "free": ["09:00", …]}`
 * - `POST /appointments` with the tool body `{"tool", "arguments": {"date",
 *   "time", "name"}, "call"}` → `{"booked": true, "reference", …}`
 * - `POST /appointments/cancel` with `{"arguments": {"reference"}}` →
 *   `{"cancelled": true}`
 *
 * Every request needs `Authorization: Bearer <CLINIC_API_KEY>`.
 *
 * @module
 */

/** One booked slot. */
export interface Appointment {
  /** What the caller quotes to cancel, e.g. `SC-1001`. */
  reference: string;
  /** `YYYY-MM-DD`. */
  date: string;
  /** `HH:MM`. */
  time: string;
  /** The patient's name. */
  name: string;
  /** The caller's number, from the tool body's `call.from`. */
  phone: string;
}

/** The slots the clinic offers each day. */
export const SLOTS = ["09:00", "10:00", "11:00", "14:00", "15:00", "16:00"];

/** The clinic's bookings, and the HTTP handler over them. */
export class ClinicApi {
  /** Booked appointments, by reference. */
  readonly appointments = new Map<string, Appointment>();
  #apiKey: string;
  #next = 1001;

  /** An empty diary guarded by `apiKey`. */
  constructor(apiKey: string) {
    this.#apiKey = apiKey;
  }

  /** Free slots on `date`. */
  free(date: string): string[] {
    const taken = new Set(
      [...this.appointments.values()].filter((a) => a.date === date).map((
        a,
      ) => a.time),
    );
    return SLOTS.filter((slot) => !taken.has(slot));
  }

  /** Answers one request. */
  handle = async (request: Request): Promise<Response> => {
    if (request.headers.get("authorization") !== `Bearer ${this.#apiKey}`) {
      return problem(401, "unauthorized", "Missing or wrong API key");
    }
    const url = new URL(request.url);
    if (request.method === "GET" && url.pathname === "/availability") {
      const date = url.searchParams.get("date") ?? "";
      if (!DATE.test(date)) {
        return problem(
          400,
          "invalid_date",
          `Invalid date "${date}": expected YYYY-MM-DD`,
        );
      }
      return Response.json({ date, free: this.free(date) });
    }
    if (request.method !== "POST") {
      return problem(
        404,
        "not_found",
        `No route ${request.method} ${url.pathname}`,
      );
    }
    let body: { arguments?: Record<string, unknown>; call?: { from?: string } };
    try {
      body = await request.json();
    } catch {
      return problem(400, "invalid_json", "The body is not JSON");
    }
    const args = body.arguments ?? {};
    if (url.pathname === "/appointments") {
      const { date, time, name } = args;
      if (typeof date !== "string" || !DATE.test(date)) {
        return problem(
          400,
          "invalid_date",
          `Invalid date "${date}": expected YYYY-MM-DD`,
        );
      }
      if (typeof time !== "string" || !SLOTS.includes(time)) {
        return problem(
          400,
          "invalid_time",
          `Invalid time "${time}": expected one of ${SLOTS.join(", ")}`,
        );
      }
      if (!this.free(date).includes(time)) {
        return problem(409, "taken", `${date} at ${time} is already booked`);
      }
      const reference = `SC-${this.#next++}`;
      const appointment: Appointment = {
        reference,
        date,
        time,
        name: typeof name === "string" ? name : "",
        phone: body.call?.from ?? "",
      };
      this.appointments.set(reference, appointment);
      return Response.json({ booked: true, ...appointment }, { status: 201 });
    }
    if (url.pathname === "/appointments/cancel") {
      const reference = String(args.reference ?? "").toUpperCase();
      if (!this.appointments.delete(reference)) {
        return problem(
          404,
          "unknown_reference",
          `No appointment "${reference}"`,
        );
      }
      return Response.json({ cancelled: true, reference });
    }
    return problem(
      404,
      "not_found",
      `No route ${request.method} ${url.pathname}`,
    );
  };
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

function problem(status: number, code: string, message: string): Response {
  return Response.json({ error: { status, code, message } }, { status });
}

/** Starts the API on `port` (0: any free one) at 127.0.0.1. */
export function startClinicApi(
  options: { apiKey: string; port?: number; hostname?: string },
): { api: ClinicApi; server: Deno.HttpServer<Deno.NetAddr>; url: string } {
  const api = new ClinicApi(options.apiKey);
  const server = Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 8787,
    onListen() {},
  }, api.handle);
  return {
    api,
    server,
    url: `http://${server.addr.hostname}:${server.addr.port}`,
  };
}

if (import.meta.main) {
  const { url } = startClinicApi({
    apiKey: Deno.env.get("CLINIC_API_KEY") ?? "clinic-demo-key",
    port: Number(Deno.env.get("CLINIC_API_PORT") ?? 8787),
  });
  // deno-lint-ignore no-console
  console.log(`Clinic API on ${url}`);
}
