// Display helpers: dates, numbers, exact money strings.

export function when(value?: string | null): string {
  if (!value) return "—";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return value;
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function ago(value?: string | null): string {
  if (!value) return "never";
  const seconds = (Date.now() - new Date(value).getTime()) / 1000;
  if (seconds < 90) return "just now";
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 129600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} days ago`;
}

export function int(value: number | string | undefined | null): string {
  const n = Number(value ?? 0);
  return Number.isFinite(n) ? n.toLocaleString("en-US") : String(value);
}

/** An exact decimal string (e.g. "0.0000330000") as dollars, without losing digits. */
export function usd(value: string | number | undefined | null): string {
  if (value === undefined || value === null || value === "") return "—";
  let text = typeof value === "number" ? value.toFixed(10) : value;
  const negative = text.startsWith("-");
  if (negative) text = text.slice(1);
  let [whole, fraction = ""] = text.split(".");
  fraction = fraction.replace(/0+$/, "");
  if (fraction.length < 2) fraction = fraction.padEnd(2, "0");
  whole = Number(whole).toLocaleString("en-US");
  return `${negative ? "-" : ""}$${whole}.${fraction}`;
}

/** A short dollar figure for chart axes. */
export function usdShort(value: number): string {
  if (value === 0) return "$0";
  const abs = Math.abs(value);
  if (abs >= 1000) return `$${(value / 1000).toFixed(1)}k`;
  if (abs >= 1) return `$${value.toFixed(2)}`;
  if (abs >= 0.01) return `$${value.toFixed(3)}`;
  return `$${Number(value.toPrecision(2))}`;
}

export function compact(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${(value / 1e9).toFixed(1)}B`;
  if (abs >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (abs >= 1e4) return `${(value / 1e3).toFixed(0)}k`;
  if (abs >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

export function titleCase(value: string): string {
  return value
    .toLowerCase()
    .split("_")
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join(" ");
}

/** A random key that makes a retried top-up count once (works outside secure contexts too). */
export function newIdempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "dash-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A timestamp as the value of a datetime-local input (local time, to the minute). */
export function localInput(value?: string | null): string {
  if (!value) return "";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n: number) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

/** A datetime-local input's value as an RFC 3339 timestamp; undefined when empty. */
export function fromLocalInput(local: string): string | undefined {
  return local ? new Date(local).toISOString() : undefined;
}

// The server's limits (server/domain/credits.py, tenancy.py), as input min/max attributes:
// a value out of range is refused in the browser, naming the field, before it can reach
// the gateway's int32 conversion.
export const MAX_CREDITS = "1000000000";
export const MAX_CALLS_PER_MINUTE = "1000000";
export const MAX_CALLS_PER_JOB = "1000000";
export const MAX_TOKENS_PER_CREDIT = "1000000000";
export const MAX_GRACE_HOURS = "720";
