/** better-auth's email + password endpoints (served by the demo's server at /api/auth/*). */
async function post(path: string, body: unknown): Promise<void> {
  const response = await fetch(`/api/auth${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    const data = (await response.json().catch(() => null)) as { message?: string } | null;
    throw new Error(data?.message || `Request failed (${response.status})`);
  }
}

export const signIn = (email: string, password: string) => post("/sign-in/email", { email, password });
export const signUp = (name: string, email: string, password: string) => post("/sign-up/email", { name, email, password });
export const signOut = () => post("/sign-out", {});

/**
 * After signing in or out the page is loaded anew: the WebSocket's identity is fixed when it
 * connects (its upgrade request carries the cookie), so a fresh connection picks up the new one.
 */
export function reloadTo(path: string): void {
  window.location.assign(path);
}
