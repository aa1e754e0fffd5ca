import { HydrationBoundary } from "@tanstack/react-query";
import { Board } from "../../../src/components/Board.tsx";
import { prefetchPage } from "../../../src/lib/prefetch.ts";

export default async function ProjectPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  // Server-rendered with the board's data, then kept live by the same queries in the browser.
  const state = await prefetchPage((trpc) => [
    trpc.projects.get.queryOptions({ id }),
    trpc.tasks.byProject.queryOptions({ projectId: id, filter: "all" }),
    trpc.activity.recent.queryOptions({ projectId: id }),
    trpc.projects.members.queryOptions({ projectId: id }),
    trpc.notes.text.queryOptions({ projectId: id }),
    trpc.exports.latest.queryOptions({ projectId: id }),
    trpc.inbox.list.queryOptions(),
  ]);
  return (
    <HydrationBoundary state={state}>
      <Board projectId={id} />
    </HydrationBoundary>
  );
}
