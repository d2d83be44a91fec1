// Small SVG charts (no library): stacked bars and lines over days, horizontal bars.
// Each point has a <title>, so hovering shows the exact value.

export interface Series {
  name: string;
  color: string;
  values: number[];
}

const W = 560;
const H = 200;
const PAD = { left: 66, right: 12, top: 12, bottom: 28 };

export const PALETTE = ["#2563eb", "#16a34a", "#dc2626", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];

function niceMax(value: number): number {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (value <= step * magnitude) return step * magnitude;
  }
  return 10 * magnitude;
}

function Axes(props: { labels: string[]; max: number; min: number; format: (v: number) => string }) {
  const { labels, max, min, format } = props;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => min + (max - min) * f);
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const y = (v: number) => PAD.top + innerH - ((v - min) / (max - min)) * innerH;
  const every = Math.max(1, Math.ceil(labels.length / 7));
  return (
    <g class="axes">
      {ticks.map((t) => (
        <g key={t}>
          <line x1={PAD.left} x2={W - PAD.right} y1={y(t)} y2={y(t)} class="grid" />
          <text x={PAD.left - 6} y={y(t) + 4} text-anchor="end">
            {format(t)}
          </text>
        </g>
      ))}
      {labels.map((label, i) =>
        i % every === 0 ? (
          <text key={label} x={PAD.left + ((i + 0.5) * innerW) / labels.length} y={H - 8} text-anchor="middle">
            {label.slice(5)}
          </text>
        ) : null,
      )}
    </g>
  );
}

function Legend({ series }: { series: Series[] }) {
  return (
    <div class="legend">
      {series.map((s) => (
        <span key={s.name}>
          <svg width="10" height="10" aria-hidden="true">
            <rect width="10" height="10" fill={s.color} />
          </svg>
          {s.name}
        </span>
      ))}
    </div>
  );
}

/** A scale top for counts whose quarter ticks are whole numbers. */
function countMax(value: number): number {
  return Math.max(4, Math.ceil(niceMax(value) / 4) * 4);
}

/** Bars per day, the series stacked (all values >= 0); `counts` keeps axis ticks whole. */
export function StackedBars(props: {
  title: string;
  labels: string[];
  series: Series[];
  format: (v: number) => string;
  counts?: boolean;
}) {
  const { labels, series, format } = props;
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + Math.max(0, s.values[i] ?? 0), 0));
  const top = Math.max(0, ...totals);
  const max = props.counts ? countMax(top) : niceMax(top);
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const slot = innerW / Math.max(1, labels.length);
  const bar = Math.max(1, slot * 0.7);
  return (
    <figure class="chart" aria-label={props.title}>
      <figcaption>{props.title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={props.title}>
        <Axes labels={labels} max={max} min={0} format={format} />
        {labels.map((label, i) => {
          let base = 0;
          return (
            <g key={label}>
              {series.map((s) => {
                const value = Math.max(0, s.values[i] ?? 0);
                const h = (value / max) * innerH;
                const y = PAD.top + innerH - ((base + value) / max) * innerH;
                base += value;
                if (value === 0) return null;
                return (
                  <rect key={s.name} x={PAD.left + i * slot + (slot - bar) / 2} y={y} width={bar} height={h} fill={s.color}>
                    <title>{`${label} · ${s.name}: ${format(value)}`}</title>
                  </rect>
                );
              })}
            </g>
          );
        })}
      </svg>
      {series.length > 1 && <Legend series={series} />}
    </figure>
  );
}

/** Lines per day (values may be negative, e.g. a margin). All zero: no axis (a $0 to $1
 * scale would suggest figures that are not there), the `empty` text instead. */
export function Lines(props: {
  title: string;
  labels: string[];
  series: Series[];
  format: (v: number) => string;
  empty?: string;
}) {
  const { labels, series, format } = props;
  const all = series.flatMap((s) => s.values);
  if (all.every((v) => v === 0)) {
    return (
      <figure class="chart" aria-label={props.title}>
        <figcaption>{props.title}</figcaption>
        <p class="muted chart-empty" data-testid="chart-empty">
          {props.empty ?? "Nothing in this range."}
        </p>
      </figure>
    );
  }
  const max = niceMax(Math.max(0, ...all));
  const lowest = Math.min(0, ...all);
  const min = lowest < 0 ? -niceMax(-lowest) : 0;
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const x = (i: number) => PAD.left + ((i + 0.5) * innerW) / Math.max(1, labels.length);
  const y = (v: number) => PAD.top + innerH - ((v - min) / (max - min)) * innerH;
  return (
    <figure class="chart" aria-label={props.title}>
      <figcaption>{props.title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={props.title}>
        <Axes labels={labels} max={max} min={min} format={format} />
        {series.map((s) => (
          <g key={s.name}>
            <polyline
              fill="none"
              stroke={s.color}
              stroke-width="2"
              points={s.values.map((v, i) => `${x(i)},${y(v)}`).join(" ")}
            />
            {s.values.map((v, i) => (
              <circle key={i} cx={x(i)} cy={y(v)} r={labels.length > 60 ? 1.5 : 3} fill={s.color}>
                <title>{`${labels[i]} · ${s.name}: ${format(v)}`}</title>
              </circle>
            ))}
          </g>
        ))}
      </svg>
      <Legend series={series} />
    </figure>
  );
}

/** One horizontal bar per row (job types, teams), longest first. */
export function HBars(props: { title: string; rows: { label: string; value: number }[]; format: (v: number) => string }) {
  const max = Math.max(0, ...props.rows.map((r) => r.value)) || 1;
  return (
    <figure class="chart hbars" aria-label={props.title}>
      <figcaption>{props.title}</figcaption>
      {props.rows.length === 0 && <p class="muted">No data in this range.</p>}
      {props.rows.map((row, i) => (
        <div class="hbar" key={row.label}>
          <span class="hbar-label" title={row.label}>
            {row.label}
          </span>
          <svg viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">
            <rect width={(Math.max(0, row.value) / max) * 100} height="10" fill={PALETTE[i % PALETTE.length]} />
          </svg>
          <span class="hbar-value">{props.format(row.value)}</span>
        </div>
      ))}
    </figure>
  );
}
