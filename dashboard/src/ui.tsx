// Shared building blocks: async state, buttons that show progress, error boxes, dialogs,
// paginated and searchable lists.

import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { ApiError, type FieldViolation, type Page } from "./api";
import { int } from "./format";

// ---------------------------------------------------------------- async data

export interface Async<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): Async<T> {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ data: s.data, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

// ---------------------------------------------------------------- errors and progress

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  if (error instanceof ApiError) {
    // A single bad field's message is already "field: description": not listed twice.
    const fields = error.fields.filter((f) => `${f.field}: ${f.description}` !== error.message);
    return (
      <div class="error" role="alert">
        <strong>{error.message}</strong>
        <div class="error-meta">
          {error.reason && <code class="reason">{error.reason}</code>}
          {error.status > 0 && <span> HTTP {error.status}</span>}
          {error instanceof InputError && <span>Nothing was sent.</span>}
        </div>
        {fields.length > 0 && (
          <ul>
            {fields.map((f) => (
              <li key={f.field}>
                <code>{f.field}</code>: {f.description}
              </li>
            ))}
          </ul>
        )}
      </div>
    );
  }
  return (
    <div class="error" role="alert">
      <strong>{error instanceof Error ? error.message : String(error)}</strong>
    </div>
  );
}

export function Spinner({ label }: { label?: string }) {
  return (
    <span class="spinner-wrap" role="status">
      <span class="spinner" aria-hidden="true" />
      {label && <span>{label}</span>}
    </span>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <div class="loading">
      <Spinner label={`Loading ${what}…`} />
    </div>
  );
}

/** A button running an async action: disabled and labelled with progress while it runs. */
export function ActionButton(props: {
  onClick: () => Promise<unknown>;
  children: ComponentChildren;
  busy?: string;
  kind?: "primary" | "danger" | "plain";
  disabled?: boolean;
  onError?: (error: unknown) => void;
  title?: string;
  testid?: string;
}) {
  const [running, setRunning] = useState(false);
  const mounted = useRef(true);
  useEffect(() => () => void (mounted.current = false), []);
  const run = async () => {
    setRunning(true);
    try {
      await props.onClick();
    } catch (error) {
      props.onError?.(error);
    } finally {
      if (mounted.current) setRunning(false);
    }
  };
  return (
    <button
      type="button"
      class={`btn ${props.kind ?? "plain"}`}
      disabled={running || props.disabled}
      onClick={run}
      title={props.title}
      data-testid={props.testid}
    >
      {running ? <Spinner label={props.busy ?? "Working…"} /> : props.children}
    </button>
  );
}

/** A form whose submit runs an async action, shows progress, and shows the API's error. */
export function Form(props: {
  onSubmit: () => Promise<unknown>;
  submit: string;
  busy?: string;
  children: ComponentChildren;
  kind?: "primary" | "danger";
  extra?: ComponentChildren;
  label?: string;
}) {
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const mounted = useRef(true);
  useEffect(() => () => void (mounted.current = false), []);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    // The browser's checks (required, min, max, whole numbers) first, shown here naming
    // each field: nothing is sent while a field is wrong.
    const invalid = invalidFields(event.currentTarget as HTMLFormElement);
    if (invalid) {
      setError(invalid);
      return;
    }
    setRunning(true);
    try {
      await props.onSubmit();
    } catch (caught) {
      if (mounted.current) setError(caught);
    } finally {
      if (mounted.current) setRunning(false);
    }
  };
  return (
    <form class="form" onSubmit={submit} aria-label={props.label} noValidate>
      {props.children}
      <ErrorBox error={error} />
      <div class="form-actions">
        <button type="submit" class={`btn ${props.kind ?? "primary"}`} disabled={running}>
          {running ? <Spinner label={props.busy ?? "Saving…"} /> : props.submit}
        </button>
        {props.extra}
      </div>
    </form>
  );
}

/**
 * A save made of several requests that failed after some of them were applied: the
 * error says plainly what was saved and what was not, with the server's reason.
 */
