export { initTether } from "./initTether.ts";
export type { Tether, TetherOptions, TetherPrismaClient, TransactionClient } from "./initTether.ts";
export { commitsOf, takeCommits, COMMIT_HEADER } from "./commits.ts";
