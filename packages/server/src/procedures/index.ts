export { initTether } from "./initTether.ts";
export type { Tether, TetherOptions, TetherPrismaClient, TransactionClient } from "./initTether.ts";
export type { DataTransformerOptions } from "./liveTransformer.ts";
export { commitsOf, takeCommits, COMMIT_HEADER } from "./commits.ts";