export function partlySaved(error: unknown, saved: string[], unsaved: string[]): Error {
  const message =
    `Partly saved. Saved: ${saved.join(", ")}. Not saved: ${unsaved.join(", ")}, refused: ` +
    (error instanceof Error ? error.message : String(error));
  if (error instanceof ApiError) return new ApiError(error.status, message, error.reason, error.fields, error.metadata);
  return new Error(message);
}

/** Same members, in any order. */
export const sameSet = (a: string[], b: string[]) => a.length === b.length && a.every((x) => b.includes(x));

/** An error found before anything was sent: the request never left the browser. */
export class InputError extends ApiError {
  constructor(message: string, fields: FieldViolation[]) {
    super(0, message, "", fields);
  }
}

function labelOf(element: HTMLInputElement): string {
  const label = element.closest(".field")?.querySelector(".field-label")?.textContent;
  return label || element.getAttribute("aria-label") || element.name;
}

function describeInvalid(element: HTMLInputElement): string {
  const v = element.validity;
  const bound = (attribute: string) => int(element.getAttribute(attribute));
  if (v.valueMissing) return element.dataset.empty ? `required (${element.dataset.empty})` : "required";
  if (v.badInput) return "not a number";
  if (v.rangeOverflow) return `at most ${bound("max")}`;
  if (v.rangeUnderflow) return `at least ${bound("min")}`;
  if (v.stepMismatch) return "must be a whole number";
  return element.validationMessage;
}

/** The form's fields the browser finds wrong (empty required, out of range, not a whole
 * number...), as one error naming each; null when all are right. */
export function invalidFields(form: HTMLFormElement): InputError | null {
  const fields: FieldViolation[] = [];
  let first: HTMLInputElement | null = null;
  for (const element of Array.from(form.elements) as HTMLInputElement[]) {
    if (!element.willValidate || element.validity.valid) continue;
    first ??= element;
    fields.push({ field: labelOf(element), description: describeInvalid(element) });
  }
  if (!first) return null;
  first.focus();
  const message =
    fields.length === 1 ? `${fields[0].field}: ${fields[0].description}` : `${fields.length} fields need a correction`;
  return new InputError(message, fields);
}

/** A labelled control; `group` for a set of checkboxes (which carry their own labels). */
export function Field(props: { label: string; hint?: ComponentChildren; children: ComponentChildren; group?: boolean }) {
  if (props.group) {
    return (
      <div class="field" role="group" aria-label={props.label}>
        <span class="field-label">{props.label}</span>
        {props.children}
        {props.hint && <span class="hint">{props.hint}</span>}
      </div>
    );
  }
  return (
    <div class="field">
      <label class="field">
        <span class="field-label">{props.label}</span>
        {props.children}
      </label>
      {props.hint && <span class="hint">{props.hint}</span>}
    </div>
  );
}

interface InputProps {
  value: string;
  onValue: (value: string) => void;
  name?: string;
  type?: "text" | "number" | "datetime-local";
  required?: boolean;
  autoFocus?: boolean;
  min?: string;
  max?: string;
  step?: string;
  placeholder?: string;
  inputMode?: "decimal" | "numeric" | "text";
  "aria-label"?: string;
  title?: string;
  /** What to enter instead of nothing, said when a required field is left empty. */
  emptyHint?: string;
}

export function Input({ value, onValue, emptyHint, ...rest }: InputProps) {
  // Preact's input types discriminate on `type`; these props are valid for each type used.
  const attributes = rest as Record<string, unknown>;
  return (
    <input
      {...attributes}
      data-empty={emptyHint}
      value={value}
      onInput={(e) => onValue((e.currentTarget as HTMLInputElement).value)}
    />
  );
}

export function Select(props: {
  value: string;
  onValue: (value: string) => void;
  options: Array<[string, string]>;
  name?: string;
  label?: string;
}) {
  return (
    <select
      name={props.name}
      aria-label={props.label}
      value={props.value}
      onChange={(e) => props.onValue((e.currentTarget as HTMLSelectElement).value)}
    >
      {props.options.map(([value, label]) => (
        <option key={value} value={value}>
          {label}
        </option>
      ))}
    </select>
  );
}

