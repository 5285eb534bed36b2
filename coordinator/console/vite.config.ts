// The console is served by the coordinator at /console/: relative to that, no dev server.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/console/",
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 600 },
});
