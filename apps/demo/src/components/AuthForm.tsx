"use client";
import Link from "next/link";
import { useState, type FormEvent } from "react";
import { reloadTo, signIn, signUp } from "../lib/auth.ts";

export function AuthForm({ mode }: { mode: "sign-in" | "sign-up" }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const signingUp = mode === "sign-up";

  async function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const email = String(form.get("email") ?? "").trim();
    const password = String(form.get("password") ?? "");
    setBusy(true);
    setError(null);
    try {
      if (signingUp) await signUp(String(form.get("name") ?? "").trim() || email.split("@")[0]!, email, password);
      else await signIn(email, password);
      reloadTo("/");
    } catch (caught) {
      setError((caught as Error).message);
      setBusy(false);
    }
  }

  return (
    <div className="auth card">
      <h1>{signingUp ? "Create an account" : "Sign in"}</h1>
      {!signingUp && (
        <p className="muted">
          Try the demo account: <code>demo@tether.dev</code> / <code>demo-password</code>
        </p>
      )}
      <form onSubmit={onSubmit} className="stack" aria-label={signingUp ? "Sign up" : "Sign in"}>
        {signingUp && (
          <label className="field">
            <span>Name</span>
            <input name="name" autoComplete="name" maxLength={80} />
          </label>
        )}
        <label className="field">
          <span>Email</span>
          <input name="email" type="email" autoComplete="email" required />
        </label>
        <label className="field">
          <span>Password</span>
          <input name="password" type="password" autoComplete={signingUp ? "new-password" : "current-password"} minLength={8} required />
        </label>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button className="button" type="submit" disabled={busy}>
          {signingUp ? "Sign up" : "Sign in"}
        </button>
      </form>
      <p className="muted small">
        {signingUp ? (
          <>
            Already have an account? <Link href="/sign-in">Sign in</Link>
          </>
        ) : (
          <>
            New here? <Link href="/sign-up">Create an account</Link>
          </>
        )}
      </p>
    </div>
  );
}
