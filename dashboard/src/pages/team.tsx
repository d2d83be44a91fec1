// A team: balance and ledger, credits, settings, status, access groups, keys, recent
// jobs with their calls and costs, usage, audit trail.

import { useEffect, useState } from "preact/hooks";
import {
  ApiError,
  del,
  enc,
  get,
  listAll,
  listPage,
  patch,
  post,
  put,
  type CallSummary,
  type CreditBalance,
  type CreditChangeResponse,
  type CreditTransaction,
  type Job,
  type RefundJobResponse,
  type ModelAccessGroup,
  type Team,
  type TeamKey,
  type TeamStatus,
} from "../api";
import {
  MAX_CALLS_PER_JOB,
  MAX_CALLS_PER_MINUTE,
  MAX_CREDITS,
  MAX_GRACE_HOURS,
  MAX_TOKENS_PER_CREDIT,
  ago,
  fromLocalInput,
  int,
  localInput,
  newIdempotencyKey,
  titleCase,
  usd,
  when,
} from "../format";
import { navigate } from "../router";
import {
  ActionButton,
  Badge,
  Choices,
  Confirm,
  ErrorBox,
  Field,
  Form,
  Input,
  InputError,
  ListView,
  Loading,
  Modal,
  SecretReveal,
  Select,
  notLoaded,
  parseObject,
  sameSet,
  useAsync,
} from "../ui";
import { AuditList } from "./audit";
import { BUDGET_MODES } from "./teams";
import { UsagePanel } from "./usage";

const TABS = ["overview", "jobs", "keys", "ledger", "settings", "usage", "audit"] as const;
type Tab = (typeof TABS)[number];

export function TeamPage({ id, tab }: { id: string; tab?: string }) {
  const team = useAsync(() => get<Team>(`/teams/${enc(id)}`), [id]);
  const current: Tab = (TABS as readonly string[]).includes(tab ?? "") ? (tab as Tab) : "overview";
  const [version, setVersion] = useState(0);
  const changed = () => {
    team.reload();
    setVersion((v) => v + 1);
  };
  if (team.loading && !team.data) return <Loading what="team" />;
  if (!team.data) return <ErrorBox error={team.error} />;
  const t = team.data;
  const archived = t.status === "ARCHIVED";
  return (
    <div>
      <p class="crumbs">
        <a href="#/teams">Teams</a> / <a href={`#/organizations/${enc(t.organization_id)}`}>{t.organization_id}</a> /
      </p>
      <div class="page-head">
        <h1>
          {t.team_alias || t.team_id} <small class="muted">{t.team_id}</small> <Badge value={t.status} />
        </h1>
        {!archived && <StatusSwitch team={t} onChanged={changed} />}
      </div>
      {archived && (
        <div class="notice">Archived {when(t.archived_at)}: read-only; its keys are revoked and its history kept.</div>
      )}
      <nav class="tabs" aria-label="Team sections">
        {TABS.map((name) => (
          <a
            key={name}
            href={`#/teams/${enc(t.team_id)}/${name}`}
            class={name === current ? "active" : ""}
            aria-current={name === current ? "page" : undefined}
          >
            {titleCase(name)}
          </a>
        ))}
      </nav>
      {current === "overview" && <Overview team={t} archived={archived} version={version} onChanged={changed} />}
      {current === "jobs" && <JobsList team={t} version={version} onChanged={changed} />}
      {current === "keys" && <Keys team={t} archived={archived} />}
      {current === "ledger" && <Ledger team={t} version={version} />}
      {current === "settings" && <Settings team={t} archived={archived} onChanged={changed} />}
      {current === "usage" && <UsagePanel scope="teams" id={t.team_id} />}
      {current === "audit" && <AuditList resourceType="team" resourceId={t.team_id} />}
    </div>
  );
}

// ---------------------------------------------------------------- status

const STATUS_HELP: Record<string, string> = {
  ACTIVE: "may create jobs and make calls",
  SUSPENDED: "refused new jobs and calls (TEAM_SUSPENDED), e.g. for non-payment",
  PAUSED: "refused new jobs and calls (TEAM_PAUSED), e.g. at the customer's request",
};

function StatusSwitch({ team, onChanged }: { team: Team; onChanged: () => void }) {
  const [error, setError] = useState<unknown>(null);
  return (
    <div class="status-switch">
      <div class="segmented" role="group" aria-label="Team status">
        {(["ACTIVE", "SUSPENDED", "PAUSED"] as TeamStatus[]).map((status) => (
          <ActionButton
            key={status}
            kind={team.status === status ? "primary" : "plain"}
            disabled={team.status === status}
            title={`${titleCase(status)}: ${STATUS_HELP[status]}`}
            busy="…"
            onError={setError}
            onClick={async () => {
              setError(null);
              await patch(`/teams/${enc(team.team_id)}`, { status });
              onChanged();
            }}
          >
            {titleCase(status)}
          </ActionButton>
        ))}
      </div>
      <ErrorBox error={error} />
    </div>
  );
}

// ---------------------------------------------------------------- overview: balance, credits

