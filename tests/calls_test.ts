import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { errorResponse } from "../src/http/json.ts";
import { buildCallRecord } from "../src/records/call_record.ts";
import {
  CallStore,
  openKv,
  type StoredCall,
} from "../src/records/call_store.ts";
import { parseStatusCallback } from "../src/records/call_status.ts";
import { handleGetCall, handleListCalls } from "../src/routes/calls.ts";
import { makeSession } from "./fakes/session.ts";

const T0 = Date.parse("2025-03-01T10:00:00Z");

/** Serves `/calls` and `/calls/:id` on loopback and gives a JSON getter. */
async function withServer(
  test: (
    get: (path: string) => Promise<{ status: number; body: Json }>,
    store: CallStore,
  ) => Promise<void>,
): Promise<void> {
  const store = new CallStore(await openKv(":memory:"), { ownsKv: true });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const { pathname } = new URL(request.url);
      try {
        if (pathname === "/calls") return await handleListCalls(request, store);
        const id = decodeURIComponent(pathname.slice("/calls/".length));
        return await handleGetCall(request, id, store);
      } catch (error) {
        return errorResponse(error);
      }
    },
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    await test(async (path) => {
      const response = await fetch(`${base}${path}`);
      assertEquals(
        response.headers.get("content-type"),
        "application/json; charset=utf-8",
      );
      return { status: response.status, body: await response.json() as Json };
    }, store);
  } finally {
    await server.shutdown();
    await store.close();
  }
}

/** What the routes answer: a page, a call or an error, as JSON. */
interface Json {
  count: number;
  calls: StoredCall[];
  cursor: string | null;
  next: string | null;
  error: { code: string; message: string };
  id: string;
  transcript?: unknown;
  ended: unknown;
  exotel: { conversationDuration: number };
}

async function seed(store: CallStore, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 1; i <= count; i++) {
    const session = makeSession({
      callId: `CA${i}`,
      connectedAt: T0 + i * 60_000 - 20_000,
      from: i % 2 === 0 ? "+919876543210" : "+911234567890",
    });
    const record = buildCallRecord(session, "stop:callended", {
      endedAt: T0 + i * 60_000,
      transcript: [{ role: "caller", text: `call ${i}`, atMs: 500 }],
    });
    await store.save(record);
    ids.push(record.id);
  }
  return ids;
}

Deno.test("GET /calls pages newest first and hands out the next page's URL", () =>
  withServer(async (get, store) => {
    await seed(store, 5);
    const first = await get("/calls?limit=2");
    assertEquals(first.status, 200);
    assertEquals(first.body.count, 2);
    assertEquals(first.body.calls.map((call) => call.callId), [
      "CA5",
      "CA4",
    ]);
    assertEquals(first.body.calls[0].transcript, undefined);
    assert(typeof first.body.cursor === "string");
    assertStringIncludes(first.body.next ?? "", "/calls?limit=2&cursor=");
    const second = await get(first.body.next!);
    assertEquals(second.body.calls.map((call) => call.callId), [
      "CA3",
      "CA2",
    ]);
    const last = await get(second.body.next!);
    assertEquals(last.body.calls.map((call) => call.callId), ["CA1"]);
    assertEquals([last.body.cursor, last.body.next], [null, null]);
  }));

Deno.test("GET /calls filters by number and by date range", () =>
  withServer(async (get, store) => {
    await seed(store, 6);
    const byNumber = await get("/calls?number=%2B919876543210");
    assertEquals(byNumber.body.calls.map((call) => call.callId), [
      "CA6",
      "CA4",
      "CA2",
    ]);
    const from = new Date(T0 + 2 * 60_000).toISOString();
    const to = T0 + 5 * 60_000;
    const byDate = await get(`/calls?from=${from}&to=${to}`);
    assertEquals(byDate.body.calls.map((call) => call.callId), [
      "CA4",
      "CA3",
      "CA2",
    ]);
    const both = await get(`/calls?from=${from}&to=${to}&number=9876543210`);
    assertEquals(both.body.calls.map((call) => call.callId), [
      "CA4",
      "CA2",
    ]);
    const none = await get("/calls?from=2030-01-01");
    assertEquals(
      [none.body.count, none.body.calls, none.body.cursor, none.body.next],
      [0, [], null, null],
    );
  }));

Deno.test("GET /calls refuses bad parameters with a JSON 400 naming them", () =>
  withServer(async (get) => {
    for (
      const [query, named] of [
        ["limit=0", 'limit "0"'],
        ["limit=501", 'limit "501"'],
        ["limit=ten", 'limit "ten"'],
        ["from=yesterday", 'from "yesterday"'],
        ["to=2025-13-45", 'to "2025-13-45"'],
        ["number=drop%20table", 'number "drop table"'],
      ]
    ) {
      const { status, body } = await get(`/calls?${query}`);
      assertEquals(status, 400, query);
      assertEquals(body.error.code, "invalid_query");
      assertStringIncludes(body.error.message, named);
    }
    const cursor = await get("/calls?cursor=garbage!!");
    assertEquals(cursor.status, 400);
    assertEquals(cursor.body.error.code, "invalid_cursor");
  }));

Deno.test("GET /calls/:id answers the whole record, by session id or CallSid, with Exotel's status", () =>
  withServer(async (get, store) => {
    const [id] = await seed(store, 1);
    await store.mergeStatus(
      "CA1",
      parseStatusCallback({
        CallSid: "CA1",
        Status: "completed",
        ConversationDuration: "40",
      }),
    );
    const byId = await get(`/calls/${id}`);
    assertEquals(byId.status, 200);
    assertEquals(byId.body.id, id);
    assertEquals(byId.body.transcript, [{
      role: "caller",
      text: "call 1",
      atMs: 500,
    }]);
    assertEquals(byId.body.ended, {
      reason: "stop:callended",
      outcome: "stop",
      detail: "callended",
    });
    assertEquals(byId.body.exotel.conversationDuration, 40);
    const bySid = await get("/calls/CA1");
    assertEquals(bySid.body, byId.body);
    const missing = await get("/calls/CA404");
    assertEquals(missing.status, 404);
    assertEquals(missing.body.error.code, "call_not_found");
  }));
