import { HydrationBoundary } from "@tanstack/react-query";
import { ProjectsPage } from "../src/components/Projects.tsx";
import { prefetchPage } from "../src/lib/prefetch.ts";

export default async function Home() {
  const state = await prefetchPage((trpc) => [trpc.projects.list.queryOptions(), trpc.inbox.list.queryOptions()]);
  return (
    <HydrationBoundary state={state}>
      <ProjectsPage />
    </HydrationBoundary>
  );
}
