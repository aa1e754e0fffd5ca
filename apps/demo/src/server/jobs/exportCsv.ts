import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import type { JobBuilder } from "@tether/server";
import type { PrismaClient } from "../../../../../generated/prisma/client.ts";
import type { DemoJobLimits } from "./config.ts";
import { csvRecord } from "./csv.ts";

/** The CSV's header, and the order of every record's fields. */
export const EXPORT_COLUMNS = ["id", "title", "done", "assignee", "position", "createdAt", "updatedAt"] as const;

/** Where an export is downloaded (served by exportDownload.ts, to its owner only). */
export const exportUrl = (exportId: string) => `/exports/${encodeURIComponent(exportId)}.csv`;

/**
 * "Export project as CSV": reads the project's tasks in batches (a big project's rows are never
 * loaded at once; the CSV text is, as it goes into one column), reports progress per batch, and
 * writes the file into the ProjectExport row the mutation created. At-least-once: a retry starts over
 * and overwrites the same row, so running twice leaves one correct file.
 */
export function exportCsvJob(job: JobBuilder<PrismaClient, undefined, undefined>, limits: DemoJobLimits) {
  return job
    .input(z.object({ exportId: z.string().min(1).max(100) }))
    .options({ retries: limits.exportRetries, timeoutSeconds: limits.exportTimeoutSeconds })
    .handler(async ({ ctx, input, progress, signal }) => {
      const target = await ctx.db.projectExport.findUnique({ where: { id: input.exportId }, select: { id: true, projectId: true } });
      // Deleted with its project while queued: nothing to write (not an error worth retrying).
      if (!target) return { exportId: input.exportId, rows: 0, url: null };
      const where = { projectId: target.projectId };
      const total = await ctx.db.task.count({ where });
      await progress(0, `0 of ${total} tasks`);
      let csv = csvRecord(EXPORT_COLUMNS);
      let rows = 0;
      let cursor: string | undefined;
      for (;;) {
        signal.throwIfAborted();
        const batch = await ctx.db.task.findMany({
          where,
          orderBy: [{ position: "asc" }, { id: "asc" }],
          take: limits.exportBatchSize,
          ...(cursor ? { cursor: { id: cursor }, skip: 1 } : {}),
          select: { id: true, title: true, done: true, position: true, createdAt: true, updatedAt: true, assignee: { select: { name: true } } },
        });
        for (const task of batch) {
          csv += csvRecord([task.id, task.title, task.done, task.assignee?.name ?? "", task.position, task.createdAt, task.updatedAt]);
        }
        rows += batch.length;
        cursor = batch.at(-1)?.id;
        if (batch.length < limits.exportBatchSize) break;
        // Tasks added during the export can push the count past the first total: never past 99 here.
        await progress(Math.min(99, Math.floor((rows * 100) / Math.max(total, 1))), `${rows} of ${Math.max(total, rows)} tasks`);
        if (limits.exportPauseMs > 0) await sleep(limits.exportPauseMs, undefined, { signal });
      }
      await ctx.db.projectExport.update({ where: { id: target.id }, data: { status: "ready", csv, rows } });
      await progress(100, `${rows} tasks exported`);
      return { exportId: target.id, rows, url: exportUrl(target.id) };
    });
}
