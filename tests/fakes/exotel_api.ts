/**
 * A fake Exotel Connect API on 127.0.0.1 that speaks the real wire format:
 * form-encoded `POST .../Calls/connect.json`, `GET .../Calls/{sid}.json`,
 * HTTP Basic auth, `{"Call": {...}}` answers and `{"RestException": {...}}`
 * errors. It records every request so tests can assert on what was sent, and
 * can be told to fail the next requests in the ways Exotel (or the network)
 * fails.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ConnectApi } from "../../src/exotel/connect_api.ts";
 *
 * await using fake = await FakeExotelApi.start();
 * const api = new ConnectApi({ ...fake.credentials, callerId: "08047491899",
 *   subdomain: "api.exotel.com", baseUrl: fake.baseUrl, timeoutMs: 1000 });
 * await api.placeCall({ to: "+919876543210", target: { mode: "flow", appId: "1" } });
 * assertEquals(fake.requests[0].path, "/v1/Accounts/acme1/Calls/connect.json");
 * assertEquals(fake.requests[0].form.get("From"), "+919876543210");
 * ```
 *
 * @module
 */

/** A request the fake received, as it arrived. */
export interface RecordedRequest {
  /** `GET` or `POST`. */
  method: string;
  /** The URL path, e.g. `/v1/Accounts/acme1/Calls/connect.json`. */
  path: string;
  /** The `Authorization` header, if any. */
  authorization: string | null;
  /** The `Content-Type` header, if any. */
  contentType: string | null;
  /** The raw body text. */
  body: string;
  /** The body parsed as a form (empty for GET). */
  form: URLSearchParams;
}

/** How the fake answers the next request instead of serving it. */
export type FakeFailure =
  /** An Exotel error: `{"RestException": {"Status", "Message", "Code"}}` with that HTTP status. */
  | { kind: "error"; status: number; message: string; code?: number | string }
  /** Any body at all, e.g. a proxy's HTML page or broken JSON. */
  | { kind: "raw"; status: number; body: string; contentType?: string }
  /** Never answers, until the fake closes. */
  | { kind: "hang" };

/** Credentials and account the fake accepts. */
export interface FakeExotelOptions {
  /** Basic auth user name. */
  apiKey?: string;
  /** Basic auth password. */
  apiToken?: string;
  /** The only account sid the fake serves. */
  accountSid?: string;
}

type ExotelCall = Record<string, string | number | null>;

/** The fake server; close it with `await fake.close()` or `await using`. */
export class FakeExotelApi {
  /** Every request received, in order. */
  readonly requests: RecordedRequest[] = [];
  /** Credentials the fake accepts, in {@linkcode ExotelApiConfig} shape. */
  readonly credentials: {
    apiKey: string;
    apiToken: string;
    accountSid: string;
  };
  #server: Deno.HttpServer<Deno.NetAddr> | undefined;
  #failures: FakeFailure[] = [];
  #calls = new Map<string, ExotelCall>();
  #hanging = new Set<() => void>();
  #nextSid = 1;

  private constructor(options: FakeExotelOptions) {
    this.credentials = {
      apiKey: options.apiKey ?? "fake-api-key-8c1f",
      apiToken: options.apiToken ?? "fake-api-token-52e9d0",
      accountSid: options.accountSid ?? "acme1",
    };
  }

