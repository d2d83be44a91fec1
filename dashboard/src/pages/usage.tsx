// Usage: figures and charts from GET /api/{teams|organizations}/{id}/usage.

import { useState } from "preact/hooks";
import { enc, get, listAll, type Organization, type Team, type UsageFigures, type UsageReport } from "../api";
import { HBars, Lines, PALETTE, StackedBars, type Series } from "../charts";
import { compact, int, usd, usdShort } from "../format";
import { ErrorBox, Field, Loading, Select, useAsync } from "../ui";

const RANGES: Array<[string, string]> = [
  ["7", "Last 7 days"],
  ["30", "Last 30 days"],
  ["90", "Last 90 days"],
  ["365", "Last 365 days"],
];

function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** Every day of the report's range, so that quiet days show as zero, not as gaps. */
function daysOf(report: UsageReport): string[] {
  const days: string[] = [];
  const end = new Date(report.end_date + "T00:00:00Z");
  for (let d = new Date(report.start_date + "T00:00:00Z"); d <= end; d.setUTCDate(d.getUTCDate() + 1)) {
    days.push(isoDay(d));
  }
  return days;
}

const n = (v: string | number | undefined) => Number(v ?? 0);

// The report lists this many job types and teams (the API's most): every row, so the
// tables add up to the totals. The charts show the first CHART_TOP (by provider cost).
const REPORT_LIMIT = 1000;
const CHART_TOP = 8;

export function UsagePanel(props: { scope: "teams" | "organizations"; id: string }) {
  const [range, setRange] = useState("30");
  const [jobType, setJobType] = useState("");
  const report = useAsync(async () => {
    const end = new Date();
    const start = new Date(end.getTime() - (Number(range) - 1) * 86400_000);
    const path = `/${props.scope}/${enc(props.id)}/usage`;
    const query = { start_date: isoDay(start), end_date: isoDay(end), limit: REPORT_LIMIT };
    // With a job type chosen, the report names only it: the filter's choices come from
    // the report of every job type.
    const [filtered, all] = await Promise.all([
      get<UsageReport>(path, { ...query, job_type: jobType }),
      jobType ? get<UsageReport>(path, query) : undefined,
    ]);
    return { report: filtered, jobTypes: (all ?? filtered).job_types.map((t) => t.job_type) };
  }, [props.scope, props.id, range, jobType]);
  const data = report.data;
  return (
    <section class="usage" aria-label="Usage">
      <div class="toolbar">
        <Select value={range} onValue={setRange} options={RANGES} label="Date range" />
        <Select value={jobType} onValue={setJobType} label="Job type" options={jobTypeOptions(data?.jobTypes, jobType)} />
        <button type="button" class="btn plain" onClick={report.reload}>
          Refresh
        </button>
      </div>
      <ErrorBox error={report.error} />
      {report.loading && !data && <Loading what="usage" />}
      {data && <UsageView report={data.report} showTeams={props.scope === "organizations"} />}
    </section>
  );
}

function jobTypeOptions(known: string[] | undefined, chosen: string): Array<[string, string]> {
  const types = [...(known ?? [])];
  if (chosen && !types.includes(chosen)) types.push(chosen);
  return [["", "All job types"], ...types.map((t): [string, string] => [t, t])];
}

/** " (top 8 of 12, by provider cost)" when a chart shows only the first of `total`. */
function topOf(total: number): string {
  return total > CHART_TOP ? ` (top ${CHART_TOP} of ${total}, by provider cost)` : "";
}

function Totals({ totals }: { totals: UsageFigures }) {
  const cards: Array<[string, string]> = [
    ["Jobs", int(totals.jobs)],
    ["Completed", int(totals.jobs_completed)],
    ["Calls", int(totals.calls)],
    ["Tokens", int(totals.total_tokens)],
    ["Provider cost", usd(totals.provider_cost_usd)],
    ["Billed", usd(totals.billed_cost_usd)],
    ["Margin", usd(totals.margin_usd)],
    ["Credits charged", int(totals.credits_charged)],
    ["Credits refunded", int(totals.credits_refunded)],
    ["Provider cost / credit", totals.provider_cost_usd_per_credit ? usd(totals.provider_cost_usd_per_credit) : "—"],
  ];
  return (
    <div class="cards" data-testid="usage-totals">
      {cards.map(([label, value]) => (
        <div class="card" key={label}>
          <div class="card-label">{label}</div>
          <div class="card-value">{value}</div>
        </div>
      ))}
    </div>
  );
}

