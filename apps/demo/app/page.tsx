import { ProjectsPage } from "../src/components/Projects.tsx";

export default function Home() {
  return <ProjectsPage />;
}
