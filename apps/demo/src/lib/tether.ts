"use client";
import { createTetherReact } from "@tether/client/react";
import type { AppRouter } from "../server/router.ts"; // type-only: nothing of the server is bundled

export const { TetherProvider, useTRPC, useLiveQuery, useLiveMutation, useConnectionStatus, useTetherClient, useCrdtDoc, usePresence, useJob, useWorkflow } =
  createTetherReact<AppRouter>();
