export { createCrdt } from "./createCrdt.ts";
export { encodeBase64 } from "./codec.ts";
export type { Crdt, CrdtDeps } from "./createCrdt.ts";
export { crdtPullInput, crdtPushInput, crdtStreamInput, DEFAULT_CRDT_OPTIONS } from "./types.ts";
export type {
  CrdtOptions,
  CrdtPullInput,
  CrdtPushInput,
  CrdtPushResult,
  CrdtStats,
  CrdtStreamInput,
  CrdtUpdateMessage,
} from "./types.ts";
