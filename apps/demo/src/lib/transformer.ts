/**
 * The demo's data transformer, one for every side: the router (`initTether().create({ transformer })`),
 * the browser's client (`<TetherProvider transformer>`), and server rendering's dehydrate / the
 * browser's hydrate. Prisma's `Date`s reach components as `Date`s — in the HTML's data, in query
 * results and in live updates alike. (The demo has no `Decimal` column; an app that has one
 * registers it with superjson on both sides, see docs/transformers.md.)
 */
import superjson from "superjson";

export const transformer = superjson;

/** TanStack Query's dehydrate option for server-rendered pages: data through the same transformer. */
export const dehydrateData = { serializeData: (data: unknown) => superjson.serialize(data) };

/** TanStack Query's hydrate option for the browser (`browserQueryClient`): the inverse of `dehydrateData`. */
export const hydrateData = {
  deserializeData: (data: unknown) => superjson.deserialize(data as Parameters<typeof superjson.deserialize>[0]),
};
