// Found by the transformer red team (issue 16): over WebSocket tRPC answered an undecodable input
// with `id: null`, so the call hung (fixed: procedures/undecodableInput.ts).
/**
 * Malformed superjson payloads sent by hand over HTTP (GET query, POST mutation, SSE $live) and
 * WebSocket ($live subscription, query, mutation). Each must be answered with a typed 4xx-class
 * tRPC error, never a 500 / INTERNAL_SERVER_ERROR, and the server must keep serving.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import superjson from "superjson";
import { WebSocket } from "ws";
import { engines } from "../support/databases.ts";
import { startServer, waitFor, type Harness } from "./harness.ts";

const BAD: Record<string, unknown> = {
  bigintNotDigits: { json: { at: "2020-01-01T00:00:00.000Z", n: "12x" }, meta: { values: { n: ["bigint"] , at: ["Date"] } } },
  unknownCustom: { json: { at: "x", n: "1" }, meta: { values: { at: ["custom", "nope"], n: ["bigint"] } } },
  unknownClass: { json: { at: {}, n: "1" }, meta: { values: { at: ["class", "Nope"], n: ["bigint"] } } },
  metaValuesString: { json: { at: "2020-01-01T00:00:00.000Z", n: "1" }, meta: { values: "garbage" } },
  setOnNonArray: { json: { at: 5, n: "1" }, meta: { values: { at: ["set"], n: ["bigint"] } } },
  mapOnNonArray: { json: { at: 5, n: "1" }, meta: { values: { at: ["map"], n: ["bigint"] } } },
  badRefEq: { json: { at: "2020-01-01T00:00:00.000Z", n: "1" }, meta: { values: { at: ["Date"], n: ["bigint"] }, referentialEqualities: { at: ["nope.deep.path"] } } },
  protoPath: { json: { at: "2020-01-01T00:00:00.000Z", n: "1" }, meta: { values: { "__proto__.polluted": ["Date"], at: ["Date"], n: ["bigint"] } } },
  regexpBomb: { json: { at: "/(a+)+$/", n: "1" }, meta: { values: { at: ["regexp"], n: ["bigint"] } } },
  deepPathMissing: { json: { n: "1" }, meta: { values: { "a.b.c.d": ["Date"], n: ["bigint"] } } },
};

function isServerError(status: number, body: string): boolean {
  return status >= 500 || /INTERNAL_SERVER_ERROR/.test(body);
}

for (const engine of engines) {
  describe(`malformed superjson input (${engine})`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startServer(engine, { transformer: superjson });
    });
    afterAll(async () => {
      await h?.close();
    });

    it("HTTP GET query: every malformed payload is a 4xx, never a 500", async () => {
      const bad: string[] = [];
      for (const [name, payload] of Object.entries(BAD)) {
        const res = await fetch(`${h.url}/readings.echo?input=${encodeURIComponent(JSON.stringify(payload))}`);
        const body = await res.text();
        if (isServerError(res.status, body)) bad.push(`${name}: ${res.status} ${body.slice(0, 200)}`);
      }
      // the server still answers a good call afterwards
      const ok = await fetch(`${h.url}/readings.echo?input=${encodeURIComponent(JSON.stringify(superjson.serialize({ at: new Date(0), n: 1n })))}`);
      expect(ok.status).toBe(200);
      expect(bad).toEqual([]);
    });

    it("HTTP POST mutation: every malformed payload is a 4xx, never a 500", async () => {
      const bad: string[] = [];
      for (const [name, payload] of Object.entries(BAD)) {
        const res = await fetch(`${h.url}/readings.echoMut`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(payload) });
        const body = await res.text();
        if (isServerError(res.status, body)) bad.push(`${name}: ${res.status} ${body.slice(0, 200)}`);
      }
      expect(bad).toEqual([]);
    });

    it("SSE $live: a malformed payload is a 4xx, never a 500", async () => {
      const bad: string[] = [];
      const payloads: Record<string, unknown> = {
        ...BAD,
        liveInputBigint: { json: { path: "readings.list", input: { sensor: "x" } }, meta: { values: { "input.sensor": ["bigint"] } } },
        livePathUnknownCustom: { json: { path: "readings.list", input: { sensor: "x" } }, meta: { values: { path: ["custom", "nope"] } } },
      };
      for (const [name, payload] of Object.entries(payloads)) {
        const ac = new AbortController();
        const res = await fetch(`${h.url}/$live?input=${encodeURIComponent(JSON.stringify(payload))}`, { signal: ac.signal });
        let body = "";
        if (res.status === 200) {
          // read the stream until its first event (a message or an error) or its end
          const reader = res.body!.getReader();
          while (!/error|data:/.test(body)) {
            const r = await reader.read();
            if (r.done) break;
            body += new TextDecoder().decode(r.value);
          }
        } else body = await res.text();
        ac.abort();
        if (isServerError(res.status, body)) bad.push(`${name}: ${res.status} ${body.slice(0, 300)}`);
      }
      expect(bad).toEqual([]);
    });

    it("WebSocket: malformed payloads get a 4xx-class error, the connection and server survive", async () => {
      const ws = new WebSocket(h.url.replace("http", "ws"));
      const got: any[] = [];
      ws.on("message", (m) => got.push(JSON.parse(String(m))));
      await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); });
      const names = Object.keys(BAD);
      let id = 1;
      const sent: Record<number, string> = {};
      for (const name of names) {
        sent[id] = `query:${name}`;
        ws.send(JSON.stringify({ id: id++, method: "query", params: { path: "readings.echo", input: BAD[name] } }));
        sent[id] = `sub:${name}`;
        ws.send(JSON.stringify({ id: id++, method: "subscription", params: { path: "$live", input: { json: { path: "readings.list", input: BAD[name] }, meta: (BAD[name] as any).meta } } }));
      }
      // still alive: a good call afterwards is answered
      ws.send(JSON.stringify({ id: 9999, method: "query", params: { path: "readings.echo", input: superjson.serialize({ at: new Date(0), n: 1n }) } }));
      await waitFor("good query answer", () => got.some((g) => g.id === 9999));
      // every bad call gets its own answer (a hang shows as this wait failing, naming the calls)
      const unansweredNow = () => Object.entries(sent).filter(([k]) => !got.some((g) => g.id === Number(k))).map(([, v]) => v);
      // (on a timeout the expect below names the calls left unanswered)
      await waitFor("an answer to every call", () => unansweredNow().length === 0).catch(() => undefined);
      const unanswered = unansweredNow();
      const serverErrors = got
        .filter((g) => g.error && (g.error.data?.httpStatus >= 500 || g.error.data?.code === "INTERNAL_SERVER_ERROR"))
        .map((g) => `${sent[g.id]}: ${g.error.data?.code} ${String(g.error.message).slice(0, 120)}`);
      expect(got.filter((g) => g.id === null)).toEqual([]);
      ws.close();
      expect({ serverErrors, unanswered }).toEqual({ serverErrors: [], unanswered: [] });
    });
  });
}
