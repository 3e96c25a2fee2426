import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // The packages' built output runs as a host runs it, on Node's own module
    // loader: a plugin loaded in-process must go through its verified-bytes hooks.
    server: { deps: { external: [/\/packages\/(domain|runtime|cluster)\/dist\//] } },
  },
})
