/**
 * Strings Postgres can store. JSON may carry a lone UTF-16 surrogate (`"\ud800"`), JavaScript
 * keeps it, but Prisma's query protocol and Postgres reject it deep inside a query, as an
 * unclassified engine error: without this check a client's typo in a title became a 500 (and an
 * error-level log line) on every transport. Checked on the raw input of every Tether procedure,
 * before validation, so the caller gets BAD_REQUEST.
 */

/** The first string or key in `value` that is not well-formed UTF-16, as a path; null when all are. */
export function illFormedTextAt(value: unknown): string | null {
  return textAt(value, isWellFormed);
}

/**
 * Well-formed and free of NUL (`\u0000`): what Postgres text and jsonb can hold. For values that
 * go into the database as JSON without a schema in between (a job's input and output).
 */
export function unstorableTextAt(value: unknown, root = "input"): string | null {
  return textAt(value, (text) => !text.includes("\u0000") && isWellFormed(text), root);
}

/** `text` as Postgres text can hold it: NUL and lone surrogates replaced by U+FFFD. */
export function toStorableText(text: string): string {
  const wellFormed = isWellFormed(text) ? text : text.replace(new RegExp(LONE_SURROGATE.source, "g"), "\uFFFD");
  return wellFormed.replaceAll("\u0000", "\uFFFD");
}

/** The first string or key in `value` that `accept` refuses, as a path; null when all pass. */
function textAt(value: unknown, accept: (text: string) => boolean, root = "input"): string | null {
  // An explicit stack, never recursion: the input's depth is the client's choice.
  const stack: Array<[unknown, string]> = [[value, root]];
  while (stack.length > 0) {
    const [item, path] = stack.pop()!;
    if (typeof item === "string") {
      if (!accept(item)) return path;
    } else if (Array.isArray(item)) {
      for (let i = 0; i < item.length; i += 1) stack.push([item[i], `${path}[${i}]`]);
    } else if (item !== null && typeof item === "object") {
      for (const [key, child] of Object.entries(item)) {
        if (!accept(key)) return `${path} (a key)`;
        stack.push([child, `${path}.${key}`]);
      }
    }
  }
  return null;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

// `String.prototype.isWellFormed` (ES2024, Node 20) where the runtime has it, else the regex.
const isWellFormed: (text: string) => boolean =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === "function"
    ? (text) => (text as unknown as { isWellFormed(): boolean }).isWellFormed()
    : (text) => !LONE_SURROGATE.test(text);
