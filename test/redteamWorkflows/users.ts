/**
 * Real users over the real server: sign up through better-auth's HTTP endpoint, then a Tether
 * client that carries the session cookie on HTTP and its token on the WebSocket.
 */
import { randomBytes } from "node:crypto";
import { createTetherClient, type TetherClient } from "@tether/client";
import WebSocket from "ws";
import type { RedRouter } from "./app.ts";

export interface RedUser {
  id: string;
  email: string;
  cookie: string;
  client: TetherClient<RedRouter>;
}

export async function signUp(url: string, name = "u"): Promise<RedUser> {
  const email = `${name}-${randomBytes(4).toString("hex")}@redteam.test`;
  const res = await fetch(`${url}/api/auth/sign-up/email`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password: "redteam-password-1", name }),
  });
  if (!res.ok) throw new Error(`sign-up failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { user: { id: string } };
  const setCookie = res.headers.getSetCookie();
  const cookie = setCookie.map((c) => c.split(";")[0] ?? "").join("; ");
  const token = decodeURIComponent(setCookie.map((c) => c.split(";")[0] ?? "").find((c) => c?.includes("session_token"))!.split("=").slice(1).join("="));
  const client = createTetherClient<RedRouter>({
    url: `${url}/trpc`,
    headers: { cookie },
    subscriptions: { transport: "ws", url: `${url.replace("http", "ws")}/trpc`, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket, connectionParams: { token } },
  });
  return { id: body.user.id, email, cookie, client };
}

/** An anonymous client. */
export function anonymous(url: string): TetherClient<RedRouter> {
  return createTetherClient<RedRouter>({
    url: `${url}/trpc`,
    subscriptions: { transport: "ws", url: `${url.replace("http", "ws")}/trpc`, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket },
  });
}
