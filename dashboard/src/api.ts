// The admin REST API (Envoy transcoding of protos/saaslitellm/v1/*.proto), same origin
// under /api. Every request carries the admin key as X-Admin-Key; errors become ApiError
// with the server's message, its stable reason and the fields it names.

import { clearKey, currentKey } from "./auth";

export interface FieldViolation {
  field: string;
  description: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string,
    readonly fields: FieldViolation[] = [],
    readonly metadata: Record<string, string> = {},
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------- in-flight requests

type Listener = (busy: number) => void;
let inFlight = 0;
const listeners = new Set<Listener>();
function setInFlight(delta: number) {
  inFlight += delta;
  listeners.forEach((l) => l(inFlight));
}
export function onBusy(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

let onUnauthorized: (message: string) => void = () => {};
export function setUnauthorizedHandler(handler: (message: string) => void) {
  onUnauthorized = handler;
}

// ---------------------------------------------------------------- requests

export type Query = Record<string, string | number | boolean | undefined | null>;

function queryString(query?: Query): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

interface Options {
  query?: Query;
  body?: unknown;
  key?: string; // sign-in checks a key before it is stored
  idempotencyKey?: string;
}

/**
 * The first character of `key` that a header cannot carry, shown plainly; or "". fetch
 * sends Latin-1 only and refuses the request otherwise with the TypeError a network
 * failure gives, so a key pasted with a Cyrillic letter read as "cannot reach the API".
 */
function unsendable(key: string): string {
  const found = /[^\t\x20-\x7e\x80-\xff]/u.exec(key)?.[0];
  if (found === undefined) return "";
  const code = `U+${found.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
  return /[\p{L}\p{N}\p{P}\p{S}]/u.test(found) ? `"${found}" (${code})` : code;
}

export async function request<T>(method: string, path: string, options: Options = {}): Promise<T> {
  const key = options.key ?? currentKey();
  if (!key) throw new ApiError(401, "not signed in", "ADMIN_KEY_REQUIRED");
  const character = unsendable(key);
  if (character) {
    throw new ApiError(
      0,
      `the admin key holds ${character}, which an HTTP header cannot carry: nothing was sent; check the key`,
      "KEY_NOT_SENDABLE",
    );
  }
  const headers: Record<string, string> = { "X-Admin-Key": key, Accept: "application/json" };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.idempotencyKey) headers["Idempotency-Key"] = options.idempotencyKey;
  setInFlight(1);
  let response: Response;
  let text: string;
  try {
    response = await fetch(`/api${path}${queryString(options.query)}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      cache: "no-store",
      credentials: "omit",
    });
    text = await response.text();
  } catch (error) {
    throw new ApiError(0, `cannot reach the API (${(error as Error).message}); is the dev stack running?`, "NETWORK");
  } finally {
    setInFlight(-1);
  }
  if (response.ok) return (text ? JSON.parse(text) : {}) as T;
  const failure = toError(response.status, response.statusText, text);
  if (response.status === 401 && !options.key) {
    clearKey();
    onUnauthorized(failure.message);
  }
  throw failure;
}

interface StatusBody {
  code?: number;
  message?: string;
  details?: Array<Record<string, unknown>>;
}

function toError(status: number, statusText: string, text: string): ApiError {
  let body: StatusBody;
  try {
    body = JSON.parse(text) as StatusBody;
  } catch {
    return new ApiError(status, text.trim() || `HTTP ${status} ${statusText}`, "HTTP_" + status);
  }
  let reason = "";
  let metadata: Record<string, string> = {};
  const fields: FieldViolation[] = [];
  for (const detail of body.details ?? []) {
    const type = String(detail["@type"] ?? "");
    if (type.endsWith("google.rpc.ErrorInfo")) {
      reason = String(detail.reason ?? "");
      metadata = (detail.metadata as Record<string, string>) ?? {};
    } else if (type.endsWith("google.rpc.BadRequest")) {
      const violations = (detail.field_violations ?? detail.fieldViolations ?? []) as FieldViolation[];
      fields.push(...violations);
    }
  }
  return new ApiError(status, body.message || `HTTP ${status} ${statusText}`, reason || `HTTP_${status}`, fields, metadata);
}

