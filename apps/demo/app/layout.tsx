import type { Metadata, Viewport } from "next";
import type { ReactNode } from "react";
import { HydrationBoundary } from "@tanstack/react-query";
import { prefetchPage } from "../src/lib/prefetch.ts";
import { Header } from "../src/components/Header.tsx";
import { Providers } from "./providers.tsx";
import "./globals.css";

export const metadata: Metadata = {
  title: "Tether demo",
  description: "Live projects and tasks on tRPC + Prisma, kept current by Tether's change feed.",
};

export const viewport: Viewport = { width: "device-width", initialScale: 1 };

export default async function RootLayout({ children }: { children: ReactNode }) {
  // Who is signed in, server-rendered: the header (rendered before any page) reads it first.
  const state = await prefetchPage((trpc) => [trpc.me.queryOptions()]);
  return (
    <html lang="en">
      <body>
        <Providers>
          <HydrationBoundary state={state}>
            <Header />
            <main className="main">{children}</main>
          </HydrationBoundary>
        </Providers>
      </body>
    </html>
  );
}
