"use client";
import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { reloadTo, signOut } from "../lib/auth.ts";
import { useTRPC } from "../lib/tether.ts";
import { ConnectionIndicator } from "./ConnectionIndicator.tsx";

export function Header() {
  const trpc = useTRPC();
  const me = useQuery(trpc.me.queryOptions());
  const [busy, setBusy] = useState(false);

  async function onSignOut() {
    setBusy(true);
    try {
      await signOut();
    } finally {
      reloadTo("/sign-in");
    }
  }

  return (
    <header className="header">
      <div className="header-inner">
        <Link href="/" className="brand">
          <span className="brand-mark" aria-hidden="true" />
          Tether
        </Link>
        <div className="header-right">
          <ConnectionIndicator />
          {me.data ? (
            <>
              <span className="user" data-testid="current-user" title={me.data.email}>
                {me.data.name}
              </span>
              <button type="button" className="button ghost" onClick={onSignOut} disabled={busy}>
                Sign out
              </button>
            </>
          ) : me.isSuccess ? (
            <>
              <Link href="/sign-in" className="button ghost">
                Sign in
              </Link>
              <Link href="/sign-up" className="button">
                Sign up
              </Link>
            </>
          ) : null}
        </div>
      </div>
    </header>
  );
}
