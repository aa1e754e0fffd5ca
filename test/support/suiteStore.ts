import { afterAll, beforeAll } from "vitest";
import type { Engine } from "@tether/server";
import { createTestStore, type AppStore } from "./databases.ts";

/**
 * One migrated test store for a describe block: made before its tests (handed to `use`), closed
 * after them. `let store: AppStore; storeForSuite(engine, (s) => (store = s));`
 */
export function storeForSuite(engine: Engine, use: (store: AppStore) => void): void {
  let close: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const made = await createTestStore(engine);
    use(made.store);
    close = made.close;
  });
  afterAll(() => close?.());
}
