import type { Store } from "@tether/server";
import type { PrismaClient } from "../../../../generated/prisma/client.ts";

export type DemoStore = Store<PrismaClient>;
