/**
 * The demo's durable workflows (issue 14): `welcome` (the inbox welcome, a wait for the user's
 * first project, a nudge when none arrives), started by the sign-up's own transaction.
 */
import type { WorkflowBuilder } from "@tether/server";
import type { PrismaClient } from "../../../../../generated/prisma/client.ts";
import { demoWorkflowLimits, type DemoWorkflowLimits } from "./config.ts";
import { welcomeWorkflow } from "./welcome.ts";

export { DEFAULT_DEMO_WORKFLOWS, demoWorkflowLimits, type DemoWorkflowLimits } from "./config.ts";
export { announceFirstProject, FIRST_PROJECT_EVENT, nudgeMessageId, welcomeMessageId, welcomeWorkflowId, type WelcomeOutput } from "./welcome.ts";

/** The workflow procedures, for `tether.workflows(demoWorkflows(tether.workflow, limits))`. */
export function demoWorkflows(workflow: WorkflowBuilder<PrismaClient, undefined, undefined>, limits: DemoWorkflowLimits = demoWorkflowLimits()) {
  return { welcome: welcomeWorkflow(workflow, limits) };
}
