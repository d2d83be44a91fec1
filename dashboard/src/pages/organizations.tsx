// Organizations: list, create, edit, delete (archive when they have history), their teams.

import { useState } from "preact/hooks";
import { del, enc, get, listPage, patch, post, type Organization } from "../api";
import { navigate } from "../router";
import { when } from "../format";
import {
  Badge,
  Confirm,
  ErrorBox,
  Field,
  Form,
  Input,
  JsonView,
  ListView,
  Loading,
  Modal,
  Select,
  parseObject,
  useAsync,
} from "../ui";
import { TeamsList } from "./teams";
import { UsagePanel } from "./usage";

export function OrganizationsPage() {
  const [status, setStatus] = useState("ACTIVE");
  const [creating, setCreating] = useState(false);
  return (
    <div>
      <div class="page-head">
        <h1>Organizations</h1>
        <button type="button" class="btn primary" onClick={() => setCreating(true)}>
          New organization
        </button>
      </div>
      <ListView<Organization>
        what="organizations"
        deps={[status]}
        fetchPage={(token, size) =>
          listPage("/organizations", "organizations", { page_size: size, page_token: token, status })
        }
        columns={[
          { title: "ID", render: (o) => <a href={`#/organizations/${enc(o.organization_id)}`}>{o.organization_id}</a> },
          { title: "Name", render: (o) => o.name },
          { title: "Status", render: (o) => <Badge value={o.status} /> },
          { title: "Created", render: (o) => when(o.created_at) },
        ]}
        rowKey={(o) => o.organization_id}
        searchText={(o) => `${o.organization_id} ${o.name}`}
        onRow={(o) => navigate(`/organizations/${enc(o.organization_id)}`)}
        toolbar={
          <Select
            value={status}
            onValue={setStatus}
            label="Status"
            options={[
              ["ACTIVE", "Active"],
              ["ARCHIVED", "Archived"],
            ]}
          />
        }
      />
      {creating && <CreateOrganization onClose={() => setCreating(false)} />}
    </div>
  );
}

function CreateOrganization({ onClose }: { onClose: () => void }) {
  const [id, setId] = useState("");
  const [name, setName] = useState("");
  const [metadata, setMetadata] = useState("");
  return (
    <Modal title="New organization" onClose={onClose}>
      <Form
        label="New organization"
        submit="Create organization"
        busy="Creating…"
        onSubmit={async () => {
          const org = await post<Organization>("/organizations/create", {
            organization_id: id.trim(),
            name: name.trim(),
            metadata: parseObject(metadata, "metadata"),
          });
          navigate(`/organizations/${enc(org.organization_id)}`);
        }}
      >
        <Field label="Organization ID" hint="Letters, digits, _ - . (1-64), e.g. org_acme. Cannot change later.">
          <Input name="organization_id" value={id} onValue={setId} required autoFocus />
        </Field>
        <Field label="Name">
          <Input name="name" value={name} onValue={setName} required />
        </Field>
        <Field label="Metadata (JSON object, optional)">
          <textarea
            name="metadata"
            rows={3}
            value={metadata}
            onInput={(e) => setMetadata((e.currentTarget as HTMLTextAreaElement).value)}
          />
        </Field>
      </Form>
    </Modal>
  );
}

export function OrganizationPage({ id }: { id: string }) {
  const org = useAsync(() => get<Organization>(`/organizations/${enc(id)}`), [id]);
  const [editing, setEditing] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [outcome, setOutcome] = useState("");
  if (org.loading && !org.data) return <Loading what="organization" />;
  if (!org.data) return <ErrorBox error={org.error} />;
  const o = org.data;
  const archived = o.status === "ARCHIVED";
  return (
    <div>
      <p class="crumbs">
        <a href="#/organizations">Organizations</a> /
      </p>
      <div class="page-head">
        <h1>
          {o.name} <small class="muted">{o.organization_id}</small> <Badge value={o.status} />
        </h1>
        {!archived && (
          <div class="actions">
            <button type="button" class="btn plain" onClick={() => setEditing(true)}>
              Edit
            </button>
            <button type="button" class="btn danger" onClick={() => setDeleting(true)}>
              Delete…
            </button>
          </div>
        )}
      </div>
      {outcome && <div class="notice">{outcome}</div>}
      <dl class="facts">
        <dt>Created</dt>
        <dd>{when(o.created_at)}</dd>
        <dt>Updated</dt>
        <dd>{when(o.updated_at)}</dd>
        <dt>Metadata</dt>
        <dd>
          <JsonView value={o.metadata} />
        </dd>
      </dl>
      <h2>Teams</h2>
      <TeamsList organizationId={o.organization_id} canCreate={!archived} />
      <h2>Usage</h2>
      <UsagePanel scope="organizations" id={o.organization_id} />
      {editing && (
        <EditOrganization
          org={o}
          onClose={() => setEditing(false)}
          onSaved={() => {
            setEditing(false);
            org.reload();
          }}
        />
      )}
      {deleting && (
        <Confirm
          title={`Delete ${o.organization_id}?`}
          action="Delete organization"
          busy="Deleting…"
          onClose={() => setDeleting(false)}
          onConfirm={async () => {
            const result = await del<{ outcome: string }>(`/organizations/${enc(o.organization_id)}`);
            setDeleting(false);
            if (result.outcome === "ARCHIVED") {
              setOutcome("The organization had (archived) teams, so it was archived: kept read-only with its history.");
              org.reload();
            } else {
              navigate("/organizations");
            }
          }}
        >
          <p>
            An organization that never had a team is deleted. One whose teams are all archived is archived instead and
            keeps their history. One with a team that is not archived cannot be deleted: delete the teams first.
          </p>
        </Confirm>
      )}
    </div>
  );
}

function EditOrganization(props: { org: Organization; onClose: () => void; onSaved: () => void }) {
  const [name, setName] = useState(props.org.name);
  const [metadata, setMetadata] = useState(props.org.metadata ? JSON.stringify(props.org.metadata, null, 2) : "");
  return (
    <Modal title={`Edit ${props.org.organization_id}`} onClose={props.onClose}>
      <Form
        submit="Save"
        onSubmit={async () => {
          await patch(`/organizations/${enc(props.org.organization_id)}`, {
            name: name.trim(),
            metadata: parseObject(metadata, "metadata"),
          });
          props.onSaved();
        }}
      >
        <Field label="Name">
          <Input name="name" value={name} onValue={setName} required />
        </Field>
        <Field label="Metadata (JSON object; empty clears it)">
          <textarea
            name="metadata"
            rows={5}
            value={metadata}
            onInput={(e) => setMetadata((e.currentTarget as HTMLTextAreaElement).value)}
          />
        </Field>
      </Form>
    </Modal>
  );
}
