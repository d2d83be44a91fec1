// Webhooks: endpoints (the signing secret shown once at creation), their deliveries.

import { useState } from "preact/hooks";
import {
  ApiError,
  WEBHOOK_EVENT_TYPES,
  del,
  enc,
  listAll,
  listPage,
  patch,
  post,
  type CreateWebhookEndpointResponse,
  type Organization,
  type RetryWebhookDeliveriesResponse,
  type UpdateWebhookEndpointRequest,
  type WebhookDelivery,
  type WebhookEndpoint,
} from "../api";
import { int, when } from "../format";
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
  JsonView,
  ListView,
  Loading,
  Modal,
  SecretReveal,
  Select,
  useAsync,
} from "../ui";

export function WebhooksPage() {
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<WebhookEndpoint | null>(null);
  // The new endpoint's secret: in memory until "Done", never stored or put in the URL.
  const [revealed, setRevealed] = useState<CreateWebhookEndpointResponse | null>(null);
  const [version, setVersion] = useState(0);
  const refresh = () => setVersion((v) => v + 1);
  return (
    <div>
      <div class="page-head">
        <h1>Webhooks</h1>
        <button type="button" class="btn primary" onClick={() => setCreating(true)}>
          New endpoint
        </button>
      </div>
      <p class="muted">
        Endpoints are told what needs attention, without polling: <code>team.credits_low</code> (a charge took a team's
        remaining credits to its low-credit alert, set in the team's settings), <code>team_key.expiring</code> (a
        team key expires within a week), <code>job.completed</code> (with
        the credits charged), <code>job.failed</code>, <code>job.expired</code>, <code>job.late_charge</code> (a completed job charged more for a call that ended after it) and <code>job.refunded</code> (a job's charge given back). Each event is POSTed as JSON <code>{'{"type", "timestamp", "data"}'}</code>, signed as
        the Standard Webhooks specification says (headers <code>webhook-id</code>, <code>webhook-timestamp</code>,{" "}
        <code>webhook-signature</code>; any of its libraries verifies them with the endpoint's secret). A 2xx answer
        delivers it; anything else is retried with backoff for about 7 hours, then the delivery is marked failed.
        Delivery is at least once: deduplicate on <code>webhook-id</code>. A paused endpoint's events are kept and
        none is sent until it is resumed; the sender pauses an endpoint itself when a delivery failed for good and
        nothing reached it meanwhile. Once a receiver is fixed, retry its failed deliveries from the endpoint's page.
      </p>
      <ListView<WebhookEndpoint>
        what="endpoints"
        deps={[]}
        version={version}
        fetchPage={(token, size) => listPage("/webhooks", "endpoints", { page_size: size, page_token: token })}
        columns={[
          {
            title: "URL",
            class: "cell-wide",
            render: (e) => (
              <>
                <a href={`#/webhooks/${enc(e.endpoint_id)}`} class="wrap-anywhere clamp3" title={e.url}>
                  {e.url}
                </a>
                {e.description && (
                  <span class="muted small clip" title={e.description}>
                    {e.description}
                  </span>
                )}
              </>
            ),
          },
          { title: "State", render: (e) => <PausedState endpoint={e} /> },
          { title: "Events", render: (e) => <EventTypes types={e.event_types} /> },
          { title: "Organization", render: (e) => <OrganizationOf endpoint={e} /> },
          { title: "Secret", render: (e) => <code>{e.secret_prefix}…</code> },
          { title: "Pending", class: "num", render: (e) => int(e.pending_deliveries) },
          { title: "Failed", class: "num", render: (e) => int(e.failed_deliveries) },
          { title: "Created", render: (e) => when(e.created_at) },
          {
            title: "",
            render: (e) => (
              <button
                type="button"
                class="btn danger"
                onClick={(event) => {
                  event.stopPropagation(); // not a click on the row
                  setDeleting(e);
                }}
              >
                Delete…
              </button>
            ),
          },
        ]}
        rowKey={(e) => e.endpoint_id}
        onRow={(e) => navigate(`/webhooks/${enc(e.endpoint_id)}`)}
        searchText={(e) =>
          `${e.url} ${e.description} ${e.event_types.join(" ")} ${e.organization_id} ${e.secret_prefix} ` +
          (e.paused ? `paused ${e.paused_reason ?? ""}` : "active")
        }
        toolbar={
          <button type="button" class="btn plain" onClick={refresh}>
            Refresh
          </button>
        }
      />
      <p class="muted">Click an endpoint to see its deliveries.</p>
      {creating && (
        <CreateEndpoint
          onClose={() => setCreating(false)}
          onCreated={(created) => {
            setCreating(false);
            setRevealed(created);
            refresh();
          }}
        />
      )}
      {revealed && (
        <SecretReveal
          title={`Endpoint ${revealed.endpoint.url} created`}
          secret={revealed.secret}
          label="Signing secret"
          testid="webhook-secret"
          stored="I have stored the secret with the receiver"
          warning={
            <>
              <strong>Signing secret, shown only this once: store it with your receiver.</strong> The receiver verifies
              every delivery's <code>webhook-signature</code> with it. The server keeps it sealed; nobody, this
              dashboard included, can show it again. If it is lost, delete the endpoint and create a new one.
            </>
          }
          onDone={() => setRevealed(null)}
        />
      )}
      {deleting && (
        <DeleteEndpoint
          endpoint={deleting}
          onClose={() => setDeleting(null)}
          onDeleted={() => {
            setDeleting(null);
            refresh();
          }}
        />
      )}
    </div>
  );
}

function EventTypes({ types }: { types: string[] }) {
  return <>{types.join(", ")}</>;
}

/** Active, or paused with why (cut to a line; the whole reason on hover). */
function PausedState({ endpoint }: { endpoint: WebhookEndpoint }) {
  if (!endpoint.paused) return <Badge value="ACTIVE" />;
  return (
    <>
      <Badge value="PAUSED" />
      {endpoint.paused_reason && (
        <span class="muted small clip" title={endpoint.paused_reason}>
          {endpoint.paused_reason}
        </span>
      )}
    </>
  );
}

function OrganizationOf({ endpoint }: { endpoint: WebhookEndpoint }) {
  if (!endpoint.organization_id) return <span class="muted">all</span>;
  return <a href={`#/organizations/${enc(endpoint.organization_id)}`}>{endpoint.organization_id}</a>;
}

function CreateEndpoint(props: { onClose: () => void; onCreated: (created: CreateWebhookEndpointResponse) => void }) {
  const orgs = useAsync(() => listAll<Organization>("/organizations", "organizations"), []);
  const [url, setUrl] = useState("");
  const [events, setEvents] = useState<string[]>([]);
  const [org, setOrg] = useState("");
  const [description, setDescription] = useState("");
  return (
    <Modal title="New webhook endpoint" onClose={props.onClose}>
      <ErrorBox error={orgs.error} />
      <Form
        label="New webhook endpoint"
        submit="Create endpoint"
        busy="Creating…"
        onSubmit={async () => {
          const created = await post<CreateWebhookEndpointResponse>("/webhooks/create", {
            url: url.trim(),
            event_types: events,
            organization_id: org,
            description: description.trim(),
          });
          props.onCreated(created);
        }}
      >
        <Field label="URL" hint="where events are POSTed: an absolute http:// or https:// URL">
          <Input name="url" value={url} onValue={setUrl} placeholder="https://example.com/webhooks" required autoFocus />
        </Field>
        <Field label="Events" group>
          <Choices name="event_types" options={[...WEBHOOK_EVENT_TYPES]} chosen={events} onChange={setEvents} />
        </Field>
        <Field label="Organization" hint="only events of this organization's teams">
          <Select
            name="organization_id"
            value={org}
            onValue={setOrg}
            label="Organization"
            options={[
              ["", "All organizations"],
              ...(orgs.data ?? []).map((o): [string, string] => [o.organization_id, `${o.organization_id} (${o.name})`]),
            ]}
          />
        </Field>
        <Field label="Description (optional)">
          <Input name="description" value={description} onValue={setDescription} />
        </Field>
      </Form>
    </Modal>
  );
}

function DeleteEndpoint(props: { endpoint: WebhookEndpoint; onClose: () => void; onDeleted: () => void }) {
  const e = props.endpoint;
  return (
    <Confirm
      title="Delete this endpoint?"
      action="Delete endpoint"
      busy="Deleting…"
      onClose={props.onClose}
      onConfirm={async () => {
        await del(`/webhooks/${enc(e.endpoint_id)}`);
        props.onDeleted();
      }}
    >
      <p>
        No more events are sent to <code>{e.url}</code>. Its deliveries are deleted with it, the{" "}
        {int(e.pending_deliveries)} pending included. This cannot be undone.
      </p>
    </Confirm>
  );
}

function EditEndpoint(props: { endpoint: WebhookEndpoint; onClose: () => void; onSaved: () => void }) {
  const e = props.endpoint;
  const [url, setUrl] = useState(e.url);
  const [events, setEvents] = useState<string[]>(e.event_types);
  const [description, setDescription] = useState(e.description);
  return (
    <Modal title="Edit webhook endpoint" onClose={props.onClose}>
      <Form
        label="Edit webhook endpoint"
        submit="Save changes"
        busy="Saving…"
        extra={
          <button type="button" class="btn plain" onClick={props.onClose}>
            Cancel
          </button>
        }
        onSubmit={async () => {
          // The API keeps the event types when given none: say so rather than save nothing.
          if (events.length === 0) {
            const fields = [{ field: "Events", description: "choose at least one" }];
            throw new InputError("Events: choose at least one", fields);
          }
          const body: UpdateWebhookEndpointRequest = {
            url: url.trim(),
            event_types: events,
            description: description.trim(),
          };
          await patch<WebhookEndpoint>(`/webhooks/${enc(e.endpoint_id)}`, body);
          props.onSaved();
        }}
      >
        <Field label="URL" hint="where events are POSTed: an absolute http:// or https:// URL">
          <Input name="url" value={url} onValue={setUrl} required autoFocus />
        </Field>
        <Field label="Events" group>
          <Choices name="event_types" options={[...WEBHOOK_EVENT_TYPES]} chosen={events} onChange={setEvents} />
        </Field>
        <Field label="Description (optional)">
          <Input name="description" value={description} onValue={setDescription} />
        </Field>
        <p class="muted small">
          The signing secret, the organization and the deliveries stay as they are. To change the organization, create
          a new endpoint.
        </p>
      </Form>
    </Modal>
  );
}

// ---------------------------------------------------------------- one endpoint: its deliveries

export function WebhookPage({ id }: { id: string }) {
  // There is no Get method: the endpoints are few, so find it in the list.
  const endpoint = useAsync(async () => {
    const found = (await listAll<WebhookEndpoint>("/webhooks", "endpoints")).find((e) => e.endpoint_id === id);
    if (!found) throw new ApiError(404, `no webhook endpoint ${id}`, "NOT_FOUND");
    return found;
  }, [id]);
  const [status, setStatus] = useState("");
  const [open, setOpen] = useState<WebhookDelivery | null>(null);
  const [deleting, setDeleting] = useState(false);
  const [version, setVersion] = useState(0);
  const [testing, setTesting] = useState<{ sent?: string; error?: unknown }>({});
  const [editing, setEditing] = useState(false);
  // The last pause, resume or retry: what it did, or its error.
  const [acted, setActed] = useState<{ done?: string; error?: unknown }>({});
  if (endpoint.loading && !endpoint.data) return <Loading what="endpoint" />;
  if (!endpoint.data) {
    return (
      <div>
        <p class="crumbs">
          <a href="#/webhooks">Webhooks</a> /
        </p>
        <ErrorBox error={endpoint.error} />
      </div>
    );
  }
  const e = endpoint.data;
  return (
    <div>
      <p class="crumbs">
        <a href="#/webhooks">Webhooks</a> /
      </p>
      <div class="page-head">
        <h1>
          {e.url} <small class="muted">{e.endpoint_id}</small> {e.paused && <Badge value="PAUSED" />}
        </h1>
        <div class="actions">
          <ActionButton
            busy={e.paused ? "Resuming…" : "Pausing…"}
            onError={(error) => setActed({ error })}
            title={
              e.paused
                ? "Send its deliveries again; those waiting on a retry's backoff go at once"
                : "Hold its deliveries: events are still recorded, none is sent until resumed"
            }
            onClick={async () => {
              setActed({});
              const paused = !e.paused;
              await patch<WebhookEndpoint>(`/webhooks/${enc(id)}`, { paused } satisfies UpdateWebhookEndpointRequest);
              setActed({ done: paused ? "Endpoint paused: its deliveries are held." : "Endpoint resumed." });
              endpoint.reload();
              setVersion((v) => v + 1);
            }}
          >
            {e.paused ? "Resume" : "Pause"}
          </ActionButton>
          {e.failed_deliveries > 0 && (
            <ActionButton
              busy="Retrying…"
              onError={(error) => setActed({ error })}
              title="Put the failed deliveries back to pending, due now, for one more attempt each"
              onClick={async () => {
                setActed({});
                const { retried } = await post<RetryWebhookDeliveriesResponse>(`/webhooks/${enc(id)}/retry`, {});
                setActed({
                  done:
                    retried > 0
                      ? `${int(retried)} failed deliver${retried === 1 ? "y" : "ies"} retried: pending again, due now` +
                        (e.paused ? " (held until the endpoint is resumed)." : ".")
                      : "No failed delivery was left to retry.",
                });
                endpoint.reload();
                setVersion((v) => v + 1);
              }}
            >
              Retry failed ({int(e.failed_deliveries)})
            </ActionButton>
          )}
          <button type="button" class="btn" onClick={() => setEditing(true)}>
            Edit…
          </button>
          <button
            type="button"
            class="btn"
            onClick={async () => {
              setTesting({});
              try {
                const sent = await post<WebhookDelivery>(`/webhooks/${enc(id)}/test`, {});
                setTesting({ sent: sent.event_id });
                setVersion((v) => v + 1);
              } catch (error) {
                setTesting({ error });
              }
            }}
          >
            Send test event
          </button>
          <button type="button" class="btn danger" onClick={() => setDeleting(true)}>
            Delete…
          </button>
        </div>
      </div>
      {testing.sent && (
        <p role="status">
          A <code>webhook.test</code> event was queued (<code>webhook-id</code> {testing.sent}); refresh to see its
          delivery.
        </p>
      )}
      {testing.error !== undefined && <ErrorBox error={testing.error} />}
      {acted.done && (
        <div class="notice" role="status">
          {acted.done}
        </div>
      )}
      {acted.error !== undefined && <ErrorBox error={acted.error} />}
      {e.paused && (
        <div class="warning" data-testid="paused-reason">
          <strong>Paused{e.paused_at && ` since ${when(e.paused_at)}`}:</strong>{" "}
          <span class="wrap-anywhere">{e.paused_reason || "no reason recorded"}</span>. Its events are still recorded;
          none is sent until it is resumed.
        </div>
      )}
      <dl class="facts">
        <dt>Events</dt>
        <dd>
          <EventTypes types={e.event_types} />
        </dd>
        <dt>Organization</dt>
        <dd>
          <OrganizationOf endpoint={e} />
        </dd>
        <dt>Signing secret</dt>
        <dd>
          <code>{e.secret_prefix}…</code>
        </dd>
        <dt>Description</dt>
        <dd class="wrap-anywhere">{e.description || <span class="muted">none</span>}</dd>
        <dt>Deliveries</dt>
        <dd>
          {int(e.pending_deliveries)} pending, {int(e.failed_deliveries)} failed
        </dd>
        <dt>Created</dt>
        <dd>{when(e.created_at)}</dd>
      </dl>
      <h2>Deliveries</h2>
      <ListView<WebhookDelivery>
        what="deliveries"
        deps={[id, status]}
        version={version}
        fetchPage={(token, size) =>
          listPage(`/webhooks/${enc(id)}/deliveries`, "deliveries", { page_size: size, page_token: token, status })
        }
        columns={[
          { title: "Created", render: (d) => when(d.created_at) },
          { title: "Event", render: (d) => <code>{d.event_type}</code> },
          { title: "Status", render: (d) => <Badge value={d.status} /> },
          { title: "Attempts", class: "num", render: (d) => int(d.attempts) },
          { title: "Last answer", render: (d) => <LastAnswer delivery={d} /> },
          {
            title: "Next attempt",
            render: (d) =>
              d.status !== "pending" ? (
                <span class="muted">—</span>
              ) : e.paused ? (
                <span class="muted">held while paused</span>
              ) : (
                when(d.next_attempt_at)
              ),
          },
          { title: "Delivered", render: (d) => when(d.delivered_at) },
        ]}
        rowKey={(d) => d.delivery_id}
        searchText={(d) => `${d.event_type} ${d.event_id} ${d.status} ${d.last_error} ${JSON.stringify(d.payload)}`}
        onRow={(d) => setOpen(d)}
        toolbar={
          <>
            <Select
              value={status}
              onValue={setStatus}
              label="Delivery status filter"
              options={[
                ["", "All statuses"],
                ["pending", "Pending"],
                ["delivered", "Delivered"],
                ["failed", "Failed"],
              ]}
            />
            <button
              type="button"
              class="btn plain"
              onClick={() => {
                endpoint.reload();
                setVersion((v) => v + 1);
              }}
            >
              Refresh
            </button>
          </>
        }
      />
      <p class="muted">Newest first. Click a delivery to see what was sent.</p>
      {open && <DeliveryDetail delivery={open} onClose={() => setOpen(null)} />}
      {deleting && (
        <DeleteEndpoint endpoint={e} onClose={() => setDeleting(false)} onDeleted={() => navigate("/webhooks")} />
      )}
      {editing && (
        <EditEndpoint
          endpoint={e}
          onClose={() => setEditing(false)}
          onSaved={() => {
            setEditing(false);
            setActed({ done: "Endpoint saved." });
            endpoint.reload();
          }}
        />
      )}
    </div>
  );
}

function LastAnswer({ delivery }: { delivery: WebhookDelivery }) {
  const d = delivery;
  if (d.attempts === 0) return <span class="muted">not tried yet</span>;
  return (
    <>
      {d.last_status_code ? `HTTP ${d.last_status_code}` : <span class="muted">no answer</span>}
      {d.last_error && <div class="muted small wrap-anywhere">{d.last_error}</div>}
    </>
  );
}

function DeliveryDetail(props: { delivery: WebhookDelivery; onClose: () => void }) {
  const d = props.delivery;
  return (
    <Modal title="Delivery" onClose={props.onClose} wide>
      <div data-testid="delivery-detail">
        <dl class="facts">
          <dt>Event</dt>
          <dd>
            <code>{d.event_type}</code>
          </dd>
          <dt>webhook-id</dt>
          <dd>
            <code>{d.event_id}</code>
          </dd>
          <dt>Status</dt>
          <dd>
            <Badge value={d.status} /> after {int(d.attempts)} attempt(s)
          </dd>
          <dt>Last answer</dt>
          <dd>
            <LastAnswer delivery={d} />
          </dd>
          {d.status === "pending" && (
            <>
              <dt>Next attempt</dt>
              <dd>{when(d.next_attempt_at)}</dd>
            </>
          )}
          <dt>Created</dt>
          <dd>{when(d.created_at)}</dd>
          <dt>Delivered</dt>
          <dd>{when(d.delivered_at)}</dd>
        </dl>
        <h3>Payload</h3>
        <JsonView value={d.payload} />
      </div>
    </Modal>
  );
}
