// Prisma's WASM query compiler runtime ships without typings: the one member the plan cache uses.
declare module "@prisma/client/runtime/query_compiler_bg.postgresql.mjs" {
  export const QueryCompiler: { prototype: { compile(request: string): unknown } };
}
