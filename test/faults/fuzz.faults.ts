// Property-based fuzzing (fast-check) of every public procedure's input and of raw wire messages
// (WebSocket JSON-RPC, SSE query strings; live, CRDT, presence) against a node in its own process:
// every answer is a success or a typed 4xx tRPC error, never a 5xx, the node never dies, and no
// failed call leaves a partial write (row counts match the successful adds).
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { createTestDatabase, engines, type TestDatabase } from "../support/databases.ts";
import { startNode, type TetherNode } from "./harness/nodeProcess.ts";
import { httpClient, ROLLED_BACK_TITLE } from "./harness/oracle.ts";
import { recordResult, SCENARIO_TIMEOUT_MS, size } from "./harness/run.ts";

const RUNS = size(25, 300);

/** Procedures of the fixture app, with how they are called over HTTP. */
const PROCEDURES = [
  ["tasks.byProject", "query"],
  ["tasks.byAssignee", "query"],
  ["tasks.openCount", "query"],
  ["projects.mine", "query"],
  ["tasks.add", "mutation"],
  ["tasks.setDone", "mutation"],
  ["tasks.addThenFail", "mutation"],
  ["$crdt.pull", "query"],
  ["$crdt.push", "mutation"],
  ["$presence.set", "mutation"],
] as const;
const SUBSCRIPTIONS = ["$live", "$crdt.stream", "$presence.join"] as const;

/** Inputs near the valid shapes (so the fuzzer gets past zod) and far from them. */
const base64ish = fc.oneof(fc.base64String(), fc.string(), fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString("base64")));
const deep = fc.integer({ min: 1, max: 1500 }).map((depth) => {
  let value: unknown = 1;
  for (let i = 0; i < depth; i += 1) value = { a: value };
  return value;
});
const input = fc.oneof(
  fc.anything({ maxDepth: 4 }),
  fc.record({ projectId: fc.oneof(fc.constant("p1"), fc.string()), title: fc.oneof(fc.string(), fc.constant("")), assigneeId: fc.option(fc.string(), { nil: undefined }) }, { requiredKeys: [] }),
  fc.record({ id: fc.oneof(fc.string(), fc.integer(), fc.constant("x")), done: fc.oneof(fc.boolean(), fc.anything()) }, { requiredKeys: [] }),
  fc.record({ model: fc.oneof(fc.constant("note"), fc.constant("Note"), fc.string()), id: fc.oneof(fc.string(), fc.integer()), field: fc.oneof(fc.constant("body"), fc.string()), update: base64ish, version: base64ish }, { requiredKeys: [] }),
  fc.record({ room: fc.string(), clientId: fc.string(), state: fc.oneof(fc.anything(), deep) }, { requiredKeys: [] }),
  fc.record({ path: fc.oneof(fc.constantFrom(...PROCEDURES.map(([p]) => p)), fc.string()), input: fc.anything({ maxDepth: 3 }), lastEventId: fc.oneof(fc.string(), fc.constant(null)) }, { requiredKeys: [] }),
  deep,
  fc.string({ minLength: 100_000, maxLength: 200_000 }),
);

interface Seen {
  calls: number;
  byStatus: Record<string, number>;
  serverErrors: string[];
}

