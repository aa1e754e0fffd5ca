// @vitest-environment happy-dom
// @vitest-environment-options {"settings":{"fetch":{"disableSameOriginPolicy":true}}}
//
// usePresence against a real Tether server (joins over WebSocket, sets over HTTP) on PGlite: two
// browsers (two Tether clients with their own tab ids) in one room.
import { act, cleanup, configure, render, screen, waitFor } from "@testing-library/react";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import type { TetherClient } from "@tether/client";
import { initTether } from "@tether/server";
import { createTetherServer } from "@tether/server/adapters/node";
import { schema } from "../../generated/tether/index.ts";
import type { TestRouter } from "../fixtures/app.ts";
import { createTestStore, type AppStore } from "../support/databases.ts";
import { clientFor, startServer, tether, type RunningServer } from "./support.tsx";

const { usePresence, TetherProvider } = tether;

configure({ asyncUtilTimeout: 5_000 });

interface Cursor {
  name: string;
  color: string;
  cursor: { anchor: number; head: number } | null;
}

let store: AppStore;
let closeStore: () => Promise<void>;
const teardown: Array<() => unknown> = [];

beforeAll(async () => {
  // Presence needs no tables; initTether needs a store.
  const made = await createTestStore("pglite");
  store = made.store;
  closeStore = made.close;
});

afterEach(async () => {
  cleanup();
  for (const step of teardown.splice(0).reverse()) await step();
});

afterAll(async () => {
  await closeStore?.();
});

async function serve(options: Parameters<typeof startServer>[1] = {}): Promise<RunningServer> {
  const running = await startServer(store, options);
  teardown.push(() => running.stop());
  return running;
}

/** A browser tab: its own Tether client and its own presence key (one process holds both tabs). */
function browser(running: RunningServer, clientId: string): TetherClient<TestRouter> {
  const made = clientFor(running.server, { presence: { clientId, releaseDelayMs: 20 } });
  teardown.push(() => made.close());
  return made;
}

/** Who this tab sees in the room: "*me@3,other@-" (self starred, cursor head or "-"). */
function Avatars({ room, name, testId, cursor = null }: { room: string; name: string; testId: string; cursor?: Cursor["cursor"] }) {
  const { peers, status, setState } = usePresence<Cursor>(room, { name, color: "teal", cursor });
  return (
    <div>
      <p data-testid={testId} data-status={status}>
        {peers.map((p) => `${p.self ? "*" : ""}${p.state.name}@${p.state.cursor?.head ?? "-"}`).join(",")}
      </p>
      <button data-testid={`${testId}-move`} onClick={() => setState((s) => ({ ...s!, cursor: { anchor: 7, head: 9 } }))} />
    </div>
  );
}

const text = (testId: string) => screen.getByTestId(testId).textContent;
const status = (testId: string) => screen.getByTestId(testId).dataset.status;

function mount(client: TetherClient<TestRouter>, ui: React.ReactNode) {
  return render(<TetherProvider client={client}>{ui}</TetherProvider>);
}

