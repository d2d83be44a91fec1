// The audit log: every admin change, who made it, and the resource before and after.

import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { listPage, type AuditEntry } from "../api";
import { when } from "../format";
import { Input, JsonView, ListView, Modal, Select } from "../ui";

const TYPES: Array<[string, string]> = [
  ["", "All resources"],
  ["organization", "Organizations"],
  ["team", "Teams (and credits)"],
  ["team_key", "Team keys"],
  ["model_access_group", "Access groups"],
  ["model_alias", "Model aliases"],
  ["webhook_endpoint", "Webhook endpoints"],
];

export function AuditPage() {
  const [type, setType] = useState("");
  const [id, setId] = useState("");
  return (
    <div>
      <h1>Audit log</h1>
      <AuditList resourceType={type} resourceId={type ? id.trim() : ""}>
        <Select value={type} onValue={setType} options={TYPES} label="Resource type" />
        {type && <Input value={id} onValue={setId} placeholder="Resource id (exact)" aria-label="Resource id" />}
      </AuditList>
    </div>
  );
}

export function AuditList(props: { resourceType: string; resourceId: string; children?: ComponentChildren }) {
  const [open, setOpen] = useState<AuditEntry | null>(null);
  return (
    <>
      <ListView<AuditEntry>
        what="audit entries"
        deps={[props.resourceType, props.resourceId]}
        fetchPage={(token, size) =>
          listPage<AuditEntry>("/audit-log", "entries", {
            page_size: size,
            page_token: token,
            resource_type: props.resourceType,
            resource_id: props.resourceId,
          })
        }
        columns={[
          { title: "When", render: (e) => when(e.created_at) },
          { title: "Action", render: (e) => <code>{e.action}</code> },
          { title: "Resource", render: (e) => `${e.resource_type} ${e.resource_id}` },
          { title: "Who", render: (e) => e.actor },
          { title: "From", render: (e) => e.peer },
        ]}
        rowKey={(e) => e.audit_id}
        searchText={(e) => `${e.action} ${e.resource_type} ${e.resource_id} ${e.peer} ${e.request_id}`}
        onRow={setOpen}
        toolbar={props.children}
      />
      {open && (
        <Modal title={`${open.action} ${open.resource_type} ${open.resource_id}`} onClose={() => setOpen(null)} wide>
          <p class="muted">
            {when(open.created_at)} by {open.actor} from {open.peer || "?"} (request {open.request_id || "—"})
          </p>
          <div class="grid2">
            <div>
              <h3>Before</h3>
              <JsonView value={open.before} />
            </div>
            <div>
              <h3>After</h3>
              <JsonView value={open.after} />
            </div>
          </div>
        </Modal>
      )}
    </>
  );
}