/** What a list of choices is while it has not loaded: "loading…", or why it is missing
 * (never "none defined yet", which only a loaded, empty list may say). */
export function notLoaded(list: Async<unknown>): string | undefined {
  if (list.data !== undefined) return undefined;
  return list.error ? "not loaded (see the error above)" : "loading…";
}

/** Checkboxes choosing a subset of `options`; `unavailable` is said instead of the
 * options while they could not be loaded (see notLoaded). */
export function Choices(props: {
  options: string[];
  chosen: string[];
  onChange: (chosen: string[]) => void;
  name: string;
  unavailable?: string;
}) {
  if (props.options.length === 0) return <span class="muted">{props.unavailable ?? "none defined yet"}</span>;
  const toggle = (option: string) =>
    props.onChange(
      props.chosen.includes(option) ? props.chosen.filter((c) => c !== option) : [...props.chosen, option],
    );
  return (
    <div class="choices">
      {props.options.map((option) => (
        <label key={option} class="choice">
          <input
            type="checkbox"
            name={props.name}
            value={option}
            checked={props.chosen.includes(option)}
            onChange={() => toggle(option)}
          />
          {option}
        </label>
      ))}
    </div>
  );
}

export function Badge({ value }: { value: string }) {
  return <span class={`badge badge-${value.toLowerCase()}`}>{value.replace(/_/g, " ").toLowerCase()}</span>;
}

// ---------------------------------------------------------------- dialogs

export function Modal(props: { title: string; onClose?: () => void; children: ComponentChildren; wide?: boolean }) {
  const overlay = useRef<HTMLDivElement>(null);
  const onClose = useRef(props.onClose);
  onClose.current = props.onClose;
  // A layout effect: listening from the moment the dialog is in the page, so that an Escape
  // pressed at once is not ignored by the dialog below it (no longer the last overlay).
  useLayoutEffect(() => {
    // Escape closes only the topmost dialog (a confirmation over its editor): the last
    // overlay in the page, since a dialog opened from another is drawn inside or after it.
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== "Escape") return;
      const overlays = document.querySelectorAll(".overlay");
      if (overlays[overlays.length - 1] === overlay.current) onClose.current?.();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
  return (
    <div class="overlay" ref={overlay}>
      <div class={`modal ${props.wide ? "wide" : ""}`} role="dialog" aria-modal="true" aria-label={props.title}>
        <header class="modal-head">
          <h2>{props.title}</h2>
          {props.onClose && (
            <button type="button" class="btn plain close" aria-label="Close" onClick={props.onClose}>
              ×
            </button>
          )}
        </header>
        <div class="modal-body">{props.children}</div>
      </div>
    </div>
  );
}

/** A secret shown once (a new virtual key, a webhook signing secret), with a copy button
 * and the warning. Held in memory only: never in storage or the URL. */
export function SecretReveal(props: {
  title: string;
  secret: string;
  detail?: ComponentChildren;
  onDone: () => void;
  warning?: ComponentChildren;
  label?: string;
  stored?: string;
  testid?: string;
}) {
  const [copied, setCopied] = useState(false);
  const [stored, setStored] = useState(false);
  const field = useRef<HTMLInputElement>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.secret);
    } catch {
      field.current?.select(); // no clipboard API outside secure contexts
      document.execCommand("copy");
    }
    setCopied(true);
  };
  return (
    <Modal title={props.title}>
      <div class="warning" role="alert">
        {props.warning ?? (
          <>
            <strong>Copy this key now: it is shown only once.</strong> Only its SHA-256 digest is stored; nobody, this
            dashboard included, can show it again. If it is lost, rotate the key.
          </>
        )}
      </div>
      {props.detail}
      <div class="secret-row">
        <input
          ref={field}
          class="secret"
          readOnly
          value={props.secret}
          aria-label={props.label ?? "New virtual key"}
          data-testid={props.testid ?? "virtual-key"}
          onFocus={(e) => (e.currentTarget as HTMLInputElement).select()}
        />
        <button type="button" class="btn primary" onClick={copy}>
          {copied ? "Copied ✓" : "Copy"}
        </button>
      </div>
      <label class="choice confirm">
        <input type="checkbox" checked={stored} onChange={() => setStored(!stored)} />
        {props.stored ?? "I have stored the key somewhere safe"}
      </label>
      <div class="form-actions">
        <button type="button" class="btn primary" disabled={!stored} onClick={props.onDone}>
          Done
        </button>
      </div>
    </Modal>
  );
}