export const get = <T>(path: string, query?: Query) => request<T>("GET", path, { query });
export const post = <T>(path: string, body: unknown = {}, idempotencyKey?: string) =>
  request<T>("POST", path, { body, idempotencyKey });
export const patch = <T>(path: string, body: unknown) => request<T>("PATCH", path, { body });
export const put = <T>(path: string, body: unknown) => request<T>("PUT", path, { body });
export const del = <T>(path: string, query?: Query) => request<T>("DELETE", path, { query });

export const enc = encodeURIComponent;

// ---------------------------------------------------------------- resources

export type Json = Record<string, unknown>;

export interface Organization {
  organization_id: string;
  name: string;
  status: "ACTIVE" | "ARCHIVED";
  metadata: Json | null;
  created_at: string;
  updated_at: string;
}

export type TeamStatus = "ACTIVE" | "SUSPENDED" | "PAUSED" | "ARCHIVED";
export type BudgetMode = "JOB_BASED" | "CONSUMPTION_TOKENS" | "CONSUMPTION_USD" | "BUDGET_MODE_UNSPECIFIED";

export interface Team {
  team_id: string;
  organization_id: string;
  team_alias: string;
  status: TeamStatus;
  budget_mode: BudgetMode;
  access_groups: string[];
  allowed_model_aliases: string[];
  default_model: string;
  metadata: Json | null;
  credits_allocated: number;
  credits_used: number;
  credits_reserved: number;
  credits_remaining: number;
  credits_available: number;
  created_at: string;
  updated_at: string;
  tokens_per_credit: number;
  credits_per_dollar: string;
  markup_percent: string;
  credits_overdraft_limit: number;
  archived_at?: string;
  calls_per_minute: number;
  low_credit_threshold: number;
  max_calls_per_job: number;
  max_cost_usd_per_job: string;
}

export interface CreateTeamResponse {
  team_id: string;
  organization_id: string;
  virtual_key: string;
  key_prefix: string;
  key_id: string;
  credits_allocated: number;
}

export interface TeamKey {
  key_id: string;
  team_id: string;
  name: string;
  key_prefix: string;
  state: "ACTIVE" | "REVOKED" | "EXPIRED";
  created_at: string;
  expires_at?: string;
  revoked_at?: string;
  last_used_at?: string;
  replaced_by_key_id: string;
}

export interface ModelAccessGroup {
  group_name: string;
  display_name: string;
  description: string;
  model_aliases: string[];
  created_at: string;
  updated_at: string;
}

export interface ModelAlias {
  model_alias: string;
  actual_model: string;
  fallback_models: string[];
  access_groups: string[];
  display_name: string;
  description: string;
  created_at: string;
  updated_at: string;
}

export interface CreditBalance {
  team_id: string;
  credits_allocated: number;
  credits_used: number;
  credits_reserved: number;
  credits_remaining: number;
  credits_available: number;
  credits_overdraft_limit: number;
  budget_mode: BudgetMode;
  open_jobs: number;
}

export interface CreditTransaction {
  transaction_id: string;
  team_id: string;
  job_id: string;
  kind: string;
  amount: number;
  reserved_delta: number;
  remaining_after: number;
  reserved_after: number;
  reason: string;
  actor: string;
  created_at: string;
}

export interface RefundJobResponse {
  transaction: CreditTransaction;
  balance: CreditBalance;
  // The job had been refunded before: `transaction` is that earlier refund, nothing changed.
  already_refunded: boolean;
}

export interface CreditChangeResponse {
  team_id: string;
  transaction: CreditTransaction;
  balance: CreditBalance;
}