export function UsageView({ report, showTeams }: { report: UsageReport; showTeams: boolean }) {
  const labels = daysOf(report);
  const byDay = new Map(report.days.map((d) => [d.date, d.usage]));
  const col = (pick: (u: UsageFigures) => number) => labels.map((day) => (byDay.has(day) ? pick(byDay.get(day)!) : 0));
  const allTypes = report.job_types.map((t) => t.job_type);
  const types = allTypes.slice(0, CHART_TOP);
  const typeSeries = (pick: (u: UsageFigures) => number): Series[] =>
    types.map((type, i) => {
      const cells = new Map(report.daily_job_types.filter((c) => c.job_type === type).map((c) => [c.date, c.usage]));
      return {
        name: type,
        color: PALETTE[i % PALETTE.length],
        values: labels.map((day) => (cells.has(day) ? pick(cells.get(day)!) : 0)),
      };
    });
  const count = (v: number) => compact(v);
  return (
    <div>
      <p class="muted">
        {report.start_date} to {report.end_date} (UTC). Jobs count on the day they were created, calls on the day they
        were made.
      </p>
      <Totals totals={report.totals} />
      <div class="charts">
        <StackedBars
          title="Jobs per day, by status"
          labels={labels}
          format={count}
          counts
          series={[
            { name: "completed", color: "#16a34a", values: col((u) => n(u.jobs_completed)) },
            { name: "failed", color: "#dc2626", values: col((u) => n(u.jobs_failed)) },
            { name: "expired", color: "#9ca3af", values: col((u) => n(u.jobs_expired)) },
            { name: "open", color: "#2563eb", values: col((u) => n(u.jobs_pending) + n(u.jobs_in_progress)) },
          ]}
        />
        <StackedBars
          title="LLM calls per day"
          labels={labels}
          format={count}
          counts
          series={[
            { name: "succeeded", color: "#2563eb", values: col((u) => n(u.calls) - n(u.calls_failed)) },
            { name: "failed or cancelled", color: "#dc2626", values: col((u) => n(u.calls_failed)) },
          ]}
        />
        <StackedBars
          title="Tokens per day"
          labels={labels}
          format={count}
          counts
          series={[
            { name: "prompt", color: "#7c3aed", values: col((u) => n(u.prompt_tokens)) },
            { name: "completion", color: "#0891b2", values: col((u) => n(u.completion_tokens)) },
          ]}
        />
        <Lines
          title="Provider cost and billed cost per day (USD)"
          labels={labels}
          format={usdShort}
          empty="No costs in this range."
          series={[
            { name: "provider cost", color: "#dc2626", values: col((u) => n(u.provider_cost_usd)) },
            { name: "billed", color: "#16a34a", values: col((u) => n(u.billed_cost_usd)) },
          ]}
        />
        <Lines
          title="Margin per day (USD)"
          labels={labels}
          format={usdShort}
          empty={n(report.totals.billed_cost_usd) ? "No margin in this range (no markup)." : "No costs in this range."}
          series={[{ name: "margin", color: "#d97706", values: col((u) => n(u.margin_usd)) }]}
        />
        <StackedBars
          title="Credits charged per day"
          labels={labels}
          format={count}
          counts
          series={[{ name: "credits", color: "#2563eb", values: col((u) => n(u.credits_charged)) }]}
        />
        {types.length > 0 && (
          <StackedBars
            title={`Calls per day, by job type${topOf(allTypes.length)}`}
            labels={labels}
            format={count}
            counts
            series={typeSeries((u) => n(u.calls))}
          />
        )}
        {types.length > 0 && (
          <Lines
            title={`Provider cost per day, by job type (USD)${topOf(allTypes.length)}`}
            labels={labels}
            format={usdShort}
            empty="No costs in this range."
            series={typeSeries((u) => n(u.provider_cost_usd))}
          />
        )}
        <HBars
          title={`Provider cost by job type${topOf(report.job_types.length)}`}
          format={(v) => usdShort(v)}
          rows={report.job_types
            .slice(0, CHART_TOP)
            .map((t) => ({ label: t.job_type, value: n(t.usage.provider_cost_usd) }))}
        />
        {showTeams && (
          <HBars
            title={`Provider cost by team${topOf(report.teams.length)}`}
            format={(v) => usdShort(v)}
            rows={report.teams
              .slice(0, CHART_TOP)
              .map((t) => ({ label: t.team_id, value: n(t.usage.provider_cost_usd) }))}
          />
        )}
      </div>
      <BreakdownTable
        title="By job type"
        totals={report.totals}
        rows={report.job_types.map((t) => ({ name: t.job_type, usage: t.usage }))}
      />
      {showTeams && (
        <BreakdownTable
          title="By team"
          totals={report.totals}
          rows={report.teams.map((t) => ({ name: t.team_id, usage: t.usage, href: `#/teams/${enc(t.team_id)}` }))}
        />
      )}
    </div>
  );
}

