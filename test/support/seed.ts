import type { AppStore } from "./databases.ts";

/** The two users most tests start from, each owning one project (ids chosen by the test). */
export async function seedAliceAndBob(store: AppStore, projects: { alice: [id: string, name: string]; bob: [id: string, name: string] }): Promise<void> {
  await store.db.user.createMany({ data: [
    { id: "alice", email: "alice@x", name: "Alice" },
    { id: "bob", email: "bob@x", name: "Bob" },
  ] });
  await store.db.project.createMany({ data: [
    { id: projects.alice[0], name: projects.alice[1], ownerId: "alice" },
    { id: projects.bob[0], name: projects.bob[1], ownerId: "bob" },
  ] });
}

/** Alice's project p1 with bob as a member, and its note n1 (empty body): the shared-note setup. */
export async function seedSharedNote(db: AppStore["db"]): Promise<void> {
  await db.user.createMany({ data: ["alice", "bob"].map((id) => ({ id, email: `${id}@x`, name: id })) });
  await db.project.create({ data: { id: "p1", name: "One", ownerId: "alice" } });
  await db.projectMember.create({ data: { projectId: "p1", userId: "bob" } });
  await db.note.create({ data: { id: "n1", projectId: "p1", body: "" } });
}
