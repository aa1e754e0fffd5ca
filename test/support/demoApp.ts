import { createTetherAuth, type Engine, type TetherAuth } from "@tether/server";
import { buildRouter } from "../../apps/demo/src/server/router.ts";
import { schema } from "../../generated/tether/index.ts";
import { createTestStore, type AppStore } from "./databases.ts";

export interface DemoApp {
  store: AppStore;
  auth: TetherAuth;
  app: ReturnType<typeof buildRouter>;
  /** Closes the router's Tether, the auth binding and the store (dropping its database). */
  close(): Promise<void>;
}

/** The demo's router on a fresh migrated store of `engine`, with its auth binding. */
export async function openDemoApp(engine: Engine, secret: string): Promise<DemoApp> {
  const made = await createTestStore(engine);
  const auth = createTetherAuth({ store: made.store, schema, secret });
  const app = buildRouter(made.store, auth);
  return {
    store: made.store,
    auth,
    app,
    async close() {
      await app.tether.close();
      auth.close();
      await made.close();
    },
  };
}
