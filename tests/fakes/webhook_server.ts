/**
 * A fake webhook receiver on 127.0.0.1: records every request as it arrived
 * (raw body bytes, headers) and answers from a script — a status, a redirect,
 * or no answer at all until the fake closes.
 *
 * @example
 * ```ts ignore
 * await using receiver = await FakeWebhookServer.start({ answers: [500, 200] });
 * // … point CALL_WEBHOOK_URL at receiver.url, end a call …
 * const [first, second] = await receiver.waitForRequests(2);
 * ```
 *
 * @module
 */

/** A request the fake received. */
export interface ReceivedWebhook {
  /** The method. */
  method: string;
  /** Every header, lowercase names. */
  headers: Headers;
  /** The body exactly as it arrived. */
  body: Uint8Array;
  /** The body as text. */
  text: string;
}

/** How the fake answers one request: a status, or `hang` (never answers). */
export type WebhookAnswer = number | "hang";

/** The fake receiver. */
export class FakeWebhookServer {
  /** Every request received, in order. */
  readonly requests: ReceivedWebhook[] = [];
  /** Answers for the next requests, in order; once used up, {@linkcode FakeWebhookServer.otherwise}. */
  answers: WebhookAnswer[];
  /** The answer once `answers` is used up. */
  otherwise: WebhookAnswer;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #waiters: { count: number; resolve: () => void }[] = [];
  #closing = new AbortController();

  private constructor(answers: WebhookAnswer[], otherwise: WebhookAnswer) {
    this.answers = answers;
    this.otherwise = otherwise;
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request) => this.#handle(request),
    );
  }

  /** Starts the fake: `answers` in order, then `otherwise` (default 200). */
  static start(
    options: { answers?: WebhookAnswer[]; otherwise?: WebhookAnswer } = {},
  ): Promise<FakeWebhookServer> {
    return Promise.resolve(
      new FakeWebhookServer(options.answers ?? [], options.otherwise ?? 200),
    );
  }

  /** The URL to POST to. */
  get url(): string {
    return `http://127.0.0.1:${this.#server.addr.port}/hooks/calls`;
  }

  /** Resolves with the requests once `count` have arrived. */
  async waitForRequests(count: number): Promise<ReceivedWebhook[]> {
    if (this.requests.length < count) {
      await new Promise<void>((resolve) =>
        this.#waiters.push({ count, resolve })
      );
    }
    return this.requests.slice(0, count);
  }

  async #handle(request: Request): Promise<Response> {
    const body = new Uint8Array(await request.arrayBuffer());
    this.requests.push({
      method: request.method,
      headers: request.headers,
      body,
      text: new TextDecoder().decode(body),
    });
    this.#waiters = this.#waiters.filter((waiter) => {
      if (this.requests.length < waiter.count) return true;
      waiter.resolve();
      return false;
    });
    const answer = this.answers.shift() ?? this.otherwise;
    if (answer === "hang") {
      // Answers only as the fake closes (a shutdown waits for every
      // handler): the client has given up long before.
      await new Promise((resolve) =>
        this.#closing.signal.addEventListener("abort", resolve, { once: true })
      );
      return new Response(null, { status: 504 });
    }
    if (answer >= 300 && answer < 400) {
      return new Response(null, {
        status: answer,
        headers: { location: "https://elsewhere.example/hook" },
      });
    }
    const noBody = answer === 204 || answer === 205 || answer === 304;
    return new Response(
      noBody ? null : answer < 300 ? "ok" : `failure ${answer}`,
      { status: answer },
    );
  }

  /** Stops the fake. */
  async close(): Promise<void> {
    this.#closing.abort();
    await this.#server.shutdown();
  }

  /** Stops the fake. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