describe("usePresence", () => {
  it("two browsers see each other, follow each other's state, and one unmounting is gone for the other", async () => {
    const running = await serve();
    const a = browser(running, "tab-a");
    const b = browser(running, "tab-b");

    mount(a, <Avatars room="note:1" name="ann" testId="a" />);
    // Before anyone else: just this tab, shown at once from its local state.
    expect(text("a")).toBe("*ann@-");
    await waitFor(() => expect(status("a")).toBe("joined"));

    const second = mount(b, <Avatars room="note:1" name="ben" testId="b" cursor={{ anchor: 1, head: 2 }} />);
    await waitFor(() => expect(text("b")).toBe("*ben@2,ann@-"));
    await waitFor(() => expect(text("a")).toBe("*ann@-,ben@2"));

    // setState (a cursor move) reaches the other tab.
    act(() => screen.getByTestId("a-move").click());
    expect(text("a")).toBe("*ann@9,ben@2");
    await waitFor(() => expect(text("b")).toBe("*ben@2,ann@9"));

    // Re-rendering with an equal (new) object sends nothing new; a changed prop does.
    second.rerender(
      <TetherProvider client={b}>
        <Avatars room="note:1" name="ben" testId="b" cursor={{ anchor: 4, head: 5 }} />
      </TetherProvider>,
    );
    await waitFor(() => expect(text("a")).toBe("*ann@9,ben@5"));

    second.unmount();
    await waitFor(() => expect(text("a")).toBe("*ann@9"));
    await waitFor(() => expect(running.app.tether.presence.stats()).toMatchObject({ rooms: 1, members: 1 }));
  });

  it("closing a Tether client leaves its rooms, even with its components still mounted", async () => {
    const running = await serve();
    const a = browser(running, "tab-a");
    const b = browser(running, "tab-b");
    mount(a, <Avatars room="note:1" name="ann" testId="a" />);
    mount(b, <Avatars room="note:1" name="ben" testId="b" />);
    await waitFor(() => expect(text("b")).toBe("*ben@-,ann@-"));
    await a.close();
    // Left, not retrying a closed client's socket in the background.
    expect(status("a")).toBe("left");
    await waitFor(() => expect(text("b")).toBe("*ben@-"));
    await waitFor(() => expect(running.app.tether.presence.stats()).toMatchObject({ rooms: 1, members: 1 }));
  });

  it("works the same with subscriptions over SSE", async () => {
    const running = await serve();
    const a = clientFor(running.server, { sse: true, presence: { clientId: "tab-a", releaseDelayMs: 20 } });
    teardown.push(() => a.close());
    const b = browser(running, "tab-b");
    mount(a, <Avatars room="note:1" name="ann" testId="a" />);
    const second = mount(b, <Avatars room="note:1" name="ben" testId="b" />);
    await waitFor(() => expect([text("a"), text("b")]).toEqual(["*ann@-,ben@-", "*ben@-,ann@-"]));
    act(() => screen.getByTestId("a-move").click());
    await waitFor(() => expect(text("b")).toBe("*ben@-,ann@9"));
    second.unmount();
    await waitFor(() => expect(text("a")).toBe("*ann@9"));
  });

  it("rooms are separate, and two components of one tab in one room are one entry", async () => {
    const running = await serve();
    const a = browser(running, "tab-a");
    const b = browser(running, "tab-b");
    mount(
      a,
      <>
        <Avatars room="note:1" name="ann" testId="a1" />
        <Avatars room="note:1" name="ann" testId="a1bis" />
        <Avatars room="note:2" name="ann" testId="a2" />
      </>,
    );
    mount(b, <Avatars room="note:2" name="ben" testId="b2" />);
    await waitFor(() => expect(text("a2")).toBe("*ann@-,ben@-"));
    await waitFor(() => expect([status("a1"), status("a1bis")]).toEqual(["joined", "joined"]));
    expect(text("a1")).toBe("*ann@-");
    expect(text("a1bis")).toBe("*ann@-");
    expect(running.app.tether.presence.stats()).toMatchObject({ rooms: 2, members: 3 });
  });

  it("rejoins after the server restarts and announces itself again", async () => {
    const first = await serve();
    const a = browser(first, "tab-a");
    const b = browser(first, "tab-b");
    mount(a, <Avatars room="note:1" name="ann" testId="a" />);
    mount(b, <Avatars room="note:1" name="ben" testId="b" />);
    await waitFor(() => expect([text("a"), text("b")]).toEqual(["*ann@-,ben@-", "*ben@-,ann@-"]));

    await first.stop();
    await waitFor(() => expect([status("a"), status("b")]).toEqual(["reconnecting", "reconnecting"]));
    // The last known peers stay up while reconnecting (for up to the entry timeout).
    expect(text("a")).toBe("*ann@-,ben@-");

    const second = await serve({ port: first.port });
    await waitFor(() => expect([status("a"), status("b")]).toEqual(["joined", "joined"]));
    // The new server knew nobody: both tabs set their state again on rejoin.
    await waitFor(() => expect(second.app.tether.presence.peek("note:1")).toEqual({
      "tab-a": { name: "ann", color: "teal", cursor: null },
      "tab-b": { name: "ben", color: "teal", cursor: null },
    }));
    await waitFor(() => expect([text("a"), text("b")]).toEqual(["*ann@-,ben@-", "*ben@-,ann@-"]));
  });

  it("keeps an idle tab present by refreshing every timeout/3 (the timeout the server announced)", async () => {
    // A server with a short entry timeout; the clients are told it in the first join message.
    const timeoutMs = 600;
    const presenceApp = initTether<{ user: { id: string } | null }>().create({ store, schema, presence: { timeoutMs } });
    const server = await createTetherServer({
      router: presenceApp.appRouter({}),
      createContext: () => ({ user: { id: "alice" } }),
      port: 0,
      closeGraceMs: 100,
    });
    teardown.push(async () => {
      await server.close();
      await presenceApp.close();
    });
    const a = browser({ server } as RunningServer, "tab-a");
    const b = browser({ server } as RunningServer, "tab-b");
    mount(a, <Avatars room="note:1" name="ann" testId="a" />);
    mount(b, <Avatars room="note:1" name="ben" testId="b" />);
    await waitFor(() => expect([text("a"), text("b")]).toEqual(["*ann@-,ben@-", "*ben@-,ann@-"]));
    // Nobody changes anything for three timeouts: without the heartbeat both entries would expire
    // (and the expiry would reach the other tab).
    await sleep(3 * timeoutMs);
    expect([text("a"), text("b")]).toEqual(["*ann@-,ben@-", "*ben@-,ann@-"]);
    expect(Object.keys(presenceApp.presence.peek("note:1")).sort()).toEqual(["tab-a", "tab-b"]);
  });

  it("a refused join shows status error with the server's code", async () => {
    const running = await serve();
    const a = browser(running, "tab-a");
    function Refused() {
      const { status: s, error } = usePresence("x".repeat(201), { name: "ann" });
      const code = (error as { data?: { code?: string } } | null)?.data?.code ?? "";
      return <p data-testid="refused" data-status={s}>{code}</p>;
    }
    mount(a, <Refused />);
    await waitFor(() => expect([status("refused"), text("refused")]).toEqual(["error", "BAD_REQUEST"]));
    expect(running.app.tether.presence.stats().rooms).toBe(0);
  });
});
