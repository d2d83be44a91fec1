// Hash routes (#/teams/acme-corp): the static server needs no rewrite rules, and nothing
// secret ever goes in the URL.

import { useEffect, useState } from "preact/hooks";

export function currentPath(): string {
  return location.hash.replace(/^#/, "") || "/";
}

export function navigate(path: string) {
  location.hash = path;
}

export function useRoute(): string[] {
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const onChange = () => setPath(currentPath());
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return parseRoute(path);
}

/** A malformed address (a bad %-escape, as in #/teams/%E0%A4%A) is a page not found. */
export const NOT_FOUND = "\u0000not-found";

export function parseRoute(path: string): string[] {
  try {
    return path.split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    return [NOT_FOUND, path];
  }
}
