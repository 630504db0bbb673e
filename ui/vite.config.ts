import { defineConfig } from "vite";

// The window is served by the app from ui/dist; no dev server, no remote assets.
export default defineConfig({
  clearScreen: false,
  build: { outDir: "dist", emptyOutDir: true, target: "safari15", sourcemap: false },
  test: { environment: "jsdom", globals: true },
});
