// Teams: list (by organization and status), create (the first key shown once).

import { useEffect, useState } from "preact/hooks";
import {
  enc,
  listAll,
  listPage,
  post,
  type BudgetMode,
  type CreateTeamResponse,
  type ModelAccessGroup,
  type ModelAlias,
  type Organization,
  type Team,
} from "../api";
import { MAX_CREDITS, int, titleCase } from "../format";
import { navigate } from "../router";
import {
  Badge,
  Choices,
  ErrorBox,
  Field,
  Form,
  Input,
  ListView,
  Modal,
  SecretReveal,
  Select,
  notLoaded,
  useAsync,
} from "../ui";

export const BUDGET_MODES: Array<[BudgetMode, string]> = [
  ["JOB_BASED", "Job-based: 1 credit per completed job"],
  ["CONSUMPTION_TOKENS", "Tokens: credits from tokens used"],
  ["CONSUMPTION_USD", "USD: credits from billed cost"],
];

/** A budget mode in a word, as BUDGET_MODES names it (for lists). */
export function budgetLabel(mode: BudgetMode): string {
  return BUDGET_MODES.find(([m]) => m === mode)?.[1].split(":")[0] ?? titleCase(mode);
}

export function TeamsPage() {
  return (
    <div>
      <h1>Teams</h1>
      <TeamsList canCreate />
    </div>
  );
}

export function TeamsList(props: { organizationId?: string; canCreate: boolean }) {
  const [status, setStatus] = useState("");
  const [org, setOrg] = useState(props.organizationId ?? "");
  const [creating, setCreating] = useState(false);
  const orgs = useAsync(
    () => (props.organizationId ? Promise.resolve([]) : listAll<Organization>("/organizations", "organizations")),
    [props.organizationId],
  );
  const organization = props.organizationId ?? org;
  return (
    <div>
      <ListView<Team>
        what="teams"
        deps={[status, organization]}
        fetchPage={(token, size) =>
          listPage("/teams", "teams", { page_size: size, page_token: token, status, organization_id: organization })
        }
        columns={[
          { title: "Team", render: (t) => <a href={`#/teams/${enc(t.team_id)}`}>{t.team_id}</a> },
          { title: "Name", render: (t) => t.team_alias },
          { title: "Organization", render: (t) => t.organization_id },
          { title: "Status", render: (t) => <Badge value={t.status} /> },
          { title: "Available", class: "num", render: (t) => int(t.credits_available) },
          { title: "Allocated", class: "num", render: (t) => int(t.credits_allocated) },
          { title: "Budget", render: (t) => budgetLabel(t.budget_mode) },
        ]}
        rowKey={(t) => t.team_id}
        searchText={(t) => `${t.team_id} ${t.team_alias} ${t.organization_id}`}
        onRow={(t) => navigate(`/teams/${enc(t.team_id)}`)}
        toolbar={
          <>
            {!props.organizationId && (
              <Select
                value={org}
                onValue={setOrg}
                label="Organization filter"
                options={[
                  ["", "All organizations"],
                  ...(orgs.data ?? []).map((o): [string, string] => [o.organization_id, o.organization_id]),
                ]}
              />
            )}
            <Select
              value={status}
              onValue={setStatus}
              label="Status filter"
              options={[
                ["", "Any status but archived"],
                ["ACTIVE", "Active"],
                ["SUSPENDED", "Suspended"],
                ["PAUSED", "Paused"],
                ["ARCHIVED", "Archived"],
              ]}
            />
            {props.canCreate && (
              <button type="button" class="btn primary" onClick={() => setCreating(true)}>
                New team
              </button>
            )}
          </>
        }
      />
      {creating && <CreateTeam organizationId={organization} onClose={() => setCreating(false)} />}
    </div>
  );
}

