// Model access groups: named sets of model aliases that teams are given.

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
  notLoaded,
  partlySaved,
  sameSet,
  useAsync,
} from "../ui";

export function GroupsPage() {
  const [editing, setEditing] = useState<ModelAccessGroup | "new" | null>(null);
  const [version, setVersion] = useState(0);
  const done = () => {
    setEditing(null);
    setVersion((v) => v + 1);
  };
  return (
    <div>
      <div class="page-head">
        <h1>Model access groups</h1>
        <button type="button" class="btn primary" onClick={() => setEditing("new")}>
          New group
        </button>
      </div>
      <p class="muted">Teams reach model aliases only through their groups (deny by default).</p>
      <ListView<ModelAccessGroup>
        what="groups"
        deps={[]}
        version={version}
        fetchPage={(token, size) =>
          listPage("/model-access-groups", "model_access_groups", { page_size: size, page_token: token })
        }
        columns={[
          { title: "Group", render: (g) => <strong>{g.group_name}</strong> },
          { title: "Display name", render: (g) => g.display_name },
          { title: "Aliases", render: (g) => g.model_aliases.join(", ") || <span class="muted">none</span> },
          { title: "Description", render: (g) => g.description },
          { title: "Updated", render: (g) => when(g.updated_at) },
        ]}
        rowKey={(g) => g.group_name}
        searchText={(g) => `${g.group_name} ${g.display_name} ${g.description} ${g.model_aliases.join(" ")}`}
        onRow={(g) => setEditing(g)}
      />
      {editing && (
        <GroupEditor
          group={editing === "new" ? null : editing}
          onClose={() => setEditing(null)}
          onDone={done}
          onChanged={() => setVersion((v) => v + 1)}
        />
      )}
    </div>
  );
}

function GroupEditor(props: {
  group: ModelAccessGroup | null;
  onClose: () => void;
  onDone: () => void;
  onChanged: () => void;
}) {
  // The group as last read from the server: what a save compares the form with.
  const [g, setGroup] = useState(props.group);
  const aliases = useAsync(() => listAll<ModelAlias>("/models", "models"), []);
  const [name, setName] = useState(g?.group_name ?? "");
  const [displayName, setDisplayName] = useState(g?.display_name ?? "");
  const [description, setDescription] = useState(g?.description ?? "");
  const [members, setMembers] = useState<string[]>(g?.model_aliases ?? []);
  const [deleting, setDeleting] = useState(false);
  const [force, setForce] = useState(false);
  // The aliases that exist (and those in the group, as last read): an alias deleted since
  // is not offered, so not sent either.
  const offered = aliases.data && [
    ...new Set([...aliases.data.map((a) => a.model_alias), ...(g?.model_aliases ?? [])]),
  ];
  const chosen = offered ? members.filter((m) => offered.includes(m)) : members;
  const gone = members.filter((m) => !chosen.includes(m));
  // After a refused save: the group and the aliases read again, fields not edited take
  // the server's values, and edited ones keep the edit (what was not saved).
  const refresh = async () => {
    aliases.reload();
    if (!g) return;
    let fresh: ModelAccessGroup;
    try {
      fresh = await get<ModelAccessGroup>(`/model-access-groups/${enc(g.group_name)}`);
    } catch {
      return; // deleted meanwhile: the error shown says so
    }
    setDisplayName((v) => (v === g.display_name ? fresh.display_name : v));
    setDescription((v) => (v === g.description ? fresh.description : v));
    setMembers((v) => (sameSet(v, g.model_aliases) ? fresh.model_aliases : v));
    setGroup(fresh);
  };
  const save = async (group: ModelAccessGroup) => {
    const path = `/model-access-groups/${enc(group.group_name)}`;
    const changes: Record<string, string> = {};
    const changed: string[] = [];
    if (displayName !== group.display_name) {
      changes.display_name = displayName;
      changed.push("display name");
    }
    if (description !== group.description) {
      changes.description = description;
      changed.push("description");
    }
    const membersChanged = !sameSet(chosen, group.model_aliases);
    // The membership first: it is what a change made meanwhile (an alias deleted)
    // refuses, and then nothing at all is saved.
    if (membersChanged) {
      try {
        await put(`${path}/models`, { model_aliases: chosen });
      } catch (error) {
        await refresh();
        throw error;
      }
    }
    if (changed.length > 0) {
      try {
        await patch(path, changes);
      } catch (error) {
        if (!membersChanged) throw error;
        props.onChanged();
        await refresh();
        throw partlySaved(error, ["model aliases"], changed);
      }
    }
    props.onDone();
  };
  return (
    <Modal title={g ? `Group ${g.group_name}` : "New model access group"} onClose={props.onClose} wide>
      <ErrorBox error={aliases.error} />
      <Form
        label={g ? "Edit group" : "New group"}
        submit={g ? "Save group" : "Create group"}
        busy={g ? "Saving…" : "Creating…"}
        extra={
          g && (
            <button type="button" class="btn danger" onClick={() => setDeleting(true)}>
              Delete…
            </button>
          )
        }
        onSubmit={async () => {
          if (g) return save(g);
          try {
            await post("/model-access-groups/create", {
              group_name: name.trim(),
              display_name: displayName.trim(),
              description: description.trim(),
              model_aliases: chosen,
            });
          } catch (error) {
            aliases.reload();
            throw error;
          }
          props.onDone();
        }}
      >
        {!g && (
          <Field label="Group name" hint="e.g. gpt-models; cannot change later">
            <Input name="group_name" value={name} onValue={setName} required autoFocus />
          </Field>
        )}
        <Field label="Display name">
          <Input name="display_name" value={displayName} onValue={setDisplayName} />
        </Field>
        <Field label="Description">
          <Input name="description" value={description} onValue={setDescription} />
        </Field>
        <Field label="Model aliases in the group" group>
          <Choices
            name="model_aliases"
            options={offered ?? []}
            unavailable={notLoaded(aliases)}
            chosen={chosen}
            onChange={setMembers}
          />
        </Field>
        {gone.length > 0 && (
          <p class="warning" role="status" data-testid="gone-aliases">
            No longer exists, so not saved: {gone.join(", ")}.
          </p>
        )}
      </Form>
      {g && deleting && (
        <Confirm
          title={`Delete group ${g.group_name}?`}
          action={force ? "Delete anyway" : "Delete group"}
          busy="Deleting…"
          onClose={() => {
            setDeleting(false);
            setForce(false);
          }}
          onConfirm={async () => {
            try {
              await del(`/model-access-groups/${enc(g.group_name)}`, { force: force ? "true" : undefined });
            } catch (error) {
              if (error instanceof ApiError && error.reason === "RESOURCE_IN_USE") {
                setForce(true);
              }
              throw error;
            }
            props.onDone();
          }}
        >
          {force ? (
            <p class="warning">
              Teams use this group. Deleting it anyway takes its aliases from them at once (unless another of their
              groups grants them).
            </p>
          ) : (
            <p>Teams lose the aliases this group granted them at once. Past calls are kept.</p>
          )}
        </Confirm>
      )}
    </Modal>
  );
}
