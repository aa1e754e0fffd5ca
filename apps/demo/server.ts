/**
 * `npm run dev` / `npm start`: the demo's one process (Next.js, tRPC over HTTP and WebSocket,
 * better-auth, the embedded database). See src/server/app.ts.
 */
import { startDemo } from "./src/server/app.ts";

const demo = await startDemo();

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  demo.log.info({ signal }, "shutting down");
  const force = setTimeout(() => process.exit(1), 5000);
  force.unref();
  try {
    await demo.close();
  } finally {
    process.exit(0);
  }
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));
