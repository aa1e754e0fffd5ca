"use client";
import { useLiveQuery, useTRPC } from "../lib/tether.ts";

/** The signed-in user's messages, live: a job's message (the welcome after sign-up) appears by itself. */
export function InboxPanel() {
  const trpc = useTRPC();
  const messages = useLiveQuery(trpc.inbox.list.queryOptions());
  return (
    <section className="card inbox" aria-label="Inbox">
      <h2>Inbox</h2>
      {messages.isPending ? (
        <p className="muted">Loading…</p>
      ) : messages.error ? (
        <p className="error">{messages.error.message}</p>
      ) : messages.data.length === 0 ? (
        <p className="muted empty" data-testid="inbox-empty">
          No messages yet.
        </p>
      ) : (
        <ul className="message-list" data-testid="inbox">
          {messages.data.map((message) => (
            <li key={message.id} className="message" data-testid="message" data-title={message.title}>
              <strong>{message.title}</strong>
              <p className="muted small">{message.body}</p>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
