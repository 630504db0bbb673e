import { defineConfig } from "vite";

// The window is served by the app from ui/dist; no dev server, no remote assets.
export default defineConfig({
  clearScreen: false,
  build: { outDir: "dist", emptyOutDir: true, target: "safari15", sourcemap: false },
  // The stylesheet is processed in tests too, so that theme.test.ts reads the palettes it declares.
  test: { environment: "jsdom", globals: true, css: { include: [/style\.css/] } },
});
