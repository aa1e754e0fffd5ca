/**
 * GET /exports/<id>.csv: a finished CSV export, to the user who asked for it. Anyone else — signed
 * out, another user, a teammate on the same project — gets the same 404 as for an id that does not
 * exist, so ids cannot be probed.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TetherAuth } from "@tether/server";
import type { DemoStore } from "./store.ts";

const EXPORT_PATH = /^\/exports\/([^/]+)\.csv$/;

/** A file name safe in a header: the project's name, plain characters only. */
function fileNameOf(projectName: string): string {
  const base = projectName.normalize("NFKD").replace(/[^\w.-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 60);
  return `${base || "project"}-tasks.csv`;
}

function notFound(res: ServerResponse): true {
  res.writeHead(404, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" }).end("Not found");
  return true;
}

/** Handles the request if it is an export download (returns true), else leaves it (false). */
export async function serveExportDownload(req: IncomingMessage, res: ServerResponse, store: DemoStore, auth: TetherAuth): Promise<boolean> {
  const path = (req.url ?? "/").split("?")[0]!;
  const match = EXPORT_PATH.exec(path);
  if (!match) return false;
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" }).end();
    return true;
  }
  let id: string;
  try {
    id = decodeURIComponent(match[1]!);
  } catch {
    return notFound(res);
  }
  const identity = await auth.sessionFromHeaders(req.headers);
  if (!identity) return notFound(res);
  // System read with the owner in the where: the same rule as the ProjectExport policy.
  const found = await store.db.projectExport.findFirst({
    where: { id, ownerId: identity.user.id, status: "ready" },
    select: { csv: true, project: { select: { name: true } } },
  });
  if (!found || found.csv === null) return notFound(res);
  const body = Buffer.from(found.csv, "utf8");
  res.writeHead(200, {
    "content-type": "text/csv; charset=utf-8; header=present",
    "content-disposition": `attachment; filename="${fileNameOf(found.project.name)}"`,
    "content-length": body.length,
    "cache-control": "private, no-store",
    "x-content-type-options": "nosniff",
  });
  res.end(req.method === "HEAD" ? undefined : body);
  return true;
}