function Overview(props: { team: Team; archived: boolean; version: number; onChanged: () => void }) {
  const { team } = props;
  const balance = useAsync(
    () => get<CreditBalance>(`/credits/teams/${enc(team.team_id)}/balance`),
    [team.team_id, props.version],
  );
  const b = balance.data;
  return (
    <div>
      <ErrorBox error={balance.error} />
      <div class="cards" data-testid="balance">
        {(
          [
            ["Available", b?.credits_available, "what new jobs can still reserve"],
            ["Remaining", b?.credits_remaining, "allocated minus used"],
            ["Reserved", b?.credits_reserved, "held by open jobs"],
            ["Used", b?.credits_used, "charged for completed jobs"],
            ["Allocated", b?.credits_allocated, "ever given"],
            ["Open jobs", b?.open_jobs, "pending or in progress"],
          ] as Array<[string, number | undefined, string]>
        ).map(([label, value, help]) => (
          <div class="card" key={label} title={help}>
            <div class="card-label">{label}</div>
            <div class="card-value" data-testid={`balance-${label.toLowerCase().replace(" ", "-")}`}>
              {value === undefined ? "…" : int(value)}
            </div>
          </div>
        ))}
      </div>
      <dl class="facts">
        <dt>Budget mode</dt>
        <dd>{BUDGET_MODES.find(([m]) => m === team.budget_mode)?.[1] ?? team.budget_mode}</dd>
        <dt>Markup</dt>
        <dd>{team.markup_percent}%</dd>
        {team.budget_mode === "CONSUMPTION_TOKENS" && (
          <>
            <dt>Tokens per credit</dt>
            <dd>{int(team.tokens_per_credit)}</dd>
          </>
        )}
        {team.budget_mode === "CONSUMPTION_USD" && (
          <>
            <dt>Credits per dollar</dt>
            <dd>{team.credits_per_dollar}</dd>
          </>
        )}
        <dt>Overdraft limit</dt>
        <dd>{int(team.credits_overdraft_limit)}</dd>
        <dt>LLM calls a minute</dt>
        <dd>{team.calls_per_minute ? int(team.calls_per_minute) : <span class="muted">no limit</span>}</dd>
        <dt>LLM calls per job</dt>
        <dd>{team.max_calls_per_job ? int(team.max_calls_per_job) : <span class="muted">no limit</span>}</dd>
        <dt>Cost per job</dt>
        <dd>
          {Number(team.max_cost_usd_per_job) ? usd(team.max_cost_usd_per_job) : <span class="muted">no limit</span>}
        </dd>
        <dt>Low-credit alert</dt>
        <dd>
          {team.low_credit_threshold ? (
            <>
              at {int(team.low_credit_threshold)} credits remaining{" "}
              <span class="muted">
                (<a href="#/webhooks">webhook</a> <code>team.credits_low</code>)
              </span>
            </>
          ) : (
            <span class="muted">no alert</span>
          )}
        </dd>
        <dt>Access groups</dt>
        <dd>{team.access_groups.join(", ") || <span class="muted">none: every call is refused</span>}</dd>
        <dt>Models</dt>
        <dd>{team.allowed_model_aliases.join(", ") || <span class="muted">none</span>}</dd>
        <dt>Default model</dt>
        <dd>{team.default_model || <span class="muted">none</span>}</dd>
        <dt>Created</dt>
        <dd>{when(team.created_at)}</dd>
      </dl>
      {!props.archived && (
        <div class="grid2">
          <AddCredits team={team} onChanged={props.onChanged} />
          <AdjustCredits team={team} onChanged={props.onChanged} />
        </div>
      )}
    </div>
  );
}

// A credit change is sent with one idempotency key per intended change, kept after a
// failure so that a retry after a lost answer changes the balance once. Sent again with
// other values (the reason corrected, say), the server refuses the key: the first went
// through. Said in those words, the balance read again, the form emptied (another change
// is typed anew, not sent again by a second click), and a new key for the next change.
async function underKey<T>(send: () => Promise<T>, applied: () => void): Promise<T> {
  try {
    return await send();
  } catch (error) {
    if (error instanceof ApiError && error.reason === "IDEMPOTENCY_KEY_REUSED") {
      applied();
      throw new ApiError(
        error.status,
        "An earlier submission of this form was applied, though its answer did not arrive: the balance and " +
          "ledger show it. Nothing more was changed; submit again only for another change.",
        error.reason,
      );
    }
    throw error;
  }
}

function AddCredits({ team, onChanged }: { team: Team; onChanged: () => void }) {
  const [credits, setCredits] = useState("");
  const [reason, setReason] = useState("");
  // One key per intended top-up: a retry after a lost response adds once.
  const [idempotencyKey, setIdempotencyKey] = useState(newIdempotencyKey);
  const [done, setDone] = useState("");
  // After a change (or one found already applied): an empty form, a new key, the balance read again.
  const startOver = () => {
    setCredits("");
    setReason("");
    setIdempotencyKey(newIdempotencyKey());
    onChanged();
  };
  return (
    <section class="panel">
      <h3>Add credits</h3>
      <Form
        label="Add credits"
        submit="Add credits"
        busy="Adding…"
        onSubmit={async () => {
          setDone("");
          const response = await underKey(
            () =>
              post<{ credits_added: number; balance: CreditBalance }>(
                `/credits/teams/${enc(team.team_id)}/add`,
                { credits: Number(credits), reason: reason.trim() },
                idempotencyKey,
              ),
            startOver,
          );
          setDone(`Added ${int(response.credits_added)} credits; ${int(response.balance.credits_available)} available.`);
          startOver();
        }}
      >
        <Field label="Credits">
          <Input name="credits" type="number" min="1" max={MAX_CREDITS} value={credits} onValue={setCredits} required />
        </Field>
        <Field label="Reason (shown in the ledger)">
          <Input name="reason" value={reason} onValue={setReason} placeholder="e.g. invoice 2024-117" />
        </Field>
      </Form>
      {done && (
        <div class="notice" role="status">
          {done}
        </div>
      )}
    </section>
  );
}

