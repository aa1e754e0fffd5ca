import { TRPCClientError } from "@trpc/client";

/** The tRPC error code of a call ("OK" when it resolved), or a marker for a non-tRPC failure. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "OK";
  } catch (error) {
    if (error instanceof TRPCClientError) {
      const c = (error.data as { code?: string } | undefined)?.code ?? "no-code";
      if (process.env.REDWF_DEBUG) console.log(c, error.message.slice(0, 300));
      return c;
    }
    return `non-trpc: ${String(error)}`;
  }
}