/**
 * Whether `rows` hold every job and call of `totals`. A full page of rows may be all there
 * are: only figures that fall short say the report left rows out (each had a job or a call).
 */
function addsUp(rows: { usage: UsageFigures }[], totals: UsageFigures): boolean {
  const count = (value: string | undefined) => BigInt(value ?? 0);
  return (["jobs", "calls"] as const).every(
    (figure) => rows.reduce((sum, r) => sum + count(r.usage[figure]), 0n) === count(totals[figure]),
  );
}

function BreakdownTable(props: {
  title: string;
  totals: UsageFigures;
  rows: { name: string; usage: UsageFigures; href?: string }[];
}) {
  if (props.rows.length === 0) return null;
  return (
    <section data-testid={`usage-${props.title.replace("By ", "").replace(" ", "-")}`}>
      <h3>
        {props.title} <span class="muted">({int(props.rows.length)})</span>
      </h3>
      {props.rows.length >= REPORT_LIMIT && !addsUp(props.rows, props.totals) && (
        <p class="warning" role="status">
          Only the {int(REPORT_LIMIT)} with the highest provider cost are listed (the API's most): these rows do not
          add up to the totals.
        </p>
      )}
      <div class="table-wrap">
        <table class="table">
          <thead>
            <tr>
              <th>{props.title.replace("By ", "")}</th>
              <th class="num">Jobs</th>
              <th class="num">Calls</th>
              <th class="num">Tokens</th>
              <th class="num">Provider cost</th>
              <th class="num">Billed</th>
              <th class="num">Margin</th>
              <th class="num">Credits</th>
              <th class="num">Refunded</th>
            </tr>
          </thead>
          <tbody>
            {props.rows.map((r) => (
              <tr key={r.name}>
                <td>{r.href ? <a href={r.href}>{r.name}</a> : r.name}</td>
                <td class="num">{int(r.usage.jobs)}</td>
                <td class="num">{int(r.usage.calls)}</td>
                <td class="num">{int(r.usage.total_tokens)}</td>
                <td class="num">{usd(r.usage.provider_cost_usd)}</td>
                <td class="num">{usd(r.usage.billed_cost_usd)}</td>
                <td class="num">{usd(r.usage.margin_usd)}</td>
                <td class="num">{int(r.usage.credits_charged)}</td>
                <td class="num">{int(r.usage.credits_refunded)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

/** The Usage page: pick an organization, and optionally one of its teams. */
export function UsagePage() {
  const orgs = useAsync(() => listAll<Organization>("/organizations", "organizations"), []);
  const [org, setOrg] = useState("");
  const [team, setTeam] = useState("");
  const chosenOrg = org || orgs.data?.[0]?.organization_id || "";
  const teams = useAsync(
    () => (chosenOrg ? listAll<Team>(`/organizations/${enc(chosenOrg)}/teams`, "teams") : Promise.resolve([])),
    [chosenOrg],
  );
  return (
    <div>
      <h1>Usage</h1>
      <ErrorBox error={orgs.error} />
      {orgs.loading && <Loading what="organizations" />}
      {orgs.data && orgs.data.length === 0 && <p class="muted">Create an organization first.</p>}
      {orgs.data && orgs.data.length > 0 && (
        <div class="toolbar">
          <Field label="Organization">
            <Select
              value={chosenOrg}
              onValue={(v) => {
                setOrg(v);
                setTeam("");
              }}
              label="Organization"
              options={orgs.data.map((o): [string, string] => [o.organization_id, `${o.name} (${o.organization_id})`])}
            />
          </Field>
          <Field label="Team">
            <Select
              value={team}
              onValue={setTeam}
              label="Team"
              options={[["", "All teams"], ...(teams.data ?? []).map((t): [string, string] => [t.team_id, t.team_id])]}
            />
          </Field>
        </div>
      )}
      {chosenOrg && <UsagePanel key={team || chosenOrg} scope={team ? "teams" : "organizations"} id={team || chosenOrg} />}
    </div>
  );
}