function CreateTeam(props: { organizationId: string; onClose: () => void }) {
  const choices = useAsync(
    () =>
      Promise.all([
        listAll<Organization>("/organizations", "organizations"),
        listAll<ModelAccessGroup>("/model-access-groups", "model_access_groups"),
        listAll<ModelAlias>("/models", "models"),
      ]),
    [],
  );
  const [org, setOrg] = useState(props.organizationId);
  const [teamId, setTeamId] = useState("");
  const [alias, setAlias] = useState("");
  const [groups, setGroups] = useState<string[]>([]);
  const [credits, setCredits] = useState("100");
  const [defaultModel, setDefaultModel] = useState("");
  const [mode, setMode] = useState<string>("JOB_BASED");
  const [keyName, setKeyName] = useState("default");
  const [created, setCreated] = useState<CreateTeamResponse | null>(null);
  const [defaultReset, setDefaultReset] = useState("");
  const [orgs, allGroups, aliases] = choices.data ?? [[], [], []];
  const reachable = aliases.filter((a) => a.access_groups.some((g) => groups.includes(g))).map((a) => a.model_alias);
  // The default model is one of the chosen groups' aliases: unticking the group that
  // grants it sets it back to none, and says so, so what is shown is what is sent.
  const offered = reachable.includes(defaultModel);
  useEffect(() => {
    if (defaultModel && choices.data && !offered) {
      setDefaultReset(`${defaultModel} is in none of the chosen groups any more: the default model is back to none.`);
      setDefaultModel("");
    }
  }, [defaultModel, offered, Boolean(choices.data)]);
  if (created) {
    return (
      <SecretReveal
        title={`Team ${created.team_id} created`}
        secret={created.virtual_key}
        detail={
          <p>
            Its first virtual key (<code>{created.key_prefix}…</code>, named <code>{keyName || "default"}</code>). The
            team sends it as <code>Authorization: Bearer sk-…</code>.
          </p>
        }
        onDone={() => navigate(`/teams/${enc(created.team_id)}`)}
      />
    );
  }
  const chosenOrg = org || orgs[0]?.organization_id || "";
  return (
    <Modal title="New team" onClose={props.onClose} wide>
      <ErrorBox error={choices.error} />
      <Form
        label="New team"
        submit="Create team"
        busy="Creating…"
        onSubmit={async () => {
          const response = await post<CreateTeamResponse>("/teams/create", {
            organization_id: chosenOrg,
            team_id: teamId.trim(),
            team_alias: alias.trim(),
            access_groups: groups,
            credits_allocated: Number(credits || 0),
            default_model: offered ? defaultModel : "",
            budget_mode: mode,
            key_name: keyName.trim(),
          });
          setCreated(response);
        }}
      >
        <div class="grid2">
          <Field label="Organization">
            <Select
              name="organization_id"
              value={chosenOrg}
              onValue={setOrg}
              label="Organization"
              options={orgs.map((o): [string, string] => [o.organization_id, `${o.name} (${o.organization_id})`])}
            />
          </Field>
          <Field label="Team ID" hint="e.g. acme-corp; cannot change later">
            <Input name="team_id" value={teamId} onValue={setTeamId} required autoFocus />
          </Field>
          <Field label="Display name">
            <Input name="team_alias" value={alias} onValue={setAlias} />
          </Field>
          <Field label="Initial credits">
            <Input
              name="credits_allocated"
              type="number"
              min="0"
              max={MAX_CREDITS}
              value={credits}
              onValue={setCredits}
            />
          </Field>
          <Field label="Budget mode">
            <Select name="budget_mode" value={mode} onValue={setMode} label="Budget mode" options={BUDGET_MODES} />
          </Field>
          <Field label="First key's name">
            <Input name="key_name" value={keyName} onValue={setKeyName} />
          </Field>
        </div>
        <Field label="Model access groups" group>
          <Choices
            name="access_groups"
            options={allGroups.map((g) => g.group_name)}
            unavailable={notLoaded(choices)}
            chosen={groups}
            onChange={setGroups}
          />
        </Field>
        <Field label="Default model" hint="Used when a call names no model; must be in the chosen groups.">
          <Select
            name="default_model"
            value={offered ? defaultModel : ""}
            onValue={(value) => {
              setDefaultReset("");
              setDefaultModel(value);
            }}
            label="Default model"
            options={[["", "None"], ...reachable.map((a): [string, string] => [a, a])]}
          />
        </Field>
        {defaultReset && (
          <p class="notice" role="status" data-testid="default-model-reset">
            {defaultReset}
          </p>
        )}
      </Form>
    </Modal>
  );
}
