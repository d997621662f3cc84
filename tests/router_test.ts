/** The route table's matching: paths, `:name` segments, methods, 404 and 405. */
import { assertEquals, assertThrows } from "@std/assert";
import { HttpError } from "../src/http/json.ts";
import {
  decodeParams,
  MAX_PATH_PARAM_CHARS,
  type Route,
  Router,
} from "../src/http/router.ts";

const answer = (text: string) => () => new Response(text);

const ROUTES: Route[] = [
  { path: "/health", access: "public", methods: { GET: answer("health") } },
  { path: "/calls/:id", access: "admin", methods: { GET: answer("call") } },
  {
    path: "/calls/:id/webhook",
    access: "admin",
    methods: { POST: answer("redeliver") },
  },
  {
    path: "/connect",
    access: "public",
    methods: { GET: answer("connect"), POST: answer("connect") },
  },
];

const router = new Router(ROUTES);

const FOUND: {
  method: string;
  path: string;
  route: string;
  params: Record<string, string>;
}[] = [
  { method: "GET", path: "/health", route: "/health", params: {} },
  { method: "HEAD", path: "/health", route: "/health", params: {} },
  { method: "GET", path: "/health/", route: "/health", params: {} },
  {
    method: "GET",
    path: "/calls/CA%2F1",
    route: "/calls/:id",
    params: { id: "CA%2F1" },
  },
  {
    method: "POST",
    path: "/calls/CA1/webhook",
    route: "/calls/:id/webhook",
    params: { id: "CA1" },
  },
];

for (const { method, path, route, params } of FOUND) {
  Deno.test(`router resolves ${method} ${path} to ${route}, params still encoded`, () => {
    const found = router.resolve(method, path);
    assertEquals([found.route.path, found.params], [route, params]);
  });
}

Deno.test("router answers an unknown path with 404 not_found quoting it", () => {
  for (const path of ["/nope", "/calls", "/calls/CA1/webhook/x"]) {
    const error = assertThrows(() => router.resolve("GET", path), HttpError);
    assertEquals([error.status, error.code, error.message], [
      404,
      "not_found",
      `No route for "${path}"`,
    ]);
  }
});

Deno.test("router answers a method the path lacks with 405 and Allow listing the path's methods", () => {
  const cases = [
    { method: "DELETE", path: "/health", allow: "GET" },
    { method: "PUT", path: "/connect", allow: "GET, POST" },
    { method: "GET", path: "/calls/CA1/webhook", allow: "POST" },
  ];
  for (const { method, path, allow } of cases) {
    const error = assertThrows(() => router.resolve(method, path), HttpError);
    assertEquals([error.status, error.code, error.headers.allow], [
      405,
      "method_not_allowed",
      allow,
    ]);
  }
});

Deno.test("decodeParams decodes escapes and refuses bad escapes and overlong values with 400", () => {
  assertEquals(decodeParams({ id: "CA%2F1", sid: "x" }), {
    id: "CA/1",
    sid: "x",
  });
  for (
    const raw of [
      "%E0%A4%A",
      "a".repeat(MAX_PATH_PARAM_CHARS + 1),
      "%41".repeat(MAX_PATH_PARAM_CHARS + 1),
    ]
  ) {
    const error = assertThrows(() => decodeParams({ id: raw }), HttpError);
    assertEquals([error.status, error.code], [400, "invalid_path"]);
  }
});
