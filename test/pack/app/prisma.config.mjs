// Prisma's JS engines (no downloaded binaries): `prisma generate` is all this app asks of the CLI.
export default {
  experimental: { adapter: true },
  engine: "js",
  schema: "prisma/schema.prisma",
  adapter: async () => { throw new Error("this app only runs `prisma generate`"); },
};
