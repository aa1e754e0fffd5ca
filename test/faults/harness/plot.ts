/**
 * Renders the soak's series (RSS, event-loop lag, feed lag over time) as a PNG: an SVG drawn here,
 * rasterized by resvg (a prebuilt binary from npm: no browser, no download at run time).
 */
import { writeFileSync } from "node:fs";
import { Resvg } from "@resvg/resvg-js";

export interface SoakPoint {
  /** Seconds since the soak started. */
  s: number;
  rssMb: number;
  eventLoopLagMs: number;
  /** Worst commit-ack → every-subscriber delay among the writes acknowledged in this second. */
  feedLagMs: number | null;
}

function panel(points: SoakPoint[], pick: (p: SoakPoint) => number | null, label: string, color: string, y0: number): string {
  const W = 900, H = 160, left = 60;
  const values = points.map(pick).filter((v): v is number => v !== null);
  const max = Math.max(1, ...values) * 1.1;
  const maxS = Math.max(1, ...points.map((p) => p.s));
  const path = points
    .filter((p) => pick(p) !== null)
    .map((p, i) => `${i ? "L" : "M"}${(left + (p.s / maxS) * (W - left - 10)).toFixed(1)},${(y0 + H - (pick(p)! / max) * H).toFixed(1)}`)
    .join(" ");
  return `<text x="${left}" y="${y0 - 6}" font-size="13">${label} (max ${Math.max(0, ...values).toFixed(1)})</text>
  <line x1="${left}" y1="${y0 + H}" x2="${W - 10}" y2="${y0 + H}" stroke="#999"/><line x1="${left}" y1="${y0}" x2="${left}" y2="${y0 + H}" stroke="#999"/>
  <text x="4" y="${y0 + 10}" font-size="11">${max.toFixed(0)}</text><text x="4" y="${y0 + H}" font-size="11">0</text>
  <text x="${W - 60}" y="${y0 + H + 14}" font-size="11">${maxS.toFixed(0)} s</text>
  <path d="${path}" fill="none" stroke="${color}" stroke-width="1.5"/>`;
}

export function renderSoakPng(points: SoakPoint[], title: string, file: string): void {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="920" height="640" font-family="sans-serif">
  <rect width="100%" height="100%" fill="white"/><text x="60" y="22" font-size="15" font-weight="bold">${title}</text>
  ${panel(points, (p) => p.rssMb, "Node RSS, MB", "#1f77b4", 50)}
  ${panel(points, (p) => p.eventLoopLagMs, "Event-loop lag (max per second), ms", "#d62728", 250)}
  ${panel(points, (p) => p.feedLagMs, "Feed lag: commit ack → every subscriber (max per second), ms", "#2ca02c", 450)}
  </svg>`;
  writeFileSync(file, new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" } }).render().asPng());
}
