import { Board } from "../../../src/components/Board.tsx";

export default async function ProjectPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  return <Board projectId={id} />;
}
