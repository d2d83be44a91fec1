// The operator's admin key: in memory, and in this tab's sessionStorage so that a reload
// keeps the session (it is gone when the tab closes). Never in the URL, never in
// localStorage, never in a cookie.

const STORAGE_KEY = "saaslitellm.admin-session";
let key: string | null = null;

try {
  key = sessionStorage.getItem(STORAGE_KEY);
} catch {
  key = null; // storage disabled: memory only
}

export function currentKey(): string | null {
  return key;
}

export function storeKey(value: string) {
  key = value;
  try {
    sessionStorage.setItem(STORAGE_KEY, value);
  } catch {
    // memory only
  }
}

export function clearKey() {
  key = null;
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // nothing stored
  }
}