export interface CallSummary {
  call_id: string;
  purpose: string;
  model: string;
  status: "SUCCEEDED" | "FAILED" | "CANCELLED";
  tokens: number;
  latency_ms: number;
  cost_usd: number;
  error: string;
  streamed: boolean;
  created_at: string;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

export interface Job {
  job_id: string;
  team_id: string;
  job_type: string;
  user_id: string;
  status: "PENDING" | "IN_PROGRESS" | "COMPLETED" | "FAILED" | "EXPIRED";
  created_at: string;
  completed_at?: string;
  error_message: string;
  metadata?: Json | null;
  costs: {
    total_calls: number;
    successful_calls: number;
    failed_calls: number;
    total_tokens: number;
    total_cost_usd: number;
    avg_latency_ms: number;
    credit_applied: boolean;
    credits_charged: number;
    credits_remaining?: number;
    // Credits a consumption-mode job used beyond what the team could pay; recorded, not charged.
    credits_shortfall?: number;
    // Credits given back by a refund of the job; 0 when not refunded.
    credits_refunded: number;
  };
  calls: CallSummary[];
}

export interface UsageFigures {
  jobs: string;
  jobs_pending: string;
  jobs_in_progress: string;
  jobs_completed: string;
  jobs_failed: string;
  jobs_expired: string;
  calls: string;
  calls_failed: string;
  prompt_tokens: string;
  completion_tokens: string;
  total_tokens: string;
  provider_cost_usd: string;
  billed_cost_usd: string;
  margin_usd: string;
  // Every charge, refunded or not; credits_refunded is what refunds gave back of it.
  credits_charged: string;
  // Provider cost per credit charged and not refunded.
  provider_cost_usd_per_credit: string;
  credits_refunded: string;
}

export interface UsageReport {
  start_date: string;
  end_date: string;
  totals: UsageFigures;
  days: { date: string; usage: UsageFigures }[];
  job_types: { job_type: string; usage: UsageFigures }[];
  daily_job_types: { date: string; job_type: string; usage: UsageFigures }[];
  teams: { team_id: string; usage: UsageFigures }[];
}

export interface AuditEntry {
  audit_id: string;
  actor: string;
  request_id: string;
  peer: string;
  action: string;
  resource_type: string;
  resource_id: string;
  before?: Json | null;
  after?: Json | null;
  created_at: string;
}

export const WEBHOOK_EVENT_TYPES = [
  "team.credits_low",
  "team_key.expiring",
  "job.completed",
  "job.failed",
  "job.expired",
  "job.late_charge",
  "job.refunded",
] as const;

export interface WebhookEndpoint {
  endpoint_id: string;
  url: string;
  description: string;
  event_types: string[];
  organization_id: string; // "": every organization's events
  secret_prefix: string;
  created_at: string;
  pending_deliveries: number;
  failed_deliveries: number;
  // Its deliveries are held (events still recorded, none sent) until resumed.
  paused?: boolean;
  paused_at?: string; // unset when not paused
  // "paused by the operator", or the sender's own reason when it paused a dead endpoint.
  paused_reason?: string;
}

/** PATCH /webhooks/{id}: only the fields given change; an empty event_types keeps them. */
export interface UpdateWebhookEndpointRequest {
  url?: string;
  description?: string;
  event_types?: string[];
  paused?: boolean;
}

export interface RetryWebhookDeliveriesResponse {
  retried: number; // failed deliveries put back to pending
}

export interface CreateWebhookEndpointResponse {
  endpoint: WebhookEndpoint;
  secret: string; // whsec_..., shown only this once
}

export type DeliveryStatus = "pending" | "delivered" | "failed";

export interface WebhookDelivery {
  delivery_id: string; // int64: a JSON string
  event_id: string;
  event_type: string;
  payload: Json | null;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at?: string;
  last_status_code: number;
  last_error: string;
  created_at: string;
  delivered_at?: string;
}

export interface Page<T> {
  items: T[];
  next: string;
}

/** Adapts a List response (`{<field>: [...], next_page_token}`) to a Page. */
export async function listPage<T>(path: string, field: string, query: Query): Promise<Page<T>> {
  const response = await get<Record<string, unknown>>(path, query);
  return { items: (response[field] as T[]) ?? [], next: String(response.next_page_token ?? "") };
}

/** Every item of a list, page after page (for pickers: organizations, groups, aliases). */
export async function listAll<T>(path: string, field: string, query: Query = {}): Promise<T[]> {
  const all: T[] = [];
  let token = "";
  do {
    const page = await listPage<T>(path, field, { ...query, page_size: 1000, page_token: token });
    all.push(...page.items);
    token = page.next;
  } while (token);
  return all;
}
