import { createContext, createElement, useContext, useEffect, useRef, useState, type ReactNode } from "react";
import {
  QueryClientProvider,
  type DefaultError,
  type QueryKey,
  type UseMutationOptions,
  type UseMutationResult,
} from "@tanstack/react-query";
import { createTRPCContext } from "@trpc/tanstack-react-query";
import type { AnyRouter } from "@trpc/server";
import { createTetherClient, type TetherClient, type TetherClientOptions } from "../core/client.ts";
import type { ConnectionStatus } from "../core/connection.ts";
import { useConnectionStatusWith } from "./useConnectionStatus.ts";
import { useCrdtDocWith, type UseCrdtDocOptions, type UseCrdtDocResult } from "./useCrdtDoc.ts";
import { useJobWith, type UseJobResult } from "./useJob.ts";
import { useWorkflowWith, type UseWorkflowResult } from "./useWorkflow.ts";
import { useLiveMutationWith, type UseLiveMutationOptions } from "./useLiveMutation.ts";
import { usePresenceWith, type UsePresenceResult } from "./usePresence.ts";
import {
  useLiveQueryWith,
  type LiveQueryOptions,
  type UseLiveQueryOptions,
  type UseLiveQueryResult,
} from "./useLiveQuery.ts";

export type TetherProviderProps<TRouter extends AnyRouter> = { children?: ReactNode } & (
  | {
      /** A client made with `createTetherClient` (tests, or one client shared beyond React). */
      client: TetherClient<TRouter>;
    }
  | ({ client?: undefined } & TetherClientOptions)
);

/**
 * React bindings for one app router:
 *
 * ```tsx
 * export const { TetherProvider, useTRPC, useLiveQuery, useLiveMutation, useConnectionStatus } =
 *   createTetherReact<AppRouter>();
 * ```
 *
 * `TetherProvider` sets up TanStack Query's and tRPC's providers too, so `useTRPC()` gives
 * `trpc.path.queryOptions(input)` / `mutationOptions()` for the ordinary TanStack hooks.
 */
export function createTetherReact<TRouter extends AnyRouter>() {
  const { TRPCProvider, useTRPC, useTRPCClient } = createTRPCContext<TRouter>();
  const TetherContext = createContext<TetherClient<TRouter> | null>(null);

  function TetherProvider(props: TetherProviderProps<TRouter>) {
    // A client the provider made is its to close; one passed in belongs to the caller.
    const [owned] = useState(() => (props.client ? null : createTetherClient<TRouter>(props as TetherClientOptions)));
    const client = props.client ?? owned!;
    const closing = useRef<ReturnType<typeof setTimeout> | null>(null);
    useEffect(() => {
      if (!owned) return;
      if (closing.current) clearTimeout(closing.current);
      closing.current = null;
      return () => {
        // Deferred: StrictMode unmounts and remounts at once, and must find the client working.
        closing.current = setTimeout(() => void owned.close(), 0);
      };
    }, [owned]);
    return createElement(
      TetherContext.Provider,
      { value: client },
      createElement(
        QueryClientProvider,
        { client: client.queryClient },
        createElement(TRPCProvider, { trpcClient: client.trpc, queryClient: client.queryClient, children: props.children }),
      ),
    );
  }

  function useTetherClient(): TetherClient<TRouter> {
    const client = useContext(TetherContext);
    if (!client) throw new Error("Tether hooks must be used inside <TetherProvider>");
    return client;
  }

  /**
   * `useQuery` that stays live: `useLiveQuery(trpc.tasks.byProject.queryOptions({ projectId }))`.
   * Same cache entry as `useQuery(sameOptions)`; adds `liveStatus` and `position`.
   */
  function useLiveQuery<TQueryFnData, TError = DefaultError, TData = TQueryFnData, TQueryKey extends QueryKey = QueryKey>(
    options: LiveQueryOptions<TQueryFnData, TError, TData, TQueryKey>,
    liveOptions?: UseLiveQueryOptions,
  ): UseLiveQueryResult<TData, TError> {
    return useLiveQueryWith(useTetherClient(), options, liveOptions);
  }

  /**
   * `useMutation` with read-your-writes: `useLiveMutation(trpc.tasks.add.mutationOptions())`
   * resolves once the live queries in use (or `awaitLive: [...]`) show the write.
   */
  function useLiveMutation<TData = unknown, TError = DefaultError, TVariables = void, TOnMutateResult = unknown>(
    options: UseMutationOptions<TData, TError, TVariables, TOnMutateResult>,
    liveOptions?: UseLiveMutationOptions,
  ): UseMutationResult<TData, TError, TVariables, TOnMutateResult> {
    return useLiveMutationWith(useTetherClient(), options, liveOptions);
  }

  /** The subscription transport's state (idle, connecting, connected, reconnecting) and online flag. */
  function useConnectionStatus(): ConnectionStatus {
    return useConnectionStatusWith(useTetherClient());
  }

  /**
   * A collaborative field's live `LoroDoc`: `useCrdtDoc({ model: "Note", id, field: "body" })` →
   * `{ doc, text, status, pending, error }`. Edit `doc.getText("body")`, then `doc.commit()`.
   * See docs/crdt-client.md.
   */
  function useCrdtDoc(options: UseCrdtDocOptions): UseCrdtDocResult {
    return useCrdtDocWith(useTetherClient(), options);
  }

  /**
   * Who is in `room` and their state: `usePresence<{ name: string }>("note:1", { name })` →
   * `{ peers: [{ clientId, state, self }], setState, status, clientId, error }`. See docs/presence.md.
   */
  function usePresence<State>(room: string, myState?: State): UsePresenceResult<State> {
    return usePresenceWith<State>(useTetherClient(), room, myState);
  }

  /**
   * A background job's live state: `useJob(jobId)` → `{ job: { status, progress, message, output,
   * error, attempts }, liveStatus, cancel() }`. Only the job's owner (or an admin) gets it; anyone
   * else gets NOT_FOUND (`liveStatus: "error"`). See docs/jobs.md.
   */
  function useJob<Output = unknown>(id: string | null | undefined): UseJobResult<Output> {
    return useJobWith<Output>(useTetherClient(), id);
  }

  /**
   * A durable workflow's live state: `useWorkflow(runId)` → `{ workflow: { status, currentStep,
   * steps: [{ name, status, result, attempts, startedAt, finishedAt }], output, error },
   * liveStatus, cancel() }`. Owner (or admin) only; anyone else gets NOT_FOUND. See docs/workflows.md.
   */
  function useWorkflow<Output = unknown>(id: string | null | undefined): UseWorkflowResult<Output> {
    return useWorkflowWith<Output>(useTetherClient(), id);
  }

  return {
    TetherProvider,
    useJob,
    useWorkflow,
    useTRPC,
    useTRPCClient,
    useTetherClient,
    useLiveQuery,
    useLiveMutation,
    useConnectionStatus,
    useCrdtDoc,
    usePresence,
    /** `createTetherClient` typed for this router, for a client made outside React. */
    createClient: (options: TetherClientOptions) => createTetherClient<TRouter>(options),
  };
}
