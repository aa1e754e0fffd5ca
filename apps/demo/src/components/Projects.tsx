"use client";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useQuery } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useLiveMutation, useLiveQuery, useTRPC } from "../lib/tether.ts";
import { InboxPanel } from "./Inbox.tsx";
import { WelcomePanel } from "./WelcomePanel.tsx";

export function ProjectsPage() {
  const trpc = useTRPC();
  const me = useQuery(trpc.me.queryOptions());
  if (me.isPending) return <p className="muted">Loading…</p>;
  if (!me.data) return <Welcome />;
  return <ProjectList />;
}

function Welcome() {
  return (
    <section className="card hero">
      <h1>Realtime projects on tRPC + Prisma</h1>
      <p className="muted">
        Every task you add, complete or move shows up at once in every open tab — Tether re-runs exactly the live queries a
        committed write affects and pushes the result.
      </p>
      <div className="row">
        <Link href="/sign-in" className="button">
          Sign in
        </Link>
        <Link href="/sign-up" className="button ghost">
          Create an account
        </Link>
      </div>
      <p className="muted small">
        Demo account: <code>demo@tether.dev</code> / <code>demo-password</code>
      </p>
    </section>
  );
}

function ProjectList() {
  const trpc = useTRPC();
  const router = useRouter();
  const me = useQuery(trpc.me.queryOptions());
  const projects = useLiveQuery(trpc.projects.list.queryOptions());
  const create = useLiveMutation(trpc.projects.create.mutationOptions());
  const [name, setName] = useState("");

  async function onCreate(event: FormEvent) {
    event.preventDefault();
    if (!name.trim()) return;
    const project = await create.mutateAsync({ name });
    setName("");
    router.push(`/projects/${project.id}`);
  }

  return (
    <section>
      <div className="page-title">
        <h1>Projects</h1>
      </div>
      <form className="add-form card" onSubmit={onCreate} aria-label="New project">
        <input
          value={name}
          onChange={(e) => setName(e.target.value)}
          placeholder="New project name"
          aria-label="New project name"
          maxLength={80}
        />
        <button className="button" type="submit" disabled={create.isPending || !name.trim()}>
          Create project
        </button>
      </form>
      {create.error && (
        <p className="error" role="alert">
          {create.error.message}
        </p>
      )}
      {projects.isPending ? (
        <p className="muted">Loading…</p>
      ) : projects.error ? (
        <p className="error">{projects.error.message}</p>
      ) : projects.data.length === 0 ? (
        <p className="muted empty">No projects yet: create one above.</p>
      ) : (
        <ul className="project-grid" data-testid="projects">
          {projects.data.map((project) => {
            const done = project.tasks.filter((t) => t.done).length;
            const total = project.tasks.length;
            return (
              <li key={project.id}>
                <Link href={`/projects/${project.id}`} className="card project-card">
                  <span className="project-name">{project.name}</span>
                  {project.ownerId !== me.data?.id && (
                    <span className="muted small" data-testid="shared-by">
                      shared by {project.owner.name}
                    </span>
                  )}
                  <span className="muted small">
                    {done}/{total} done
                  </span>
                  <span className="progress" aria-hidden="true">
                    <span style={{ width: `${total ? Math.round((done / total) * 100) : 0}%` }} />
                  </span>
                </Link>
              </li>
            );
          })}
        </ul>
      )}
      <WelcomePanel />
      <InboxPanel />
    </section>
  );
}
