import {
  useMutation,
  type DefaultError,
  type MutationFunctionContext,
  type QueryKey,
  type UseMutationOptions,
  type UseMutationResult,
} from "@tanstack/react-query";
import type { AnyRouter } from "@trpc/server";
import type { TetherClient } from "../core/client.ts";
import { CommitWaitTimeoutError } from "../core/live/index.ts";

export interface UseLiveMutationOptions {
  /**
   * Read-your-writes: the mutation resolves only once live queries reflect its commit.
   * `true` (default): every live query in use; a list: only those (query keys or query options);
   * `false`: resolve as soon as the server answers.
   */
  awaitLive?: boolean | readonly (QueryKey | { queryKey: QueryKey })[];
  /** Longest wait for the live queries, ms (default 10 000); the mutation then resolves anyway. */
  timeoutMs?: number;
}

/** `useLiveMutation` against a given Tether client (the React binding passes the provider's). */
export function useLiveMutationWith<TData = unknown, TError = DefaultError, TVariables = void, TOnMutateResult = unknown>(
  tether: TetherClient<AnyRouter>,
  options: UseMutationOptions<TData, TError, TVariables, TOnMutateResult>,
  liveOptions: UseLiveMutationOptions = {},
): UseMutationResult<TData, TError, TVariables, TOnMutateResult> {
  const awaitLive = liveOptions.awaitLive ?? true;
  const mutationFn = options.mutationFn;
  const path = (options as { trpc?: { path?: string } }).trpc?.path;
  return useMutation(
    {
      ...options,
      mutationFn: async (variables: TVariables, context: MutationFunctionContext) => {
        if (!mutationFn) throw new Error("useLiveMutation needs mutation options with a mutationFn: trpc.<path>.mutationOptions()");
        const capture = tether.commits.capture({ path, input: variables });
        let data: TData;
        let commits: string[];
        try {
          data = await mutationFn(variables, context);
          commits = capture.commits();
        } finally {
          capture.stop();
        }
        if (awaitLive !== false && commits.length > 0) {
          const queries = Array.isArray(awaitLive)
            ? (awaitLive as readonly (QueryKey | { queryKey: QueryKey })[]).map((q) => (isQueryKey(q) ? q : q.queryKey))
            : undefined;
          try {
            await tether.waitForCommit(commits, { queries, timeoutMs: liveOptions.timeoutMs });
          } catch (error) {
            // The write committed; only its echo is late. Resolve rather than report a failure.
            if (!(error instanceof CommitWaitTimeoutError)) throw error;
          }
        }
        return data;
      },
    },
    tether.queryClient,
  );
}

function isQueryKey(value: QueryKey | { queryKey: QueryKey }): value is QueryKey {
  return Array.isArray(value);
}
