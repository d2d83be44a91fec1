// The audit log: every admin change, who made it, and the resource before and after.

import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { ApiError, listPage, type AuditEntry, type Page, type Query } from "../api";
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

const UNFILTERABLE = new Set<string>(); // types this server refused as a filter: not asked again

/**
 * One page of the audit log for a resource type (and id). A server that does not know the
 * type as a filter (INVALID_REQUEST naming resource_type) is read unfiltered and the
 * entries picked here; the page token is then "<server token>|<entries of that server
 * page already shown>".
 */
async function auditPage(type: string, id: string, token: string, size: number): Promise<Page<AuditEntry>> {
  const filtered = (query: Query) => listPage<AuditEntry>("/audit-log", "entries", query);
  if (!token.includes("|") && !UNFILTERABLE.has(type)) {
    try {
      return await filtered({ page_size: size, page_token: token, resource_type: type, resource_id: id });
    } catch (error) {
      const unknownType =
        type &&
        error instanceof ApiError &&
        error.status === 400 &&
        error.fields.some((f) => f.field === "resource_type");
      if (!unknownType) throw error;
      UNFILTERABLE.add(type);
    }
  }
  const [start, skipped] = token.includes("|") ? token.split("|") : ["", "0"];
  const matches = (e: AuditEntry) => e.resource_type === type && (!id || e.resource_id === id);
  const items: AuditEntry[] = [];
  let serverToken = start;
  let skip = Number(skipped) || 0;
  for (;;) {
    const page = await filtered({ page_size: 1000, page_token: serverToken });
    const found = page.items.filter(matches).slice(skip);
    const room = size - items.length;
    if (found.length > room) {
      items.push(...found.slice(0, room));
      return { items, next: `${serverToken}|${skip + room}` };
    }
    items.push(...found);
    if (!page.next) return { items, next: "" };
    serverToken = page.next;
    skip = 0;
    if (items.length === size) return { items, next: `${serverToken}|0` };
  }
}

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
        fetchPage={(token, size) => auditPage(props.resourceType, props.resourceId, token, size)}
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