function AdjustCredits({ team, onChanged }: { team: Team; onChanged: () => void }) {
  const [credits, setCredits] = useState("");
  const [reason, setReason] = useState("");
  const [idempotencyKey, setIdempotencyKey] = useState(newIdempotencyKey);
  const [done, setDone] = useState("");
  // After a change (or one found already applied): an empty form, a new key, the balance read again.
  const startOver = () => {
    setCredits("");
    setReason("");
    setIdempotencyKey(newIdempotencyKey());
    onChanged();
  };
  return (
    <section class="panel">
      <h3>Correct the balance</h3>
      <Form
        label="Adjust credits"
        submit="Apply adjustment"
        busy="Applying…"
        onSubmit={async () => {
          setDone("");
          const response = await underKey(
            () =>
              post<CreditChangeResponse>(
                `/credits/teams/${enc(team.team_id)}/adjust`,
                { credits: Number(credits), reason: reason.trim() },
                idempotencyKey,
              ),
            startOver,
          );
          const balance = response.balance;
          setDone(
            `Adjusted by ${signed(response.transaction.amount)} credits; ` +
              `${int(balance.credits_remaining)} remaining, ${int(balance.credits_available)} available.`,
          );
          startOver();
        }}
      >
        <Field label="Credits (negative removes)">
          <Input
            name="adjust_credits"
            type="number"
            min={`-${MAX_CREDITS}`}
            max={MAX_CREDITS}
            value={credits}
            onValue={setCredits}
            required
          />
        </Field>
        <Field label="Reason (required)">
          <Input name="adjust_reason" value={reason} onValue={setReason} required />
        </Field>
      </Form>
      {done && (
        <div class="notice" role="status">
          {done}
        </div>
      )}
    </section>
  );
}

// ---------------------------------------------------------------- jobs

function refundable(job: Job): boolean {
  return job.status === "COMPLETED" && job.costs.credits_charged > 0;
}

function isRefunded(job: Job): boolean {
  return job.costs.credits_refunded > 0;
}

function JobsList(props: { team: Team; version: number; onChanged: () => void }) {
  const [status, setStatus] = useState("");
  const [open, setOpen] = useState<Job | null>(null);
  const [refunding, setRefunding] = useState<Job | null>(null);
  const [done, setDone] = useState<{ text: string; repeat: boolean } | null>(null);
  return (
    <div>
      {done && (
        <div class={done.repeat ? "warning" : "notice"} role="status">
          {done.text}
        </div>
      )}
      <ListView<Job>
        what="jobs"
        deps={[props.team.team_id, status]}
        version={props.version}
        fetchPage={(token, size) =>
          listPage<Job>(`/teams/${enc(props.team.team_id)}/jobs`, "jobs", {
            page_size: Math.min(size, 100),
            page_token: token,
            status,
          })
        }
        columns={[
          { title: "Created", render: (j) => when(j.created_at) },
          { title: "Job type", render: (j) => j.job_type },
          { title: "Status", render: (j) => <Badge value={j.status} /> },
          { title: "Calls", class: "num", render: (j) => int(j.costs.total_calls) },
          { title: "Tokens", class: "num", render: (j) => int(j.costs.total_tokens) },
          { title: "Cost (billed)", class: "num", render: (j) => usd(j.costs.total_cost_usd) },
          {
            title: "Credits",
            class: "num",
            render: (j) =>
              isRefunded(j) ? (
                <span title={`${int(j.costs.credits_refunded)} credit(s) refunded`}>
                  <span class="refunded">{int(j.costs.credits_charged)}</span> <Badge value="REFUNDED" />
                </span>
              ) : (
                int(j.costs.credits_charged)
              ),
          },
          { title: "Job ID", render: (j) => <code class="small">{j.job_id.slice(0, 8)}</code> },
        ]}
        rowKey={(j) => j.job_id}
        searchText={(j) => `${j.job_id} ${j.job_type} ${j.user_id} ${j.status} ${isRefunded(j) ? "refunded" : ""}`}
        onRow={(j) => setOpen(j)}
        toolbar={
          <Select
            value={status}
            onValue={setStatus}
            label="Job status filter"
            options={[
              ["", "All statuses"],
              ["PENDING", "Pending"],
              ["IN_PROGRESS", "In progress"],
              ["COMPLETED", "Completed"],
              ["FAILED", "Failed"],
              ["EXPIRED", "Expired"],
            ]}
          />
        }
      />
      <p class="muted">Click a job to see its calls.</p>
      {open && (
        <JobDetail
          team={props.team}
          job={open}
          onClose={() => setOpen(null)}
          onRefund={(job) => {
            setOpen(null);
            setDone(null);
            setRefunding(job);
          }}
        />
      )}
      {refunding && (
        <RefundJob
          team={props.team}
          job={refunding}
          onClose={() => setRefunding(null)}
          onRefunded={(text, repeat) => {
            setRefunding(null);
            setDone({ text, repeat });
            props.onChanged();
          }}
        />
      )}
    </div>
  );
}

function RefundJob(props: {
  team: Team;
  job: Job;
  onClose: () => void;
  onRefunded: (text: string, repeat: boolean) => void;
}) {
  const j = props.job;
  const [reason, setReason] = useState(`refund of job ${j.job_type} (admin dashboard)`);
  const charged = j.costs.credits_charged;
  return (
    <Confirm
      title="Refund this job?"
      action={`Refund ${int(charged)} credit(s)`}
      busy="Refunding…"
      onClose={props.onClose}
      onConfirm={async () => {
        const response = await post<RefundJobResponse>(
          `/credits/teams/${enc(props.team.team_id)}/jobs/${enc(j.job_id)}/refund`,
          { reason: reason.trim() },
        );
        const t = response.transaction;
        const available = `${int(response.balance.credits_available)} available`;
        // A job is refunded once: a repeat returns the first refund and changes nothing.
        props.onRefunded(
          response.already_refunded
            ? `Job ${j.job_id} had already been refunded ${when(t.created_at)} ("${t.reason}"): ` +
                `nothing more was given back; ${available}.`
            : `Refunded ${int(t.amount)} credit(s) for job ${j.job_id}; ${available}.`,
          response.already_refunded,
        );
      }}
    >
      <p>
        Gives back the {int(charged)} credit(s) job <code>{j.job_id}</code> was charged. A job is refunded at most once.
      </p>
      <Field label="Reason (shown in the ledger)">
        <Input name="refund_reason" value={reason} onValue={setReason} required autoFocus />
      </Field>
    </Confirm>
  );
}

