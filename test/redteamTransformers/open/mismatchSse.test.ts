// OPEN FINDING (issue 16, transformer red team): over SSE a mismatched transformer still gives an
// unclear error ("Unknown error" / a TypeError). Fails today; runs in `npm run test:open`, not npm test.
import { mismatchCases } from "../mismatchCases.ts";

mismatchCases(["sse"]);
