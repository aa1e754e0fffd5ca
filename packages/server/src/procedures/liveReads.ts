import { AsyncLocalStorage } from "node:async_hooks";
import type { ReadSetRecorder } from "../reactor/index.ts";

/**
 * The ReadSet recorder of the live execution in progress, if any. One Prisma extension serves
 * every execution: it records into whatever recorder the current async context carries, so no
 * client is built per execution.
 */
export const liveReads = new AsyncLocalStorage<ReadSetRecorder>();
