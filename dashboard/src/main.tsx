// The admin dashboard: sign-in with the admin key, then the console.

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, onBusy, request, setUnauthorizedHandler } from "./api";
import { clearKey, currentKey, storeKey } from "./auth";
import { AuditPage } from "./pages/audit";
import { GroupsPage } from "./pages/groups";
import { ModelsPage } from "./pages/models";
import { OrganizationPage, OrganizationsPage } from "./pages/organizations";
import { TeamPage } from "./pages/team";
import { TeamsPage } from "./pages/teams";
import { UsagePage } from "./pages/usage";
import { WebhookPage, WebhooksPage } from "./pages/webhooks";
import { NOT_FOUND, navigate, useRoute } from "./router";
import "./style.css";
import { ErrorBox, Spinner } from "./ui";

const NAV: Array<[string, string]> = [
  ["usage", "Usage"],
  ["organizations", "Organizations"],
  ["teams", "Teams"],
  ["groups", "Access groups"],
  ["models", "Model aliases"],
  ["webhooks", "Webhooks"],
  ["audit", "Audit log"],
];

function SignIn(props: { notice: string; onSignedIn: () => void }) {
  const [key, setKey] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      // Any admin read proves the key; nothing is stored until it works.
      await request("GET", "/organizations", { key: key.trim(), query: { page_size: 1 } });
      storeKey(key.trim());
      setKey("");
      props.onSignedIn();
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <form class="signin-box" onSubmit={submit} aria-label="Sign in">
        <h1>SaaS LiteLLM admin</h1>
        <p class="muted">
          Sign in with the operator's admin key (<code>SAAS_ADMIN_KEY</code>; <code>make dev</code> prints it). It is
          kept in this tab only and sent as <code>X-Admin-Key</code>.
        </p>
        {props.notice && <div class="notice">{props.notice}</div>}
        <label class="field">
          <span class="field-label">Admin key</span>
          <input
            type="password"
            name="admin_key"
            autoComplete="off"
            value={key}
            onInput={(e) => setKey((e.currentTarget as HTMLInputElement).value)}
            required
            autoFocus
          />
        </label>
        <ErrorBox error={error} />
        <button type="submit" class="btn primary" disabled={busy || !key.trim()}>
          {busy ? <Spinner label="Checking the key…" /> : "Sign in"}
        </button>
      </form>
    </main>
  );
}

function BusyBar() {
  const [busy, setBusy] = useState(0);
  useEffect(() => onBusy(setBusy), []);
  return <div class={`busybar ${busy > 0 ? "on" : ""}`} role="progressbar" aria-hidden={busy === 0} />;
}

function Page({ route }: { route: string[] }) {
  const [section, id, tab] = route;
  switch (section) {
    case "organizations":
      return id ? <OrganizationPage key={id} id={id} /> : <OrganizationsPage />;
    case "teams":
      return id ? <TeamPage key={id} id={id} tab={tab} /> : <TeamsPage />;
    case "groups":
      return <GroupsPage />;
    case "models":
      return <ModelsPage />;
    case "webhooks":
      return id ? <WebhookPage key={id} id={id} /> : <WebhooksPage />;
    case "audit":
      return <AuditPage />;
    case "usage":
      return <UsagePage />;
    case NOT_FOUND:
      return (
        <div>
          <h1>Page not found</h1>
          <p role="alert" class="error">
            The address <code>#{id}</code> is malformed (a bad %-escape): no page has it.
          </p>
          <p>
            <a href="#/organizations">Go to the organizations</a>
          </p>
        </div>
      );
    default:
      return <OrganizationsPage />;
  }
}

function App() {
  const [signedIn, setSignedIn] = useState(Boolean(currentKey()));
  const [notice, setNotice] = useState("");
  const route = useRoute();
  // Narrow screens: the sections are a menu under the top bar, closed on each navigation.
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => setMenuOpen(false), [route.join("/")]);
  useEffect(
    () =>
      setUnauthorizedHandler((message) => {
        setNotice(`The admin key was refused (${message}). Sign in again.`);
        setSignedIn(false);
      }),
    [],
  );
  if (!signedIn) {
    return (
      <SignIn
        notice={notice}
        onSignedIn={() => {
          setNotice("");
          setSignedIn(true);
        }}
      />
    );
  }
  const signOut = () => {
    clearKey();
    setNotice("Signed out.");
    setSignedIn(false);
    navigate("/");
  };
  const section = route[0] ?? "organizations";
  return (
    <div class="shell">
      <BusyBar />
      <aside class={`sidebar ${menuOpen ? "open" : ""}`}>
        <div class="sidebar-inner">
          <div class="sidebar-top">
            <div class="brand">SaaS LiteLLM</div>
            <button
              type="button"
              class="btn plain menu-toggle"
              aria-expanded={menuOpen}
              aria-controls="sections-menu"
              onClick={() => setMenuOpen(!menuOpen)}
            >
              {menuOpen ? "Close menu" : "Menu"}
            </button>
          </div>
          <div class="sidebar-menu" id="sections-menu">
            <nav aria-label="Sections">
              {NAV.map(([path, label]) => (
                <a
                  key={path}
                  href={`#/${path}`}
                  class={section === path || (section === "" && path === "organizations") ? "active" : ""}
                >
                  {label}
                </a>
              ))}
            </nav>
            <button type="button" class="btn plain signout" onClick={signOut}>
              Sign out
            </button>
          </div>
        </div>
      </aside>
      <main class="content">
        <Page route={route} />
      </main>
    </div>
  );
}

window.addEventListener("unhandledrejection", (event) => {
  if (event.reason instanceof ApiError) event.preventDefault(); // shown where it happened
});

render(<App />, document.getElementById("app")!);