describe.each(engines)("fuzzing inputs and wire messages on %s", (engine) => {
  let database: TestDatabase | undefined;
  let node: TetherNode;
  const seen: Seen = { calls: 0, byStatus: {}, serverErrors: [] };
  let adds = 0;

  beforeAll(async () => {
    if (engine === "postgres") database = await createTestDatabase("postgres");
    node = await startNode("fuzz", engine === "postgres" ? { url: database!.url } : { dataDir: "memory://" });
  });
  afterAll(async () => {
    await node?.stop();
    await database?.drop();
    recordResult({ scenario: "fuzz", engine, what: `fast-check, ${RUNS} runs per property`, extra: { ...seen, serverErrors: seen.serverErrors.length } });
  });

  /** Counts a tRPC error envelope; a 5xx is a failure, except the fixture's deliberate rollback. */
  function judge(where: string, status: number, body: string): void {
    seen.calls += 1;
    seen.byStatus[status] = (seen.byStatus[status] ?? 0) + 1;
    const deliberate = where.startsWith("tasks.addThenFail") && body.includes("boom after write");
    if (status >= 500 && !deliberate) seen.serverErrors.push(`${where} → ${status}: ${body.slice(0, 300)}`);
  }

  it("procedure inputs over HTTP: success or typed 4xx, no partial writes", async () => {
    const before = seen.serverErrors.length;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...PROCEDURES), input, async ([path, kind], value) => {
        const url = `${node.url}/trpc/${path}`;
        const response =
          kind === "query"
            ? await fetch(`${url}?input=${encodeURIComponent(JSON.stringify(value) ?? "")}`, { headers: { "x-user": "alice" } })
            : await fetch(url, { method: "POST", headers: { "content-type": "application/json", "x-user": "alice" }, body: JSON.stringify(value) ?? "" });
        const body = await response.text();
        judge(`${path} ${JSON.stringify(value)?.slice(0, 100)}`, response.status, body);
        if (path === "tasks.add" && response.ok) adds += 1;
        // tRPC answers with a typed error envelope; Node's HTTP parser itself refuses some requests
        // (431 headers too large, 414) with an empty body before tRPC sees them: still a 4xx.
        if (response.status >= 400 && body.startsWith("{")) expect(JSON.parse(body)).toHaveProperty("error.data.code");
      }),
      { numRuns: RUNS * 4 },
    );
    // Partial writes: exactly the successful adds are there, and no rolled-back row.
    const client = httpClient(() => node);
    const rows = [...(await client.tasks.byProject.query({ projectId: "p1" })), ...(await client.tasks.byProject.query({ projectId: "p2" }))];
    expect(rows.filter((r) => r.title === ROLLED_BACK_TITLE)).toEqual([]);
    expect(rows.length).toBe(adds);
    expect(node.crashed()).toBeNull();
    expect(seen.serverErrors.slice(before)).toEqual([]);
  }, SCENARIO_TIMEOUT_MS);

  it("raw WebSocket messages (JSON-RPC, live, CRDT, presence): typed errors only, the node stays up", async () => {
    const before = seen.serverErrors.length;
    const message = fc.oneof(
      fc.string(),
      fc.anything().map((v) => JSON.stringify(v) ?? "null"),
      fc
        .record({
          id: fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.anything()),
          jsonrpc: fc.option(fc.constant("2.0"), { nil: undefined }),
          method: fc.oneof(fc.constantFrom("query", "mutation", "subscription", "subscription.stop", "connectionParams"), fc.string()),
          params: fc.record({ path: fc.oneof(fc.constantFrom(...PROCEDURES.map(([p]) => p), ...SUBSCRIPTIONS), fc.string()), input, lastEventId: fc.option(fc.string()) }, { requiredKeys: [] }),
        }, { requiredKeys: [] })
        .map((v) => JSON.stringify(v)),
      fc.array(fc.record({ id: fc.integer(), method: fc.constant("query"), params: fc.record({ path: fc.constant("tasks.openCount"), input }) }), { maxLength: 50 }).map((v) => JSON.stringify(v)),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 8 }), async (messages) => {
        const socket = new WebSocket(`${node.wsUrl}?connectionParams=0`);
        const replies: string[] = [];
        socket.on("message", (data) => replies.push(String(data)));
        const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
        await new Promise<void>((resolve, reject) => {
          socket.once("open", () => resolve());
          socket.once("error", reject);
        });
        for (const m of messages) socket.send(m);
        // Barrier: a valid call sent after the fuzz; its answer means every earlier one was handled
        // (or the server closed the socket on us, which is a legitimate answer to garbage).
        const barrier = 987654321;
        socket.send(JSON.stringify({ id: barrier, method: "query", params: { path: "tasks.openCount", input: { projectId: "p1" } } }));
        await Promise.race([
          closed,
          new Promise<void>((resolve) => socket.on("message", (d) => String(d).includes(`"id":${barrier}`) && resolve())),
        ]);
        socket.terminate();
        for (const reply of replies) {
          let parsed: { error?: { code?: number; data?: { httpStatus?: number; code?: string } } };
          try {
            parsed = JSON.parse(reply);
          } catch {
            seen.serverErrors.push(`non-JSON reply: ${reply.slice(0, 200)}`);
            continue;
          }
          const status = parsed.error?.data?.httpStatus ?? (parsed.error?.code === -32603 ? 500 : parsed.error ? 400 : 200);
          judge(`ws ${messages.map((m) => m.slice(0, 60)).join(" | ")}`, status, reply);
        }
        expect(node.crashed()).toBeNull();
      }),
      { numRuns: RUNS },
    );
    expect(seen.serverErrors.slice(before)).toEqual([]);
  }, SCENARIO_TIMEOUT_MS);

  it("SSE query strings: typed errors only, the node stays up", async () => {
    const before = seen.serverErrors.length;
    const query = fc.oneof(
      fc.string(),
      input.map((v) => `input=${encodeURIComponent(JSON.stringify({ path: "tasks.byProject", input: v }) ?? "")}`),
      input.map((v) => `input=${encodeURIComponent(JSON.stringify(v) ?? "")}&lastEventId=${encodeURIComponent(JSON.stringify(v) ?? "").slice(0, 300)}`),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...SUBSCRIPTIONS), query, async (path, qs) => {
        const abort = new AbortController();
        const response = await fetch(`${node.url}/trpc/${path}?${qs}`, { headers: { accept: "text/event-stream", "x-user": "alice" }, signal: abort.signal });
        let text = "";
        if (response.body) {
          const reader = response.body.getReader();
          // The first event says it: data, or a serialized error (then the stream ends).
          while (!/\n\n/.test(text)) {
            const chunk = await reader.read().catch(() => ({ done: true as const, value: undefined }));
            if (chunk.done) break;
            text += Buffer.from(chunk.value).toString();
          }
        }
        abort.abort();
        const error = /event: serialized-error\ndata: (.*)\n/.exec(text);
        const status = error ? (JSON.parse(error[1]!) as { data?: { httpStatus?: number } }).data?.httpStatus ?? 500 : response.status;
        judge(`sse ${path}?${qs.slice(0, 100)}`, status, text);
        expect(node.crashed()).toBeNull();
      }),
      { numRuns: RUNS },
    );
    expect(seen.serverErrors.slice(before)).toEqual([]);
  }, SCENARIO_TIMEOUT_MS);
});
