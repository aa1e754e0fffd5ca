// The Next.js demo (apps/demo) in a real browser: Debian's chromium driven by playwright-core,
// against the demo's own server (server.ts: a production build of the Next app + tRPC HTTP/WS +
// better-auth) started as a child process on a free port with a fresh PGlite data dir.
//
// Needs /usr/bin/chromium (`apt-get install -y chromium`; .ci/run does it). Without it the file
// fails in CI and is skipped locally with a visible reason. No browser is ever downloaded.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCsv } from "../../apps/demo/src/server/jobs/csv.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const demoDir = path.join(repoRoot, "apps", "demo");
const resultsDir = path.join(repoRoot, "test-results");
const PASSWORD = "e2e-password-123";

const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium) {
  const reason = `browser tests need ${CHROMIUM} (apt-get install -y chromium)`;
  if (process.env.CI) throw new Error(`${reason}: it is missing in CI`);
  console.warn(`SKIPPED test/e2e/demo.e2e.test.ts: ${reason}`);
}

// A busy 2-core machine (the rest of the suite runs alongside) needs patience.
const STEP_TIMEOUT = 90_000;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The demo's server as `npm run dev` runs it, logging into test-results/demo-server.log. */
class DemoServer {
  private child: ChildProcess | null = null;
  private readonly log: fs.WriteStream;
  constructor(
    readonly port: number,
    readonly dataDir: string,
  ) {
    fs.mkdirSync(resultsDir, { recursive: true });
    this.log = fs.createWriteStream(path.join(resultsDir, "demo-server.log"), { flags: "w" });
  }
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  /**
   * A production build (`next build`, into its own distDir). The dev server's HMR socket competes
   * with the app's socket for Chrome's one-connecting-WebSocket-per-host slot after a restart and
   * can leave it stuck (see docs/architecture.md), so the browser tests run the built app.
   */
  async build(): Promise<void> {
    const nextBin = path.join(repoRoot, "node_modules", "next", "dist", "bin", "next");
    const env: NodeJS.ProcessEnv = { ...process.env, NEXT_DIST_DIR: ".next-e2e", NEXT_TELEMETRY_DISABLED: "1" };
    delete env.NODE_ENV;
    const child = spawn(process.execPath, [nextBin, "build"], { cwd: demoDir, env, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.pipe(this.log, { end: false });
    child.stderr!.pipe(this.log, { end: false });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    if (code !== 0) throw new Error(`next build failed (${code}): see test-results/demo-server.log`);
  }
  async start(): Promise<void> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: "production",
      PORT: String(this.port),
      HOST: "127.0.0.1",
      TETHER_DATA_DIR: this.dataDir,
      TETHER_LOG_LEVEL: "info",
      NEXT_DIST_DIR: ".next-e2e",
      NEXT_TELEMETRY_DISABLED: "1",
      // The export job pauses this long per batch of tasks, so the progress bar is seen moving.
      TETHER_DEMO_EXPORT_PAUSE_MS: "400",
    };
    delete env.DATABASE_URL; // the embedded database, always
    delete env.TETHER_DEMO_WELCOME_TIMEOUT_MS; // the welcome's default day: nobody is nudged during the run
    delete env.VITEST;
    delete env.VITEST_WORKER_ID;
    const child = spawn(process.execPath, ["--import", "tsx", "server.ts"], { cwd: demoDir, env, stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    child.stdout!.pipe(this.log, { end: false });
    child.stderr!.pipe(this.log, { end: false });
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`demo server exited with ${child.exitCode}: see test-results/demo-server.log`);
      try {
        const response = await fetch(`${this.url}/healthz`);
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error("demo server did not start within 120 s: see test-results/demo-server.log");
  }
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }
  close(): void {
    this.log.end();
  }
}

describe.skipIf(!haveChromium)("the Next.js demo in a browser", () => {
  let server: DemoServer;
  let dataDir: string;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const started = Date.now();
  fs.mkdirSync(resultsDir, { recursive: true });
  const browserLog = fs.createWriteStream(path.join(resultsDir, "demo-browser.log"), { flags: "w" });

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "tether-demo-e2e-"));
    server = new DemoServer(await freePort(), dataDir);
    await server.build();
    await server.start();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  }, 400_000);

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await server?.stop();
    server?.close();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    browserLog.end();
    console.info(`demo e2e: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 60_000);

  async function newPage(storageState?: Awaited<ReturnType<BrowserContext["storageState"]>>): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1100, height: 760 }, storageState });
    contexts.push(context);
    const page = await context.newPage();
    const name = `page${contexts.length}`;
    const t0 = Date.now();
    const note = (line: string) => browserLog.write(`${((Date.now() - t0) / 1000).toFixed(1)} ${name} ${line}\n`);
    page.on("console", (m) => note(`console.${m.type()} ${m.text().slice(0, 300)}`));
    page.on("pageerror", (e) => note(`pageerror ${e.message}`));
    page.on("websocket", (ws) => {
      note(`ws open ${ws.url()}`);
      ws.on("close", () => note(`ws close ${ws.url()}`));
      ws.on("socketerror", (e) => note(`ws error ${ws.url()} ${e}`));
    });
    page.setDefaultTimeout(STEP_TIMEOUT);
    page.setDefaultNavigationTimeout(STEP_TIMEOUT);
    return page;
  }

  /** Loads a page and waits until React has hydrated it (clicks before that would be lost). */
  async function open(page: Page, pathname: string): Promise<void> {
    await page.goto(`${server.url}${pathname}`);
    await page.locator("html[data-hydrated=true]").waitFor();
  }

  async function signUp(page: Page, name: string, email: string): Promise<void> {
    await open(page, "/sign-up");
    await page.locator("input[name=name]").fill(name);
    await page.locator("input[name=email]").fill(email);
    await page.locator("input[name=password]").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign up" }).click();
    await page.getByRole("heading", { name: "Projects" }).waitFor();
    await page.locator("html[data-hydrated=true]").waitFor();
    expect(await page.getByTestId("current-user").textContent()).toBe(name);
  }

  /** Reads the page now (no auto-waiting); null while it is navigating or reloading. */
  const read = async <T,>(page: Page, fn: () => T): Promise<T | null> => {
    try {
      return await page.evaluate(fn);
    } catch {
      return null;
    }
  };
  const titles = (page: Page) =>
    read(page, () => [...document.querySelectorAll<HTMLElement>("[data-testid=task]")].map((el) => el.dataset.title));
  const doneTitles = (page: Page) =>
    read(page, () =>
      [...document.querySelectorAll<HTMLElement>("[data-testid=task][data-done=true]")].map((el) => el.dataset.title),
    );
  const connection = (page: Page) =>
    read(page, () => document.querySelector<HTMLElement>("[data-testid=connection]")?.dataset.state ?? null);
  const filterOf = (page: Page) => read(page, () => document.querySelector<HTMLElement>("[data-testid=tasks]")?.dataset.filter ?? null);
  const activity = (page: Page) => read(page, () => document.querySelector("[data-testid=activity]")?.textContent ?? "");
  const poll = <T,>(fn: () => Promise<T>, timeout = STEP_TIMEOUT) => expect.poll(fn, { timeout, interval: 200 });

  async function addTask(page: Page, title: string): Promise<void> {
    await page.getByLabel("New task title").fill(title);
    await page.getByRole("button", { name: "Add", exact: true }).click();
    await poll(() => titles(page)).toContain(title);
  }

  /** The welcome workflow's steps as the panel lists them ("name:status"). */
  const welcomeSteps = (page: Page) =>
    read(page, () => [...document.querySelectorAll<HTMLElement>("[data-testid=welcome-step]")].map((el) => `${el.dataset.name}:${el.dataset.status}`));

  let alice: Page; // user A
  let bob: Page; // user B
  let projectPath = "";
  let secretPath = "";

  it("signs two users up through the UI; A creates a project and tasks; A's welcome workflow's step list moves live", async () => {
    alice = await newPage();
    bob = await newPage();
    await signUp(alice, "Alice", "alice@example.com");
    await signUp(bob, "Bob", "bob@example.com");
    // The sign-up started welcome:<id>: sent the welcome, now waits for a first project.
    await poll(() => welcomeSteps(alice)).toEqual(["send welcome:completed", "first project:waiting"]);

    await alice.getByLabel("New project name").fill("Alpha launch");
    await alice.getByRole("button", { name: "Create project" }).click();
    await alice.waitForURL(/\/projects\/[^/]+$/);
    // The board carries the same panel: the project's event ended the wait and the run completed.
    await poll(() => welcomeSteps(alice)).toEqual(["send welcome:completed", "first project:completed", "record first project:completed"]);
    expect(await alice.getByTestId("welcome-panel").getAttribute("data-status")).toBe("completed");
    projectPath = new URL(alice.url()).pathname;
    await alice.getByTestId("project-name").waitFor();
    expect(await alice.getByTestId("project-name").textContent()).toBe("Alpha launch");
    await poll(() => connection(alice)).toBe("connected");

    await addTask(alice, "Write the tests");
    await addTask(alice, "Ship it");
    expect(await titles(alice)).toEqual(["Write the tests", "Ship it"]);
  }, 300_000);

  const inboxTitles = (page: Page) =>
    read(page, () => [...document.querySelectorAll<HTMLElement>("[data-testid=message]")].map((el) => el.dataset.title));

  it("each sign-up's transaction started a welcome workflow: its message appears in that user's inbox, live (no nudge: the wait is a day)", async () => {
    // Bob is on the project list, Alice on her project: both pages carry the inbox panel.
    await poll(() => inboxTitles(bob)).toEqual(["Welcome to Tether, Bob!"]);
    await poll(() => inboxTitles(alice)).toEqual(["Welcome to Tether, Alice!"]);
  }, 180_000);

  it("B cannot open A's project before it is shared, and does not see it in the list", async () => {
    await open(bob, projectPath);
    await bob.getByTestId("not-found").waitFor();
    expect(await bob.getByRole("heading", { name: "Project not found" }).isVisible()).toBe(true);
    await open(bob, "/");
    await bob.getByRole("heading", { name: "Projects" }).waitFor();
    await bob.getByText("No projects yet").waitFor();
    expect(await bob.getByText("Alpha launch").count()).toBe(0);
  }, 180_000);

  it("A shares the project with B: it appears in B's open list without a reload; an unshared one never does", async () => {
    await alice.getByLabel("Share with (email)").fill("bob@example.com");
    await alice.getByRole("button", { name: "Share", exact: true }).click();
    await poll(() => read(alice, () => [...document.querySelectorAll<HTMLElement>("[data-testid=member]")].map((el) => el.dataset.email))).toEqual([
      "alice@example.com",
      "bob@example.com",
    ]);
    // Bob is still on his project list, opened before the share.
    await poll(() => read(bob, () => document.querySelector("[data-testid=projects]")?.textContent ?? "")).toMatch(/Alpha launch\s*shared by\s*Alice/);

    // A second project of Alice's, not shared: Bob never sees it, and cannot open it.
    await open(alice, "/");
    await alice.getByLabel("New project name").fill("Secret plans");
    await alice.getByRole("button", { name: "Create project" }).click();
    await alice.waitForURL((url) => url.pathname.startsWith("/projects/") && url.pathname !== projectPath);
    secretPath = new URL(alice.url()).pathname;
    await addTask(alice, "Nobody else may read this");
    await open(bob, secretPath);
    await bob.getByTestId("not-found").waitFor();
    await open(bob, "/");
    await bob.getByText("Alpha launch").waitFor();
    expect(await bob.getByText("Secret plans").count()).toBe(0);
  }, 180_000);

  it("the board is server-rendered with B's data (SSR prefetch), then kept live", async () => {
    // The HTML itself, before any script runs, already holds the tasks and the signed-in user.
    const html = await (await bob.context().request.get(`${server.url}${projectPath}`)).text();
    expect(html).toContain('data-title="Write the tests"');
    expect(html).toContain('data-title="Ship it"');
    expect(html).toMatch(/data-testid="current-user"[^>]*>Bob</);
    // Alice's unshared project renders nothing of hers for Bob, on the server either.
    const secret = await (await bob.context().request.get(`${server.url}${secretPath}`)).text();
    expect(secret).not.toContain("Nobody else may read this");
    expect(secret).not.toContain("Secret plans");

    await open(alice, projectPath);
    await open(bob, projectPath);
    await poll(() => titles(bob)).toEqual(["Write the tests", "Ship it"]);
    await poll(() => connection(bob)).toBe("connected");
  }, 180_000);

  it("a task A adds appears in B without a reload; B completing it updates A's filtered views", async () => {
    await addTask(alice, "Tell everyone");
    await poll(() => titles(bob)).toEqual(["Write the tests", "Ship it", "Tell everyone"]);
    await poll(() => activity(bob)).toContain("Tell everyone");

    await alice.getByTestId("filter-open").click();
    await poll(() => filterOf(alice)).toBe("open");
    await poll(() => titles(alice)).toEqual(["Write the tests", "Ship it", "Tell everyone"]);

    await bob.getByLabel("Done: Write the tests").click();
    await poll(() => doneTitles(bob)).toEqual(["Write the tests"]);
    await poll(() => titles(alice)).toEqual(["Ship it", "Tell everyone"]);

    await alice.getByTestId("filter-done").click();
    await poll(() => titles(alice)).toEqual(["Write the tests"]);
    await poll(() => activity(alice)).toMatch(/completed\s*Write the tests/);

    // Reordering by B moves the task for A.
    await alice.getByTestId("filter-all").click();
    await poll(() => titles(alice)).toEqual(["Write the tests", "Ship it", "Tell everyone"]);
    await bob.getByLabel("Move up: Tell everyone").click();
    await poll(() => titles(alice)).toEqual(["Write the tests", "Tell everyone", "Ship it"]);
    await poll(() => titles(bob)).toEqual(["Write the tests", "Tell everyone", "Ship it"]);

    fs.mkdirSync(resultsDir, { recursive: true });
    await alice.screenshot({ path: path.join(resultsDir, "demo-user-a.png"), fullPage: true });
    await bob.screenshot({ path: path.join(resultsDir, "demo-user-b.png"), fullPage: true });
  }, 180_000);

  // The note is a CodeMirror editor: its text is its rendered lines (the placeholder left out);
  // null until the document has loaded and the editor is there.
  const NOTE_EDITOR = "[data-testid=note] .cm-content";
  const noteText = (page: Page) =>
    read(page, () => {
      const lines = [...document.querySelectorAll("[data-testid=note] .cm-content > .cm-line")];
      if (lines.length === 0) return null;
      const shown = (line: Element) =>
        [...line.childNodes].filter((node) => !(node instanceof HTMLElement && node.classList.contains("cm-placeholder"))).map((node) => node.textContent).join("");
      return lines.map(shown).join("\n");
    });
  const noteStatus = (page: Page) => read(page, () => document.querySelector<HTMLElement>("[data-testid=note]")?.dataset.status ?? null);
  const notePeers = (page: Page) =>
    read(page, () => [...document.querySelectorAll<HTMLElement>("[data-testid=note-peer]")].map((el) => el.dataset.name).sort());
  const remoteCursors = (page: Page) =>
    read(page, () => [...document.querySelectorAll<HTMLElement>("[data-testid=note] .cm-tether-caret")].map((el) => el.dataset.name));
  /** Other people's carets drawn in the editor: whose, where in the text, in which colour. */
  const remoteCarets = (page: Page) =>
    read(page, () =>
      [...document.querySelectorAll<HTMLElement>("[data-testid=note] .cm-tether-caret")].map((el) => ({
        name: el.dataset.name,
        offset: Number(el.dataset.offset),
        color: getComputedStyle(el).borderLeftColor,
        label: el.querySelector(".cm-tether-caret-label")?.textContent,
      })),
    );
  /** The colour of a user's avatar among the note's peers (the colour their caret must have). */
  const peerColor = (page: Page, name: string) =>
    page.locator(`[data-testid=note-peer][data-name="${name}"]`).evaluate((el) => getComputedStyle(el).backgroundColor);

  it("the note: what A types appears in B with A's cursor; B's offline edits merge when it is back", async () => {
    await poll(() => noteStatus(alice)).toBe("synced");
    await poll(() => noteStatus(bob)).toBe("synced");
    await poll(() => notePeers(alice)).toEqual(["Alice", "Bob"]);
    await poll(() => notePeers(bob)).toEqual(["Alice", "Bob"]);

    await alice.locator(NOTE_EDITOR).click();
    await alice.keyboard.type("Hello from Alice.", { delay: 15 });
    await poll(() => noteText(bob)).toBe("Hello from Alice.");
    await poll(() => remoteCursors(bob)).toEqual(["Alice"]);
    await bob.screenshot({ path: path.join(resultsDir, "demo-note-user-b.png"), fullPage: true });

    // B goes offline and keeps writing; A writes meanwhile; back online, both merge, nothing lost.
    await bob.context().setOffline(true);
    await bob.locator(NOTE_EDITOR).click();
    await bob.keyboard.press("Control+End");
    await bob.keyboard.type(" Bob wrote this offline.", { delay: 15 });
    await alice.locator(NOTE_EDITOR).click();
    await alice.keyboard.press("Control+Home");
    await alice.keyboard.type("Online: ", { delay: 15 });
    await poll(() => noteText(alice)).toBe("Online: Hello from Alice.");
    expect(await noteText(bob)).toBe("Hello from Alice. Bob wrote this offline.");
    await bob.context().setOffline(false);
    const merged = "Online: Hello from Alice. Bob wrote this offline.";
    await poll(() => noteText(bob), 60_000).toBe(merged);
    await poll(() => noteText(alice), 60_000).toBe(merged);
    await poll(() => read(bob, () => document.querySelector<HTMLElement>("[data-testid=note-status]")?.dataset.pending ?? null)).toBe("0");
    await alice.screenshot({ path: path.join(resultsDir, "demo-note-user-a.png"), fullPage: true });
  }, 240_000);

  it("shows reconnecting while the server is down, then live again with nothing lost or stale", async () => {
    await server.stop();
    await poll(() => connection(alice), 30_000).toBe("reconnecting");
    await poll(() => connection(bob), 30_000).toBe("reconnecting");
    await alice.screenshot({ path: path.join(resultsDir, "demo-reconnecting.png") });

    await server.start();
    // The demo nudges the socket every 3 s while reconnecting; a restart takes a while too.
    await poll(() => connection(alice), 120_000).toBe("connected");
    await poll(() => connection(bob), 120_000).toBe("connected");
    const expected = ["Write the tests", "Tell everyone", "Ship it"];
    await poll(() => titles(alice)).toEqual(expected);
    await poll(() => titles(bob)).toEqual(expected);
    await poll(() => doneTitles(alice)).toEqual(["Write the tests"]);
    await poll(() => noteText(bob)).toBe("Online: Hello from Alice. Bob wrote this offline.");
    // The note is server-rendered too (its column), before the document loads in the browser.
    const html = await (await bob.context().request.get(`${server.url}${projectPath}`)).text();
    expect(html).toContain("Online: Hello from Alice. Bob wrote this offline.");

    // Live again, both ways: a write after the restart reaches the other user.
    await addTask(bob, "After the restart");
    await poll(() => titles(alice)).toEqual([...expected, "After the restart"]);
    await alice.getByLabel("Done: Ship it").click();
    await poll(() => doneTitles(bob)).toEqual(["Write the tests", "Ship it"]);

    await alice.screenshot({ path: path.join(resultsDir, "demo-board.png") });
    const docsShot = path.join(repoRoot, "docs", "demo-board.png");
    if (process.env.TETHER_UPDATE_DOCS_SCREENSHOT || !fs.existsSync(docsShot)) await alice.screenshot({ path: docsShot });
  }, 300_000);

  it("two users type into the note's editor at the same time: each sees both texts and the other's caret; undo removes only one's own text", async () => {
    const before = "Online: Hello from Alice. Bob wrote this offline.";
    await poll(() => noteText(alice)).toBe(before);
    await poll(() => noteText(bob)).toBe(before);
    await poll(() => noteStatus(alice)).toBe("synced");
    await poll(() => noteStatus(bob)).toBe("synced");

    // Alice at the start, Bob at the end, typing at once (each keystroke a commit and a push).
    await alice.locator(NOTE_EDITOR).click();
    await alice.keyboard.press("Control+Home");
    await bob.locator(NOTE_EDITOR).click();
    await bob.keyboard.press("Control+End");
    const fromAlice = "Alice typed this at the start. ";
    const fromBob = " Bob typed this at the end.";
    await Promise.all([alice.keyboard.type(fromAlice, { delay: 20 }), bob.keyboard.type(fromBob, { delay: 20 })]);
    const together = fromAlice + before + fromBob;
    await poll(() => noteText(alice)).toBe(together);
    await poll(() => noteText(bob)).toBe(together);

    // Each sees the other's caret where the other is typing, labelled and in the other's colour.
    const [bobColor, aliceColor] = [await peerColor(alice, "Bob"), await peerColor(bob, "Alice")];
    expect(bobColor).not.toBe(aliceColor);
    await poll(() => remoteCarets(alice)).toEqual([{ name: "Bob", offset: together.length, color: bobColor, label: "Bob" }]);
    await poll(() => remoteCarets(bob)).toEqual([{ name: "Alice", offset: fromAlice.length, color: aliceColor, label: "Alice" }]);
    await alice.screenshot({ path: path.join(resultsDir, "demo-note-editor-a.png"), fullPage: true });
    await bob.screenshot({ path: path.join(resultsDir, "demo-note-editor-b.png"), fullPage: true });

    // Alice undoes until her typing is gone (a slow machine may have split it into several
    // steps): Bob's text, typed at the same time, stays — in both editors.
    const withoutAlice = before + fromBob;
    let undos = 0;
    while ((await noteText(alice)) !== withoutAlice) {
      expect(undos, "undo never removed text that was not Alice's own").toBeLessThan(fromAlice.length);
      const shown = await noteText(alice);
      expect(withoutAlice.length).toBeLessThan(shown!.length);
      await alice.keyboard.press("Control+z");
      undos += 1;
      await poll(() => noteText(alice)).not.toBe(shown);
    }
    console.info(`note editor: Alice's typing took ${undos} undo(s)`);
    await poll(() => noteText(bob)).toBe(withoutAlice);
    await poll(() => remoteCarets(bob)).toEqual([{ name: "Alice", offset: 0, color: aliceColor, label: "Alice" }]);

    // Redo brings it back, for both; Bob's own undo then takes only his.
    // (KeyZ: Playwright sends "z" with Shift held for "Shift+z", which a real keyboard never does.)
    for (let i = 0; i < undos; i++) await alice.keyboard.press("Control+Shift+KeyZ");
    await poll(() => noteText(alice)).toBe(together);
    await poll(() => noteText(bob)).toBe(together);
    while ((await noteText(bob)) !== fromAlice + before) {
      const shown = await noteText(bob);
      expect(shown).toContain(fromAlice + before);
      await bob.keyboard.press("Control+z");
      await poll(() => noteText(bob)).not.toBe(shown);
    }
    await poll(() => noteText(alice)).toBe(fromAlice + before);
    await poll(() => read(alice, () => document.querySelector<HTMLElement>("[data-testid=note-status]")?.dataset.pending ?? null)).toBe("0");
  }, 300_000);

  it("exports the project as CSV: a job whose progress bar moves, then a download holding the project's tasks", async () => {
    await open(alice, projectPath);
    await addTask(alice, 'Say "hi", then leave');
    const board = (await titles(alice))!;
    expect(board.length).toBeGreaterThanOrEqual(4);
    // Every value the bar takes, recorded in the page as it changes.
    await alice.evaluate(() => {
      const seen: number[] = [];
      (window as unknown as { exportProgress: number[] }).exportProgress = seen;
      const record = () => {
        const value = Number(document.querySelector<HTMLElement>("[data-testid=export-progress]")?.dataset.progress ?? Number.NaN);
        if (!Number.isNaN(value) && seen.at(-1) !== value) seen.push(value);
      };
      new MutationObserver(record).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-progress"] });
    });
    await alice.getByRole("button", { name: "Export project as CSV" }).click();
    await alice.getByTestId("export-download").waitFor();
    const seen = (await alice.evaluate(() => (window as unknown as { exportProgress: number[] }).exportProgress))!;
    console.info(`export progress seen in the browser: ${seen.join(" → ")}`);
    expect(new Set(seen).size).toBeGreaterThanOrEqual(2);
    expect(seen.some((value) => value > 0 && value < 100), `a value between 0 and 100 in ${seen.join(", ")}`).toBe(true);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(seen.at(-1)).toBe(100);
    await alice.screenshot({ path: path.join(resultsDir, "demo-export.png"), fullPage: true });

    const [download] = await Promise.all([alice.waitForEvent("download"), alice.getByTestId("export-download").click()]);
    expect(download.suggestedFilename()).toBe("Alpha-launch-tasks.csv");
    const csv = fs.readFileSync((await download.path())!, "utf8");
    const [header, ...rows] = parseCsv(csv);
    expect(header).toEqual(["id", "title", "done", "assignee", "position", "createdAt", "updatedAt"]);
    expect(rows.map((row) => row[1]).sort()).toEqual([...board].sort());
    expect(csv).toContain('"Say ""hi"", then leave"');

    // Bob is a member of the project, but the file is Alice's: 404 for him, as for anyone signed out.
    const href = (await alice.getByTestId("export-download").getAttribute("href"))!;
    expect((await bob.context().request.get(`${server.url}${href}`)).status()).toBe(404);
    expect((await fetch(`${server.url}${href}`)).status).toBe(404);
    expect((await alice.context().request.get(`${server.url}${href}`)).headers()["content-type"]).toMatch(/^text\/csv/);
  }, 240_000);
});
