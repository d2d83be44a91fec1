// Model aliases: semantic names (ChatAgent) mapped to LiteLLM models with fallbacks.

import { useState } from "preact/hooks";
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
  type ModelAccessGroup,
  type ModelAlias,
} from "../api";
import { when } from "../format";
import {
  Choices,
  Confirm,
  ErrorBox,
  Field,
  Form,
  Input,
  ListView,
  Modal,
  Select,
  notLoaded,
  partlySaved,
  sameSet,
  useAsync,
  type Async,
} from "../ui";

export function ModelsPage() {
  const [group, setGroup] = useState("");
  const [editing, setEditing] = useState<ModelAlias | "new" | null>(null);
  const [version, setVersion] = useState(0);
  const groups = useAsync(() => listAll<ModelAccessGroup>("/model-access-groups", "model_access_groups"), []);
  const done = () => {
    setEditing(null);
    setVersion((v) => v + 1);
  };
  return (
    <div>
      <div class="page-head">
        <h1>Model aliases</h1>
        <button type="button" class="btn primary" onClick={() => setEditing("new")}>
          New alias
        </button>
      </div>
      <p class="muted">
        Teams call a semantic name; it routes to a LiteLLM model, then to its fallbacks in order when that fails.
      </p>
      <ListView<ModelAlias>
        what="aliases"
        deps={[group]}
        version={version}
        fetchPage={(token, size) =>
          listPage("/models", "models", { page_size: size, page_token: token, access_group: group })
        }
        columns={[
          { title: "Alias", render: (m) => <strong>{m.model_alias}</strong> },
          { title: "Model", render: (m) => <code>{m.actual_model}</code> },
          { title: "Fallbacks", render: (m) => m.fallback_models.join(" → ") || <span class="muted">none</span> },
          { title: "Groups", render: (m) => m.access_groups.join(", ") || <span class="muted">none</span> },
          { title: "Updated", render: (m) => when(m.updated_at) },
        ]}
        rowKey={(m) => m.model_alias}
        searchText={(m) => `${m.model_alias} ${m.actual_model} ${m.display_name} ${m.description}`}
        onRow={(m) => setEditing(m)}
        toolbar={
          <Select
            value={group}
            onValue={setGroup}
            label="Access group filter"
            options={[
              ["", "All groups"],
              ...(groups.data ?? []).map((g): [string, string] => [g.group_name, g.group_name]),
            ]}
          />
        }
      />
      {editing && (
        <AliasEditor
          alias={editing === "new" ? null : editing}
          groups={groups}
          onClose={() => setEditing(null)}
          onDone={done}
          onChanged={() => setVersion((v) => v + 1)}
        />
      )}
    </div>
  );
}