  /** Starts the fake on a free loopback port. */
  static start(options: FakeExotelOptions = {}): Promise<FakeExotelApi> {
    const fake = new FakeExotelApi(options);
    const { promise, resolve } = Promise.withResolvers<void>();
    fake.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => resolve() },
      (request) => fake.#handle(request),
    );
    return promise.then(() => fake);
  }

  /** `http://127.0.0.1:PORT`, for `ExotelApiConfig.baseUrl`. */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.#server?.addr.port}`;
  }

  /** Queues failures: each of the next requests takes one, in order. */
  failNext(...failures: FakeFailure[]): void {
    this.#failures.push(...failures);
  }

  /** The call the fake holds under `sid`, in Exotel's wire shape. */
  call(sid: string): ExotelCall | undefined {
    return this.#calls.get(sid);
  }

  /** Changes a held call, e.g. to mark it completed with a duration and price. */
  updateCall(sid: string, fields: ExotelCall): void {
    const call = this.#calls.get(sid);
    if (call === undefined) throw new Error(`No fake call "${sid}"`);
    Object.assign(call, fields);
  }

  /** Releases hanging requests and stops the server. */
  async close(): Promise<void> {
    for (const release of this.#hanging) release();
    this.#hanging.clear();
    await this.#server?.shutdown();
    this.#server = undefined;
  }

  /** Same as {@linkcode FakeExotelApi.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const body = await request.text();
    const contentType = request.headers.get("content-type");
    this.requests.push({
      method: request.method,
      path: url.pathname,
      authorization: request.headers.get("authorization"),
      contentType,
      body,
      form: new URLSearchParams(
        contentType?.includes("application/x-www-form-urlencoded") ? body : "",
      ),
    });
    const failure = this.#failures.shift();
    if (failure !== undefined) return await this.#fail(failure);
    if (!this.#authorized(request)) {
      return restException(
        401,
        "Authentication failed. Invalid API Key or Token.",
        "UNAUTHORIZED",
      );
    }
    const prefix = `/v1/Accounts/${this.credentials.accountSid}/Calls/`;
    if (!url.pathname.startsWith(prefix)) {
      return restException(404, "Resource not found", 20404);
    }
    const rest = url.pathname.slice(prefix.length);
    if (request.method === "POST" && rest === "connect.json") {
      return this.#connect(contentType, body);
    }
    const details = rest.match(/^([^/]+)\.json$/);
    if (request.method === "GET" && details) {
      const call = this.#calls.get(details[1]);
      return call === undefined
        ? restException(404, `Call ${details[1]} not found`, 20404)
        : Response.json({ Call: call });
    }
    return restException(405, "Method not allowed", 20005);
  }

  #authorized(request: Request): boolean {
    const header = request.headers.get("authorization") ?? "";
    const match = header.match(/^Basic\s+(\S+)$/i);
    if (!match) return false;
    let decoded: string;
    try {
      decoded = new TextDecoder().decode(Uint8Array.fromBase64(match[1]));
    } catch {
      return false;
    }
    const { apiKey, apiToken } = this.credentials;
    return decoded === `${apiKey}:${apiToken}`;
  }

  #connect(contentType: string | null, body: string): Response {
    if (!contentType?.includes("application/x-www-form-urlencoded")) {
      return restException(400, "Expected a form-encoded body", 20001);
    }
    const form = new URLSearchParams(body);
    for (const name of ["From", "CallerId"]) {
      if (!form.get(name)) {
        return restException(400, `Missing parameter ${name}`, 20002);
      }
    }
    const hasFlow = form.has("Url");
    const hasStream = form.has("StreamUrl");
    if (hasFlow === hasStream) {
      return restException(
        400,
        "Exactly one of Url and StreamUrl (with To not set) is required",
        20003,
      );
    }
    if (hasStream && form.get("StreamType") !== "bidirectional") {
      return restException(400, "StreamType must be bidirectional", 20004);
    }
    const sid = `${(this.#nextSid++).toString(16).padStart(28, "0")}19ab`;
    const now = "2025-01-13 10:30:00";
    const call: ExotelCall = {
      Sid: sid,
      ParentCallSid: null,
      DateCreated: now,
      DateUpdated: now,
      AccountSid: this.credentials.accountSid,
      To: form.get("CallerId"),
      From: form.get("From"),
      PhoneNumberSid: form.get("CallerId"),
      Status: "in-progress",
      StartTime: now,
      EndTime: null,
      Duration: null,
      Price: null,
      Direction: "outbound-api",
      AnsweredBy: null,
      ForwardedFrom: null,
      CallerName: null,
      Uri: `/v1/Accounts/${this.credentials.accountSid}/Calls/${sid}.json`,
      RecordingUrl: null,
      CustomField: form.get("CustomField"),
    };
    this.#calls.set(sid, call);
    return Response.json({ Call: call });
  }

  async #fail(failure: FakeFailure): Promise<Response> {
    switch (failure.kind) {
      case "error":
        return restException(
          failure.status,
          failure.message,
          failure.code ?? failure.status,
        );
      case "raw":
        return new Response(failure.body, {
          status: failure.status,
          headers: { "content-type": failure.contentType ?? "text/html" },
        });
      case "hang": {
        // Held until close(): the client gives up on its own, and shutdown
        // then finds no handler still running.
        const { promise, resolve } = Promise.withResolvers<void>();
        this.#hanging.add(resolve);
        await promise;
        return new Response(null, { status: 503 });
      }
    }
  }
}

function restException(
  status: number,
  message: string,
  code: number | string,
): Response {
  return Response.json(
    { RestException: { Status: status, Message: message, Code: code } },
    { status },
  );
}