/** Asks before a destructive action; shows the action's error (and progress) in place. */
export function Confirm(props: {
  title: string;
  children: ComponentChildren;
  action: string;
  busy?: string;
  onConfirm: () => Promise<unknown>;
  onClose: () => void;
}) {
  return (
    <Modal title={props.title} onClose={props.onClose}>
      <Form
        onSubmit={props.onConfirm}
        submit={props.action}
        busy={props.busy}
        kind="danger"
        extra={
          <button type="button" class="btn plain" onClick={props.onClose}>
            Cancel
          </button>
        }
      >
        {props.children}
      </Form>
    </Modal>
  );
}

// ---------------------------------------------------------------- lists

export interface Column<T> {
  title: string;
  render: (item: T) => ComponentChildren;
  class?: string;
}

const PAGE_SIZES = [25, 50, 100];

/**
 * A paginated list over an API List method. Without a search it pages on the server
 * (page_size / page_token). With a search it scans every page (1000 at a time, with a
 * progress count) and keeps the items whose text matches: the API has no text search.
 */
export function ListView<T>(props: {
  fetchPage: (token: string, size: number) => Promise<Page<T>>;
  columns: Column<T>[];
  rowKey: (item: T) => string;
  searchText: (item: T) => string;
  deps: unknown[];
  what: string;
  onRow?: (item: T) => void;
  toolbar?: ComponentChildren;
  version?: number;
}) {
  const [size, setSize] = useState(25);
  const [tokens, setTokens] = useState<string[]>([""]);
  const [index, setIndex] = useState(0);
  const [search, setSearch] = useState("");
  const [query, setQuery] = useState("");
  const [state, setState] = useState<{ items: T[]; next: string; error?: unknown; loading: boolean }>({
    items: [],
    next: "",
    loading: true,
  });
  const [scan, setScan] = useState<{ matches: T[]; scanned: number; done: boolean; error?: unknown } | null>(null);

  useEffect(() => {
    const timer = setTimeout(() => setQuery(search.trim().toLowerCase()), 250);
    return () => clearTimeout(timer);
  }, [search]);

  // Filters changed: back to the first page.
  useEffect(() => {
    setTokens([""]);
    setIndex(0);
  }, [...props.deps, size, query]);

  // A search scans every page once; turning its pages (or changing their size) only
  // slices the matches already fetched.
  useEffect(() => {
    if (!query) {
      setScan(null);
      return;
    }
    let live = true;
    setScan({ matches: [], scanned: 0, done: false });
    (async () => {
      const matches: T[] = [];
      let scanned = 0;
      let token = "";
      try {
        do {
          const page = await props.fetchPage(token, 1000);
          if (!live) return;
          scanned += page.items.length;
          matches.push(...page.items.filter((item) => props.searchText(item).toLowerCase().includes(query)));
          setScan({ matches: [...matches], scanned, done: false });
          token = page.next;
        } while (token);
        if (live) setScan({ matches, scanned, done: true });
      } catch (error) {
        if (live) setScan({ matches, scanned, done: true, error });
      }
    })();
    return () => {
      live = false;
    };
  }, [...props.deps, query, props.version]);

  // Without a search, one page from the server at a time.
  useEffect(() => {
    if (query) return;
    let live = true;
    setState((s) => ({ ...s, loading: true, error: undefined }));
    props.fetchPage(tokens[index], size).then(
      (page) => live && setState({ items: page.items, next: page.next, loading: false }),
      (error) => live && setState({ items: [], next: "", error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...props.deps, size, query, index, tokens, props.version]);

  const items = scan ? scan.matches.slice(index * size, (index + 1) * size) : state.items;
  // "No ... yet" only once the list has loaded: never after a failed load.
  const loaded = scan ? scan.done : !state.loading;
  const error = scan ? scan.error : state.error;
  const hasNext = scan ? (index + 1) * size < scan.matches.length : Boolean(state.next);
  const next = () => {
    if (!scan && tokens.length === index + 1) setTokens([...tokens, state.next]);
    setIndex(index + 1);
  };

  return (
    <div class="list">
      <div class="toolbar">
        <input
          type="search"
          class="search"
          placeholder={`Search ${props.what}…`}
          aria-label={`Search ${props.what}`}
          value={search}
          onInput={(e) => setSearch((e.currentTarget as HTMLInputElement).value)}
        />
        {props.toolbar}
      </div>
      {scan && (
        <div class="scan" role="status" data-testid="search-status">
          {scan.error ? (
            `Search stopped by an error: ${scan.matches.length} match(es) among the ${scan.scanned} ${props.what} scanned before it`
          ) : scan.done ? (
            `${scan.matches.length} match(es) among ${scan.scanned} ${props.what}`
          ) : (
            <Spinner label={`Searching… ${scan.scanned} ${props.what} scanned, ${scan.matches.length} match(es)`} />
          )}
        </div>
      )}
      <ErrorBox error={error} />
      <div class="table-wrap">
        <table class="table">
          <thead>
            <tr>
              {props.columns.map((c) => (
                <th key={c.title} class={c.class}>
                  {c.title}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {items.map((item) => (
              <tr
                key={props.rowKey(item)}
                class={props.onRow ? "clickable" : ""}
                onClick={props.onRow ? () => props.onRow!(item) : undefined}
              >
                {props.columns.map((c) => (
                  <td key={c.title} class={c.class}>
                    {c.render(item)}
                  </td>
                ))}
              </tr>
            ))}
            {loaded && !error && items.length === 0 && (
              <tr>
                <td colSpan={props.columns.length} class="empty">
                  No {props.what}
                  {query ? " match the search" : " yet"}.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      {state.loading && !scan && <Loading what={props.what} />}
      <div class="pager">
        <button type="button" class="btn plain" disabled={index === 0} onClick={() => setIndex(index - 1)}>
          ← Previous
        </button>
        <span>Page {index + 1}</span>
        <button type="button" class="btn plain" disabled={!hasNext} onClick={next}>
          Next →
        </button>
        <label class="page-size">
          Rows
          <select value={String(size)} onChange={(e) => setSize(Number((e.currentTarget as HTMLSelectElement).value))}>
            {PAGE_SIZES.map((n) => (
              <option key={n} value={String(n)}>
                {n}
              </option>
            ))}
          </select>
        </label>
      </div>
    </div>
  );
}

/** Pretty JSON, for metadata and audit entries. */
export function JsonView({ value }: { value: unknown }) {
  if (value === undefined || value === null) return <span class="muted">—</span>;
  return <pre class="json">{JSON.stringify(value, null, 2)}</pre>;
}

/** Parses a metadata text area: empty means {}, anything else must be a JSON object. */
export function parseObject(text: string, field: string): Record<string, unknown> {
  if (!text.trim()) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ApiError(0, `${field} is not valid JSON: ${(error as Error).message}`, "INVALID_JSON", [
      { field, description: "must be a JSON object" },
    ]);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ApiError(0, `${field} must be a JSON object like {"plan": "pro"}`, "INVALID_JSON", [
      { field, description: "must be a JSON object" },
    ]);
  }
  return value as Record<string, unknown>;
}