function JobDetail(props: { team: Team; job: Job; onClose: () => void; onRefund: (job: Job) => void }) {
  const j = props.job;
  const refunded = isRefunded(j);
  const shortfall = j.costs.credits_shortfall ?? 0;
  const calls = useJobCalls(j);
  return (
    <Modal title="Job" onClose={props.onClose} wide>
      <div data-testid="job-detail">
        <dl class="facts">
          <dt>Job</dt>
          <dd>
            <code>{j.job_id}</code>
          </dd>
          <dt>Type</dt>
          <dd>{j.job_type}</dd>
          {j.user_id && (
            <>
              <dt>User</dt>
              <dd>{j.user_id}</dd>
            </>
          )}
          <dt>Status</dt>
          <dd>
            <Badge value={j.status} /> {j.error_message && <span class="muted">{j.error_message}</span>}
          </dd>
          <dt>Created</dt>
          <dd>{when(j.created_at)}</dd>
          <dt>Finished</dt>
          <dd>{when(j.completed_at)}</dd>
          <dt>Calls</dt>
          <dd>
            {j.costs.total_calls} ({j.costs.successful_calls} ok, {j.costs.failed_calls} failed), mean latency{" "}
            {j.costs.avg_latency_ms} ms
          </dd>
          <dt>Tokens</dt>
          <dd>{int(j.costs.total_tokens)}</dd>
          <dt>Cost (billed)</dt>
          <dd>{usd(j.costs.total_cost_usd)}</dd>
          <dt>Credits charged</dt>
          <dd data-testid="job-credits">
            {refunded ? <span class="refunded">{int(j.costs.credits_charged)}</span> : int(j.costs.credits_charged)}
          </dd>
          {refunded && (
            <>
              <dt>Refunded</dt>
              <JobRefund team={props.team} job={j} />
            </>
          )}
          {j.metadata && Object.keys(j.metadata).length > 0 && (
            <>
              <dt>Metadata</dt>
              <dd>
                <pre data-testid="job-metadata">{JSON.stringify(j.metadata, null, 2)}</pre>
              </dd>
            </>
          )}
          {shortfall !== 0 && (
            <>
              <dt>Credits shortfall</dt>
              <dd data-testid="job-shortfall">
                {int(shortfall)} credit(s) used beyond what the team could pay (its balance plus its overdraft limit):
                recorded, not charged
              </dd>
            </>
          )}
        </dl>
        {calls.said && (
          <div class={calls.more ? "notice" : "muted"} role="status" data-testid="job-calls-shown">
            {calls.said}
          </div>
        )}
        <div class="table-wrap">
          <table class="table">
            <thead>
              <tr>
                <th>Time</th>
                <th>Model</th>
                <th>Status</th>
                <th class="num">Prompt</th>
                <th class="num">Completion</th>
                <th class="num">Latency</th>
                <th class="num">Cost</th>
                <th>Error</th>
              </tr>
            </thead>
            <tbody>
              {calls.shown.map((c) => (
                <tr key={c.call_id}>
                  <td>{when(c.created_at)}</td>
                  <td>
                    {c.model}
                    {c.streamed && <span class="muted"> (streamed)</span>}
                  </td>
                  <td>
                    <Badge value={c.status} />
                  </td>
                  <td class="num">{int(c.usage?.prompt_tokens)}</td>
                  <td class="num">{int(c.usage?.completion_tokens)}</td>
                  <td class="num">{int(c.latency_ms)} ms</td>
                  <td class="num">{usd(c.cost_usd)}</td>
                  <td>{c.error}</td>
                </tr>
              ))}
              {calls.shown.length === 0 && (
                <tr>
                  <td colSpan={8} class="empty">
                    No calls yet.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
        <MoreCalls calls={calls} />
        {refundable(j) && !refunded && (
          <div class="form-actions">
            <button type="button" class="btn danger" onClick={() => props.onRefund(j)}>
              Refund…
            </button>
          </div>
        )}
      </div>
    </Modal>
  );
}

// ListJobCalls' largest page: as many calls as a job's view embeds.
const CALLS_PAGE = 1000;

interface JobCalls {
  shown: CallSummary[];
  // More can be read: the job's view cut its list, or ListJobCalls has a next page.
  more: boolean;
  // How many calls are shown of how many, when the list was cut; null otherwise.
  said: string | null;
  error: unknown;
  loadMore: () => Promise<void>;
}

/**
 * A job's calls: first those its view embeds (its first 1,000), then, on demand, the rest
 * through ListJobCalls (GET /jobs/{id}/calls), a page at a time, appended. Its pages start
 * at the job's first call, in the order the view shows them: calls already shown are
 * skipped (by id), and a load reads on until it adds some or reaches the last page.
 */
function useJobCalls(job: Job): JobCalls {
  const [shown, setShown] = useState<CallSummary[]>(job.calls);
  // ListJobCalls' next page: undefined before the first read, "" once the last was read.
  const [next, setNext] = useState<string | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const loadMore = async () => {
    setError(null);
    const seen = new Set(shown.map((c) => c.call_id));
    const added: CallSummary[] = [];
    let token = next ?? "";
    try {
      do {
        const page = await listPage<CallSummary>(`/jobs/${enc(job.job_id)}/calls`, "calls", {
          page_size: CALLS_PAGE,
          page_token: token,
        });
        added.push(...page.items.filter((c) => !seen.has(c.call_id)));
        token = page.next;
      } while (added.length === 0 && token);
    } catch (caught) {
      setError(caught);
      return;
    }
    setShown([...shown, ...added]);
    setNext(token);
  };
  const n = shown.length;
  const counted = job.costs.total_calls; // an open job's may have grown since it was read
  const more = next === undefined ? n < counted : next !== "";
  let said: string | null = null;
  if (more) said = `Showing ${int(n)} of ${int(Math.max(counted, n))} calls, oldest first.`;
  else if (next === "" && n >= counted) said = `All ${int(n)} calls shown.`;
  else if (next === "") said = `Showing ${int(n)} of ${int(counted)} calls: the API lists no more of them.`;
  return { shown, more, said, error, loadMore };
}

/** Reads on through ListJobCalls, below a job's cut list of calls. */
function MoreCalls({ calls }: { calls: JobCalls }) {
  if (!calls.more && !calls.error) return null;
  return (
    <>
      <ErrorBox error={calls.error} />
      {calls.more && (
        <div class="pager">
          <ActionButton onClick={calls.loadMore} busy="Loading calls…">
            Load more calls
          </ActionButton>
          <span class="muted">{calls.said}</span>
        </div>
      )}
    </>
  );
}

/**
 * A refunded job's refund, with its date and reason from its REFUND ledger entry when that
 * is in the newest page of the team's ledger (read only when the detail is opened).
 */
function JobRefund({ team, job }: { team: Team; job: Job }) {
  const entry = useAsync(async () => {
    const path = `/credits/teams/${enc(team.team_id)}/transactions`;
    const page = await listPage<CreditTransaction>(path, "transactions", { page_size: 100 });
    return page.items.find((t) => t.kind === "REFUND" && t.job_id === job.job_id) ?? null;
  }, [team.team_id, job.job_id]);
  const t = entry.data;
  return (
    <dd data-testid="job-refund" aria-busy={entry.loading}>
      <Badge value="REFUNDED" /> {int(job.costs.credits_refunded)} credit(s) given back
      {t && <> {when(t.created_at)}</>}
      {t?.reason && <span class="muted"> ({t.reason})</span>}
    </dd>
  );
}

// ---------------------------------------------------------------- keys

function Keys({ team, archived }: { team: Team; archived: boolean }) {
  const [state, setState] = useState("");
  const [version, setVersion] = useState(0);
  const [creating, setCreating] = useState(false);
  const [revealed, setRevealed] = useState<{ title: string; secret: string } | null>(null);
  const [rotating, setRotating] = useState<TeamKey | null>(null);
  const [revoking, setRevoking] = useState<TeamKey | null>(null);
  const refresh = () => setVersion((v) => v + 1);
  return (
    <div>
      <ListView<TeamKey>
        what="keys"
        deps={[team.team_id, state]}
        version={version}
        fetchPage={(token, size) =>
          listPage(`/teams/${enc(team.team_id)}/keys`, "keys", { page_size: size, page_token: token, state })
        }
        columns={[
          { title: "Name", render: (k) => k.name },
          { title: "Key", render: (k) => <code>{k.key_prefix}…</code> },
          { title: "State", render: (k) => <Badge value={k.state} /> },
          { title: "Created", render: (k) => when(k.created_at) },
          {
            title: "Expires",
            render: (k) => (k.expires_at ? when(k.expires_at) : <span class="muted">never</span>),
          },
          { title: "Last used", render: (k) => ago(k.last_used_at) },
          {
            title: "",
            render: (k) =>
              k.state === "ACTIVE" && !archived ? (
                <span class="row-actions">
                  {!k.replaced_by_key_id && (
                    <button type="button" class="btn plain" onClick={() => setRotating(k)}>
                      Rotate…
                    </button>
                  )}
                  <button type="button" class="btn danger" onClick={() => setRevoking(k)}>
                    Revoke…
                  </button>
                </span>
              ) : k.revoked_at ? (
                <span class="muted">revoked {when(k.revoked_at)}</span>
              ) : k.replaced_by_key_id ? (
                <span class="muted">rotated</span>
              ) : null,
          },
        ]}
        rowKey={(k) => k.key_id}
        searchText={(k) => `${k.name} ${k.key_prefix} ${k.state}`}
        toolbar={
          <>
            <Select
              value={state}
              onValue={setState}
              label="Key state filter"
              options={[
                ["", "All keys"],
                ["ACTIVE", "Active"],
                ["REVOKED", "Revoked"],
                ["EXPIRED", "Expired"],
              ]}
            />
            {!archived && (
              <button type="button" class="btn primary" onClick={() => setCreating(true)}>
                New key
              </button>
            )}
          </>
        }
      />
      {creating && (
        <CreateKey
          team={team}
          onClose={() => setCreating(false)}
          onCreated={(name, secret) => {
            setCreating(false);
            setRevealed({ title: `New key "${name}" for ${team.team_id}`, secret });
            refresh();
          }}
        />
      )}
      {rotating && (
        <RotateKey
          team={team}
          teamKey={rotating}
          onClose={() => setRotating(null)}
          onRotated={(secret) => {
            setRotating(null);
            setRevealed({ title: `Rotated key "${rotating.name}"`, secret });
            refresh();
          }}
        />
      )}
      {revoking && (
        <Confirm
          title={`Revoke ${revoking.key_prefix}…?`}
          action="Revoke key"
          busy="Revoking on every server process…"
          onClose={() => setRevoking(null)}
          onConfirm={async () => {
            await post(`/teams/${enc(team.team_id)}/keys/${enc(revoking.key_id)}/revoke`, {});
            setRevoking(null);
            refresh();
          }}
        >
          <p>
            Once this returns, no server process accepts the key <code>{revoking.key_prefix}…</code> ("{revoking.name}
            "). This cannot be undone.
          </p>
        </Confirm>
      )}
      {revealed && <SecretReveal title={revealed.title} secret={revealed.secret} onDone={() => setRevealed(null)} />}
    </div>
  );
}

function CreateKey(props: { team: Team; onClose: () => void; onCreated: (name: string, secret: string) => void }) {
  const [name, setName] = useState("");
  const [expires, setExpires] = useState("");
  return (
    <Modal title="New key" onClose={props.onClose}>
      <Form
        label="New key"
        submit="Create key"
        busy="Creating…"
        onSubmit={async () => {
          const response = await post<{ virtual_key: string; key: TeamKey }>(
            `/teams/${enc(props.team.team_id)}/keys/create`,
            { name: name.trim(), expires_at: fromLocalInput(expires) },
          );
          props.onCreated(response.key.name, response.virtual_key);
        }}
      >
        <Field label="Name" hint="e.g. production, staging (one active key per name)">
          <Input name="key_name" value={name} onValue={setName} required autoFocus />
        </Field>
        <Field label="Expires (optional)">
          <Input name="expires_at" type="datetime-local" value={expires} onValue={setExpires} />
        </Field>
      </Form>
    </Modal>
  );
}

function RotateKey(props: { team: Team; teamKey: TeamKey; onClose: () => void; onRotated: (secret: string) => void }) {
  const old = props.teamKey;
  const [grace, setGrace] = useState("24");
  // The new key expires when the old one would have (empty: never), unless changed here.
  const oldExpiry = localInput(old.expires_at);
  const [expires, setExpires] = useState(oldExpiry);
  const endsNow = grace.trim() !== "" && Number(grace) === 0;
  return (
    <Modal title={`Rotate ${old.key_prefix}…`} onClose={props.onClose}>
      <Form
        label="Rotate key"
        submit="Rotate key"
        busy="Rotating…"
        onSubmit={async () => {
          if (grace.trim() === "") {
            // Never 0 by omission: only an explicit 0 ends the old key now.
            throw new InputError("Grace period (hours): required (enter 0 to end the old key now)", []);
          }
          const response = await post<{ virtual_key: string }>(
            `/teams/${enc(props.team.team_id)}/keys/${enc(old.key_id)}/rotate`,
            {
              grace_period_seconds: Math.round(Number(grace) * 3600),
              // Unchanged: the old expiry to the second (the field shows minutes).
              expires_at: expires === oldExpiry ? old.expires_at || undefined : fromLocalInput(expires),
            },
          );
          props.onRotated(response.virtual_key);
        }}
      >
        <p>
          Issues a new key named "{old.name}". The old key keeps working for the grace period (never past its own
          expiry), then expires.
        </p>
        <Field
          label="Grace period (hours)"
          hint={
            endsNow ? (
              <strong class="danger-text" data-testid="grace-now">
                0: the old key stops working as soon as the new one is issued.
              </strong>
            ) : (
              "How long the old key keeps working, 0 to 720 hours (30 days). 0 ends it at once."
            )
          }
        >
          <Input
            name="grace_hours"
            type="number"
            min="0"
            max={MAX_GRACE_HOURS}
            step="any"
            value={grace}
            onValue={setGrace}
            required
            emptyHint="enter 0 to end the old key now"
          />
        </Field>
        <Field
          label="New key expires"
          hint={
            old.expires_at ? `The old key's expiry, ${when(old.expires_at)}; empty: never.` : "Empty: never, as the old key."
          }
        >
          <Input name="expires_at" type="datetime-local" value={expires} onValue={setExpires} />
        </Field>
      </Form>
    </Modal>
  );
}

// ---------------------------------------------------------------- ledger

function Ledger({ team, version }: { team: Team; version: number }) {
  return (
    <ListView<CreditTransaction>
      what="ledger entries"
      deps={[team.team_id]}
      version={version}
      fetchPage={(token, size) =>
        listPage(`/credits/teams/${enc(team.team_id)}/transactions`, "transactions", {
          page_size: Math.min(size, 500),
          page_token: token,
        })
      }
      columns={[
        { title: "When", render: (t) => when(t.created_at) },
        { title: "Kind", render: (t) => <Badge value={t.kind} /> },
        { title: "Amount", class: "num", render: (t) => signed(t.amount) },
        { title: "Reserved", class: "num", render: (t) => signed(t.reserved_delta) },
        { title: "Remaining after", class: "num", render: (t) => int(t.remaining_after) },
        { title: "Reason", render: (t) => t.reason },
        { title: "By", render: (t) => <code class="small">{t.actor}</code> },
        { title: "Job", render: (t) => (t.job_id ? <code class="small">{t.job_id.slice(0, 8)}</code> : "") },
      ]}
      rowKey={(t) => t.transaction_id}
      searchText={(t) => `${t.kind} ${t.reason} ${t.actor} ${t.job_id}`}
    />
  );
}

function signed(value: number): string {
  return value > 0 ? `+${int(value)}` : value === 0 ? "0" : int(value);
}

// ---------------------------------------------------------------- settings

/** The settings form's values, as the inputs hold them. */
interface SettingsValues {
  team_alias: string;
  budget_mode: string;
  markup_percent: string;
  tokens_per_credit: string;
  credits_per_dollar: string;
  credits_overdraft_limit: string;
  calls_per_minute: string;
  max_calls_per_job: string;
  max_cost_usd_per_job: string;
  low_credit_threshold: string;
  default_model: string;
  metadata: string;
}

type SettingName = keyof SettingsValues;

const SETTING_LABELS: Record<SettingName, string> = {
  team_alias: "Display name",
  budget_mode: "Budget mode",
  markup_percent: "Markup (%)",
  tokens_per_credit: "Tokens per credit",
  credits_per_dollar: "Credits per billed dollar",
  credits_overdraft_limit: "Overdraft limit (credits)",
  calls_per_minute: "LLM calls a minute",
  max_calls_per_job: "LLM calls per job",
  max_cost_usd_per_job: "Cost per job (USD)",
  low_credit_threshold: "Low-credit alert at (credits)",
  default_model: "Default model",
  metadata: "Metadata",
};

// Sent as JSON numbers (int32 in the API); the others as strings (exact decimals, text).
const NUMERIC_SETTINGS = new Set<SettingName>([
  "tokens_per_credit",
  "credits_overdraft_limit",
  "calls_per_minute",
  "max_calls_per_job",
  "low_credit_threshold",
]);

function settingsOf(team: Team): SettingsValues {
  return {
    team_alias: team.team_alias,
    budget_mode: team.budget_mode,
    markup_percent: team.markup_percent,
    tokens_per_credit: String(team.tokens_per_credit),
    credits_per_dollar: team.credits_per_dollar,
    credits_overdraft_limit: String(team.credits_overdraft_limit),
    calls_per_minute: String(team.calls_per_minute),
    max_calls_per_job: String(team.max_calls_per_job),
    max_cost_usd_per_job: team.max_cost_usd_per_job,
    low_credit_threshold: String(team.low_credit_threshold),
    default_model: team.default_model,
    metadata: team.metadata ? JSON.stringify(team.metadata, null, 2) : "",
  };
}

/**
 * A form over values loaded from the server that sends only what the operator changed:
 * `loaded` is what the form was filled with. When the server's values change (a reload
 * after a save, a change made elsewhere), fields the operator has not touched take the
 * new values and edited ones keep the edit.
 */
function useEdits<T extends object>(fresh: T, same: (a: T[keyof T], b: T[keyof T]) => boolean) {
  const [state, setState] = useState(() => ({ values: fresh, loaded: fresh }));
  const freshKey = JSON.stringify(fresh);
  useEffect(() => {
    setState(({ values, loaded }) => {
      const rebased = { ...fresh };
      for (const name of Object.keys(fresh) as Array<keyof T>) {
        if (!same(values[name], loaded[name])) rebased[name] = values[name];
      }
      return { values: rebased, loaded: fresh };
    });
  }, [freshKey]);
  const set =
    <K extends keyof T>(name: K) =>
    (value: T[K]) =>
      setState((s) => ({ ...s, values: { ...s.values, [name]: value } }));
  const changed = (name: keyof T) => !same(state.values[name], state.loaded[name]);
  return { values: state.values, set, changed };
}

const sameText = (a: unknown, b: unknown) => String(a).trim() === String(b).trim();

function Settings({ team, archived, onChanged }: { team: Team; archived: boolean; onChanged: () => void }) {
  const form = useEdits<SettingsValues>(settingsOf(team), sameText);
  const v = form.values;
  const groups = useEdits<{ access_groups: string[] }>({ access_groups: team.access_groups }, (a, b) =>
    sameSet(a, b),
  );
  const [saved, setSaved] = useState("");
  const [groupsSaved, setGroupsSaved] = useState("");
  const [deleting, setDeleting] = useState(false);
  // An edit makes the last "saved" notice stale.
  const edit =
    <K extends SettingName>(name: K) =>
    (value: SettingsValues[K]) => {
      setSaved("");
      form.set(name)(value);
    };
  const allGroups = useAsync(() => listAll<ModelAccessGroup>("/model-access-groups", "model_access_groups"), []);
  // The default models offered: the team's aliases, and the saved default even when its
  // groups no longer grant it (then unused), so the box shows what the team has.
  const savedDefault = team.default_model;
  const defaultOptions: Array<[string, string]> = [
    ["", "None"],
    ...team.allowed_model_aliases.map((a): [string, string] => [a, a]),
  ];
  if (savedDefault && !team.allowed_model_aliases.includes(savedDefault)) {
    defaultOptions.push([savedDefault, `${savedDefault} (in none of the team's groups: unused)`]);
  }
  const defaultOffered = defaultOptions.some(([value]) => value === v.default_model);
  const [defaultReset, setDefaultReset] = useState("");
  // A default chosen but not saved that the team's groups no longer grant (its groups
  // were saved meanwhile) goes back to the saved one, and says so: shown is what is sent.
  useEffect(() => {
    if (!defaultOffered) {
      setDefaultReset(
        `${v.default_model} is in none of the team's groups any more: the default model is back to ` +
          `${savedDefault || "none"}.`,
      );
      form.set("default_model")(savedDefault);
    }
  }, [defaultOffered]);
  if (archived) return <p class="muted">An archived team cannot be changed.</p>;
  const mode = v.budget_mode;
  // The fields shown for the chosen budget mode; a hidden one is never sent.
  const shown = (name: SettingName) =>
    (name !== "tokens_per_credit" || mode === "CONSUMPTION_TOKENS") &&
    (name !== "credits_per_dollar" || mode === "CONSUMPTION_USD");
  const count = (name: SettingName, min: string, max: string, emptyHint: string) => (
    <Input
      name={name}
      type="number"
      min={min}
      max={max}
      step="1"
      value={v[name]}
      onValue={edit(name)}
      required
      emptyHint={emptyHint}
    />
  );
  const decimal = (name: SettingName, emptyHint?: string) => (
    <Input name={name} value={v[name]} onValue={edit(name)} inputMode="decimal" required emptyHint={emptyHint} />
  );
  return (
    <div class="grid2">
      <section class="panel">
        <h3>Billing and defaults</h3>
        <Form
          label="Team settings"
          submit="Save settings"
          onSubmit={async () => {
            setSaved("");
            const changes: Record<string, unknown> = {};
            for (const name of Object.keys(SETTING_LABELS) as SettingName[]) {
              if (!shown(name) || !form.changed(name)) continue;
              const value = v[name];
              if (NUMERIC_SETTINGS.has(name) && value.trim() === "") {
                // Never 0 (no limit) by omission; the form's own check says so first.
                throw new InputError(`${SETTING_LABELS[name]}: required (enter 0 for no limit)`, []);
              }
              changes[name] =
                name === "metadata"
                  ? parseObject(value, "metadata")
                  : NUMERIC_SETTINGS.has(name)
                    ? Number(value)
                    : name === "default_model" || name === "budget_mode"
                      ? value
                      : value.trim();
            }
            const names = Object.keys(changes) as SettingName[];
            if (names.length === 0) {
              setSaved("Nothing to save: no setting was changed.");
              return;
            }
            await patch(`/teams/${enc(team.team_id)}`, changes);
            setSaved(`Settings saved. Changed: ${names.map((name) => SETTING_LABELS[name]).join(", ")}.`);
            onChanged();
          }}
        >
          <Field label="Display name">
            <Input name="team_alias" value={v.team_alias} onValue={edit("team_alias")} />
          </Field>
          <Field label="Budget mode">
            <Select
              name="budget_mode"
              value={mode}
              onValue={edit("budget_mode")}
              label="Budget mode"
              options={BUDGET_MODES}
            />
          </Field>
          <Field label="Markup (%)" hint="billed cost = provider cost × (1 + markup / 100); up to 4 decimals">
            {decimal("markup_percent", "enter 0 for no markup")}
          </Field>
          {mode === "CONSUMPTION_TOKENS" && (
            <Field label="Tokens per credit">
              {count("tokens_per_credit", "1", MAX_TOKENS_PER_CREDIT, "at least 1")}
            </Field>
          )}
          {mode === "CONSUMPTION_USD" && (
            <Field label="Credits per billed dollar">
              {decimal("credits_per_dollar")}
            </Field>
          )}
          <Field
            label="Overdraft limit (credits)"
            hint="how far below zero a consumption job may take credits; 0: none"
          >
            {count("credits_overdraft_limit", "0", MAX_CREDITS, "enter 0 for no overdraft")}
          </Field>
          <Field label="LLM calls a minute" hint="over all keys and server processes; 0: no limit">
            {count("calls_per_minute", "0", MAX_CALLS_PER_MINUTE, "enter 0 for no limit")}
          </Field>
          <Field label="LLM calls per job" hint="a job costs the same however many calls it makes; 0: no limit">
            {count("max_calls_per_job", "0", MAX_CALLS_PER_JOB, "enter 0 for no limit")}
          </Field>
          <Field
            label="Cost per job (USD)"
            hint="most a job's calls may cost the team, markup included; calls must then set max_tokens; 0: no limit"
          >
            {decimal("max_cost_usd_per_job", "enter 0 for no limit")}
          </Field>
          <Field
            label="Low-credit alert at (credits)"
            hint="webhook team.credits_low when remaining credits fall to this; 0: no alert"
          >
            {count("low_credit_threshold", "0", MAX_CREDITS, "enter 0 for no alert")}
          </Field>
          <Field label="Default model">
            <Select
              name="default_model"
              value={v.default_model}
              onValue={(value) => {
                setDefaultReset("");
                edit("default_model")(value);
              }}
              label="Default model"
              options={defaultOptions}
            />
          </Field>
          {defaultReset && (
            <p class="notice" role="status" data-testid="default-model-reset">
              {defaultReset}
            </p>
          )}
          <Field label="Metadata (JSON object; empty clears it)">
            <textarea
              name="metadata"
              rows={4}
              value={v.metadata}
              onInput={(e) => edit("metadata")((e.currentTarget as HTMLTextAreaElement).value)}
            />
          </Field>
        </Form>
        {saved && (
          <div class="notice" role="status">
            {saved}
          </div>
        )}
      </section>
      <section class="panel">
        <h3>Model access groups</h3>
        <ErrorBox error={allGroups.error} />
        <Form
          label="Access groups"
          submit="Save access groups"
          onSubmit={async () => {
            setGroupsSaved("");
            if (!groups.changed("access_groups")) {
              setGroupsSaved("Nothing to save: the access groups were not changed.");
              return;
            }
            await put(`/teams/${enc(team.team_id)}/access-groups`, { access_groups: groups.values.access_groups });
            setGroupsSaved("Access groups saved.");
            onChanged();
          }}
        >
          <Choices
            name="team_access_groups"
            options={(allGroups.data ?? []).map((g) => g.group_name)}
            unavailable={notLoaded(allGroups)}
            chosen={groups.values.access_groups}
            onChange={(chosen) => {
              setGroupsSaved("");
              groups.set("access_groups")(chosen);
            }}
          />
          <p class="muted">Calls to aliases the team no longer reaches are refused from the next call on.</p>
        </Form>
        {groupsSaved && (
          <div class="notice" role="status">
            {groupsSaved}
          </div>
        )}
        <h3>Delete</h3>
        <p class="muted">
          A team without jobs or ledger entries is deleted; one with history is archived: its keys are revoked at once
          and its jobs, calls and ledger are kept.
        </p>
        <button type="button" class="btn danger" onClick={() => setDeleting(true)}>
          Delete or archive team…
        </button>
      </section>
      {deleting && (
        <Confirm
          title={`Delete ${team.team_id}?`}
          action="Delete team"
          busy="Deleting (revoking keys on every server process)…"
          onClose={() => setDeleting(false)}
          onConfirm={async () => {
            const result = await del<{ outcome: string }>(`/teams/${enc(team.team_id)}`);
            setDeleting(false);
            if (result.outcome === "ARCHIVED") onChanged();
            else navigate("/teams");
          }}
        >
          <p>
            Deleting a team with history archives it: every key is revoked at once, and it becomes read-only. This
            cannot be undone.
          </p>
        </Confirm>
      )}
    </div>
  );
}
