import type { Metadata, Viewport } from "next";
import type { ReactNode } from "react";
import { Header } from "../src/components/Header.tsx";
import { Providers } from "./providers.tsx";
import "./globals.css";

export const metadata: Metadata = {
  title: "Tether demo",
  description: "Live projects and tasks on tRPC + Prisma, kept current by Tether's change feed.",
};

export const viewport: Viewport = { width: "device-width", initialScale: 1 };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <Providers>
          <Header />
          <main className="main">{children}</main>
        </Providers>
      </body>
    </html>
  );
}