function AliasEditor(props: {
  alias: ModelAlias | null;
  groups: Async<ModelAccessGroup[]>;
  onClose: () => void;
  onDone: () => void;
  onChanged: () => void;
}) {
  // The alias as last read from the server: what a save compares the form with.
  const [a, setAlias] = useState(props.alias);
  const catalog = useAsync(() => get<{ models: string[]; unpriced_models?: string[] }>("/catalog/models"), []);
  const [name, setName] = useState(a?.model_alias ?? "");
  const [actual, setActual] = useState(a?.actual_model ?? "");
  const [fallbacks, setFallbacks] = useState<string[]>(a?.fallback_models ?? []);
  const [groups, setGroups] = useState<string[]>(a?.access_groups ?? []);
  const [displayName, setDisplayName] = useState(a?.display_name ?? "");
  const [description, setDescription] = useState(a?.description ?? "");
  const [deleting, setDeleting] = useState(false);
  const [force, setForce] = useState(false);
  const models = catalog.data?.models ?? [];
  const unpriced = new Set(catalog.data?.unpriced_models ?? []);
  const primary = actual || models[0] || "";
  // The primary model is never its own fallback: choosing it unticks it there, so the
  // order shown is exactly what is saved.
  const fallbackModels = fallbacks.filter((f) => f !== primary);
  const choosePrimary = (model: string) => {
    setActual(model);
    setFallbacks((chosen) => chosen.filter((f) => f !== model));
  };
  const routeUnpriced = [primary, ...fallbackModels].filter((m) => unpriced.has(m));
  // The groups that exist (and those the alias is in, as last read): a group deleted
  // since is not offered, so not sent either.
  const offered = props.groups.data && [
    ...new Set([...props.groups.data.map((g) => g.group_name), ...(a?.access_groups ?? [])]),
  ];
  const chosenGroups = offered ? groups.filter((g) => offered.includes(g)) : groups;
  const goneGroups = groups.filter((g) => !chosenGroups.includes(g));
  // After a refused save: the alias and the groups read again, fields not edited take
  // the server's values, and edited ones keep the edit (what was not saved).
  const refresh = async () => {
    props.groups.reload();
    if (!a) return;
    let fresh: ModelAlias;
    try {
      fresh = await get<ModelAlias>(`/models/${enc(a.model_alias)}`);
    } catch {
      return; // deleted meanwhile: the error shown says so
    }
    const keep = <T,>(value: T, loaded: T, server: T) => (JSON.stringify(value) === JSON.stringify(loaded) ? server : value);
    setActual((v) => keep(v, a.actual_model, fresh.actual_model));
    setFallbacks((v) => keep(v, a.fallback_models, fresh.fallback_models));
    setDisplayName((v) => keep(v, a.display_name, fresh.display_name));
    setDescription((v) => keep(v, a.description, fresh.description));
    setGroups((v) => (sameSet(v, a.access_groups) ? fresh.access_groups : v));
    setAlias(fresh);
  };
  const save = async (alias: ModelAlias) => {
    const path = `/models/${enc(alias.model_alias)}`;
    const changes: Record<string, unknown> = {};
    const changed: string[] = [];
    if (primary !== alias.actual_model || fallbackModels.join("\n") !== alias.fallback_models.join("\n")) {
      Object.assign(changes, { actual_model: primary, fallback_models: fallbackModels });
      changed.push("model and fallbacks");
    }
    if (displayName !== alias.display_name) {
      changes.display_name = displayName;
      changed.push("display name");
    }
    if (description !== alias.description) {
      changes.description = description;
      changed.push("description");
    }
    const groupsChanged = !sameSet(chosenGroups, alias.access_groups);
    // The membership first: it is what a change made meanwhile (a group deleted) refuses,
    // and then nothing at all is saved.
    if (groupsChanged) {
      try {
        await put(`${path}/access-groups`, { access_groups: chosenGroups });
      } catch (error) {
        await refresh();
        throw error;
      }
    }
    if (changed.length > 0) {
      try {
        await patch(path, changes);
      } catch (error) {
        if (!groupsChanged) throw error;
        props.onChanged();
        await refresh();
        throw partlySaved(error, ["access groups"], changed);
      }
    }
    props.onDone();
  };
  return (
    <Modal title={a ? `Alias ${a.model_alias}` : "New model alias"} onClose={props.onClose} wide>
      <ErrorBox error={catalog.error} />
      <Form
        label={a ? "Edit alias" : "New alias"}
        submit={a ? "Save alias" : "Create alias"}
        busy="Checking the models with the LiteLLM proxy…"
        extra={
          a && (
            <button type="button" class="btn danger" onClick={() => setDeleting(true)}>
              Delete…
            </button>
          )
        }
        onSubmit={async () => {
          if (a) return save(a);
          try {
            await post("/models/create", {
              model_alias: name.trim(),
              actual_model: primary,
              fallback_models: fallbackModels,
              access_groups: chosenGroups,
              display_name: displayName.trim(),
              description: description.trim(),
            });
          } catch (error) {
            props.groups.reload();
            throw error;
          }
          props.onDone();
        }}
      >
        <div class="grid2">
          {!a && (
            <Field label="Alias" hint="The name teams call, e.g. ChatAgent">
              <Input name="model_alias" value={name} onValue={setName} required autoFocus />
            </Field>
          )}
          <Field label="LiteLLM model" hint="What the LiteLLM proxy serves (GET /api/catalog/models)">
            <Select
              name="actual_model"
              value={primary}
              onValue={choosePrimary}
              label="LiteLLM model"
              options={models.map((m): [string, string] => [m, unpriced.has(m) ? `${m} (no price)` : m])}
            />
          </Field>
          <Field label="Display name">
            <Input name="display_name" value={displayName} onValue={setDisplayName} />
          </Field>
          <Field label="Description">
            <Input name="description" value={description} onValue={setDescription} />
          </Field>
        </div>
        <Field label="Fallbacks, tried in the order chosen" group>
          <Choices
            name="fallback_models"
            options={models.filter((m) => m !== primary)}
            chosen={fallbackModels}
            onChange={setFallbacks}
          />
        </Field>
        {fallbackModels.length > 0 && (
          <p class="muted" data-testid="route-order">
            Order: {[primary, ...fallbackModels].join(" → ")}
          </p>
        )}
        {routeUnpriced.length > 0 && (
          <p class="warning" role="status">
            LiteLLM has no price for {routeUnpriced.join(", ")}: calls served by it are recorded at $0, so margins
            and dollar budgets would be wrong. Set input_cost_per_token and output_cost_per_token in its model_info
            in the LiteLLM config (0 for a free model).
          </p>
        )}
        <Field label="Access groups" group>
          <Choices
            name="alias_access_groups"
            options={offered ?? []}
            unavailable={notLoaded(props.groups)}
            chosen={chosenGroups}
            onChange={setGroups}
          />
        </Field>
        {goneGroups.length > 0 && (
          <p class="warning" role="status" data-testid="gone-groups">
            No longer exists, so not saved: {goneGroups.join(", ")}.
          </p>
        )}
      </Form>
      {a && deleting && (
        <Confirm
          title={`Delete alias ${a.model_alias}?`}
          action={force ? "Delete anyway" : "Delete alias"}
          busy="Deleting…"
          onClose={() => {
            setDeleting(false);
            setForce(false);
          }}
          onConfirm={async () => {
            try {
              await del(`/models/${enc(a.model_alias)}`, { force: force ? "true" : undefined });
            } catch (error) {
              if (error instanceof ApiError && error.reason === "RESOURCE_IN_USE") setForce(true);
              throw error;
            }
            props.onDone();
          }}
        >
          {force ? (
            <p class="warning">It is some teams' default model: deleting it anyway clears their default model.</p>
          ) : (
            <p>Teams lose the alias at once. Past calls keep its name.</p>
          )}
        </Confirm>
      )}
    </Modal>
  );
}
