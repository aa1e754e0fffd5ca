// Exact incremental maintenance of live results: single-model findMany results updated from the
// change feed without a query, where that provably equals a re-run (else the group re-runs).
export { applyChanges } from "./apply.ts";
export { maintainableCall, maintainedList, type MaintainedList } from "./maintainable.ts";
export { loadColumnFacts, NO_COLUMN_FACTS, type ColumnFacts } from "./columnFacts.ts";
