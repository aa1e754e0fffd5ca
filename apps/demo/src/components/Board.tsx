"use client";
import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { useEffect, useState, type FormEvent } from "react";
import { errorCode } from "../lib/errors.ts";
import { useLiveMutation, useLiveQuery, useTRPC } from "../lib/tether.ts";
import { ExportPanel } from "./ExportPanel.tsx";
import { InboxPanel } from "./Inbox.tsx";
import { MembersPanel } from "./Members.tsx";
import { NotePanel } from "./NotePanel.tsx";
import { WelcomePanel } from "./WelcomePanel.tsx";

type Filter = "all" | "open" | "done" | "mine";
const FILTERS: Array<{ value: Filter; label: string }> = [
  { value: "all", label: "All" },
  { value: "open", label: "Open" },
  { value: "done", label: "Done" },
  { value: "mine", label: "Mine" },
];

export function Board({ projectId }: { projectId: string }) {
  const trpc = useTRPC();
  const me = useQuery(trpc.me.queryOptions());
  // A hidden or missing project is NOT_FOUND: no point retrying that.
  const project = useLiveQuery(
    trpc.projects.get.queryOptions({ id: projectId }, { retry: (count, error) => count < 2 && !errorCode(error) }),
  );

  if (me.isSuccess && !me.data) {
    return (
      <div className="card notice">
        <h1>Sign in to see this project</h1>
        <Link href="/sign-in" className="button">
          Sign in
        </Link>
      </div>
    );
  }
  if (project.error) {
    const notFound = errorCode(project.error) === "NOT_FOUND";
    return (
      <div className="card notice" data-testid={notFound ? "not-found" : "board-error"}>
        <h1>{notFound ? "Project not found" : "Something went wrong"}</h1>
        <p className="muted">{notFound ? "It does not exist, or it is not shared with you." : project.error.message}</p>
        <Link href="/" className="button ghost">
          Back to projects
        </Link>
      </div>
    );
  }
  if (!project.data) return <p className="muted">Loading…</p>;

  return (
    <div className="board">
      <div className="page-title">
        <Link href="/" className="muted small">
          ← Projects
        </Link>
        <h1 data-testid="project-name">{project.data.name}</h1>
      </div>
      <div className="board-grid">
        <div className="main-column">
          <TaskPanel projectId={projectId} myId={me.data?.id} />
          {project.data.note && me.data && <NotePanel projectId={projectId} noteId={project.data.note.id} me={me.data} />}
        </div>
        <div className="side">
          <MembersPanel projectId={projectId} myId={me.data?.id} ownerId={project.data.ownerId} />
          <ExportPanel projectId={projectId} />
          <ActivityFeed projectId={projectId} />
          <WelcomePanel />
          <InboxPanel />
        </div>
      </div>
    </div>
  );
}

function TaskPanel({ projectId, myId }: { projectId: string; myId: string | undefined }) {
  const trpc = useTRPC();
  const [filter, setFilter] = useState<Filter>("all");
  const [title, setTitle] = useState("");
  const tasks = useLiveQuery(trpc.tasks.byProject.queryOptions({ projectId, filter }));
  const add = useLiveMutation(trpc.tasks.add.mutationOptions());
  const setDone = useLiveMutation(trpc.tasks.setDone.mutationOptions());
  const reorder = useLiveMutation(trpc.tasks.reorder.mutationOptions());
  const error = add.error ?? setDone.error ?? reorder.error;

  async function onAdd(event: FormEvent) {
    event.preventDefault();
    const value = title.trim();
    if (!value) return;
    setTitle("");
    try {
      await add.mutateAsync({ projectId, title: value });
    } catch {
      setTitle(value);
    }
  }

  const rows = tasks.data ?? [];
  return (
    <section className="card tasks" aria-label="Tasks">
      <div className="tasks-head">
        <h2>Tasks</h2>
        <div className="filters" role="group" aria-label="Filter tasks">
          {FILTERS.map((f) => (
            <button
              key={f.value}
              type="button"
              className={`chip${filter === f.value ? " active" : ""}`}
              aria-pressed={filter === f.value}
              data-testid={`filter-${f.value}`}
              onClick={() => setFilter(f.value)}
            >
              {f.label}
            </button>
          ))}
        </div>
      </div>
      <form className="add-form" onSubmit={onAdd} aria-label="Add a task">
        <input value={title} onChange={(e) => setTitle(e.target.value)} placeholder="Add a task…" aria-label="New task title" maxLength={200} />
        <button className="button" type="submit" disabled={!title.trim()}>
          Add
        </button>
      </form>
      {error && (
        <p className="error" role="alert">
          {error.message}
        </p>
      )}
      {tasks.isPending ? (
        <p className="muted">Loading…</p>
      ) : rows.length === 0 ? (
        <p className="muted empty" data-testid="no-tasks">
          {filter === "all" ? "No tasks yet." : "Nothing here."}
        </p>
      ) : (
        <ul className="task-list" data-testid="tasks" data-filter={filter} data-live={tasks.liveStatus}>
          {rows.map((task, index) => (
            <li key={task.id} className={`task${task.done ? " done" : ""}`} data-testid="task" data-title={task.title} data-done={task.done}>
              <label className="task-main">
                <input
                  type="checkbox"
                  checked={task.done}
                  onChange={(e) => setDone.mutate({ id: task.id, done: e.target.checked })}
                  aria-label={`Done: ${task.title}`}
                />
                <span className="task-title">{task.title}</span>
              </label>
              {task.assigneeId && task.assigneeId === myId && <span className="badge">mine</span>}
              <span className="task-actions">
                <button
                  type="button"
                  className="icon"
                  aria-label={`Move up: ${task.title}`}
                  disabled={index === 0 || filter !== "all"}
                  onClick={() => reorder.mutate({ id: task.id, direction: "up" })}
                >
                  ↑
                </button>
                <button
                  type="button"
                  className="icon"
                  aria-label={`Move down: ${task.title}`}
                  disabled={index === rows.length - 1 || filter !== "all"}
                  onClick={() => reorder.mutate({ id: task.id, direction: "down" })}
                >
                  ↓
                </button>
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** "12s ago", refreshed every few seconds. */
function useNow(intervalMs = 5000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}

function ago(date: Date, now: number): string {
  const seconds = Math.max(0, Math.round((now - date.getTime()) / 1000));
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

function ActivityFeed({ projectId }: { projectId: string }) {
  const trpc = useTRPC();
  const activity = useLiveQuery(trpc.activity.recent.queryOptions({ projectId }));
  const now = useNow();
  return (
    <aside className="card activity" aria-label="Activity">
      <h2>Activity</h2>
      {!activity.data ? (
        <p className="muted">Loading…</p>
      ) : activity.data.length === 0 ? (
        <p className="muted empty">Nothing yet.</p>
      ) : (
        <ol className="feed" data-testid="activity">
          {activity.data.map((task) => {
            const created = task.updatedAt.getTime() - task.createdAt.getTime() < 1000;
            const verb = created ? "added" : task.done ? "completed" : "updated";
            return (
              <li key={task.id} className={`feed-item ${verb}`}>
                <span className="feed-verb">{verb}</span> <span className="feed-title">{task.title}</span>
                {/* Rendered on the server and again in the browser a moment later: "4s ago" may
                    differ by then, which is expected, not a hydration bug (React's documented escape). */}
                <time className="muted small" dateTime={task.updatedAt.toISOString()} suppressHydrationWarning>
                  {ago(task.updatedAt, now)}
                </time>
              </li>
            );
          })}
        </ol>
      )}
    </aside>
  );
}
