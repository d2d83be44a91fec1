import { defineConfig } from "vite";

// Preact through Vite's built-in Oxc JSX transform: no framework plugin needed.
// `npm run dev` serves with hot reload and proxies /api to the dev stack's Envoy, as the
// production server (devstack/dashboard.py, or nginx in docker-compose) does.
export default defineConfig({
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, target: "es2022" },
  server: { port: 3002, proxy: { "/api": "http://127.0.0.1:8003" } },
});
