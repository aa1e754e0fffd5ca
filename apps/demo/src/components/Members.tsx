"use client";
import { useState, type FormEvent } from "react";
import { useLiveMutation, useLiveQuery, useTRPC } from "../lib/tether.ts";

/** Initials for an avatar: "Alice Liddell" → "AL". */
export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  return ((parts[0]?.[0] ?? "?") + (parts.length > 1 ? parts[parts.length - 1]![0] : "")).toUpperCase();
}

/** A stable colour per user id, for avatars and cursors. */
export function colorOf(id: string): string {
  let hash = 0;
  for (const char of id) hash = (hash * 31 + char.charCodeAt(0)) | 0;
  return `hsl(${Math.abs(hash) % 360} 65% 45%)`;
}

/** Who is on the project (live), and — for its owner — a form to share it by email. */
export function MembersPanel({ projectId, myId, ownerId }: { projectId: string; myId: string | undefined; ownerId: string }) {
  const trpc = useTRPC();
  const members = useLiveQuery(trpc.projects.members.queryOptions({ projectId }));
  const share = useLiveMutation(trpc.projects.share.mutationOptions());
  const unshare = useLiveMutation(trpc.projects.unshare.mutationOptions());
  const [email, setEmail] = useState("");
  const isOwner = myId !== undefined && myId === ownerId;

  async function onShare(event: FormEvent) {
    event.preventDefault();
    const value = email.trim();
    if (!value) return;
    try {
      await share.mutateAsync({ projectId, email: value });
      setEmail("");
    } catch {
      // shown below
    }
  }

  const error = share.error ?? unshare.error;
  return (
    <section className="card members" aria-label="Members">
      <h2>Members</h2>
      {!members.data ? (
        <p className="muted">Loading…</p>
      ) : (
        <ul className="member-list" data-testid="members">
          {members.data.map((member) => (
            <li key={member.id} className="member" data-testid="member" data-email={member.email}>
              <span className="avatar" style={{ background: colorOf(member.id) }} aria-hidden="true">
                {initials(member.name)}
              </span>
              <span className="member-name">
                {member.name}
                {member.id === myId && <span className="muted small"> (you)</span>}
              </span>
              {member.role === "owner" ? (
                <span className="badge">owner</span>
              ) : (
                (isOwner || member.id === myId) && (
                  <button
                    type="button"
                    className="icon"
                    aria-label={member.id === myId ? "Leave project" : `Remove ${member.name}`}
                    title={member.id === myId ? "Leave project" : `Remove ${member.name}`}
                    onClick={() => unshare.mutate({ projectId, userId: member.id })}
                  >
                    ×
                  </button>
                )
              )}
            </li>
          ))}
        </ul>
      )}
      {isOwner && (
        <form className="add-form" onSubmit={onShare} aria-label="Share the project">
          <input
            type="email"
            value={email}
            onChange={(e) => setEmail(e.target.value)}
            placeholder="teammate@example.com"
            aria-label="Share with (email)"
            maxLength={200}
          />
          <button className="button" type="submit" disabled={share.isPending || !email.trim()}>
            Share
          </button>
        </form>
      )}
      {error && (
        <p className="error" role="alert">
          {error.message}
        </p>
      )}
    </section>
  );
}
