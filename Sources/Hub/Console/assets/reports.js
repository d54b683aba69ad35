// The admin view's support report (docs/protocol.md "Support reports"): `admin.report` drawn
// as inline SVG a person reads at a glance — the queue's length over the range, opened and
// resolved per service, and each agent's response and resolution times. No library: the
// charts are a few rectangles and a polyline, each with a text equivalent for screen readers.

const SVG = "http://www.w3.org/2000/svg";
const RANGES = [
  ["day", "Last 24 hours", 86_400_000],
  ["week", "Last 7 days", 7 * 86_400_000],
  ["month", "Last 30 days", 30 * 86_400_000],
];

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c);
  return el;
}

/** "45 s", "12 min", "3.5 h", "2.1 d", or "—". */
export function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  const s = ms / 1000;
  if (s < 90) return `${Math.max(0, Math.round(s))} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 36 * 3600) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

export class SupportReportCard {
  /** `h`: the console's element helper; `request(op, params)`: a hub request;
   *  `serviceLabel(service)`, `userName(id)`: display names. */
  constructor({ h, request, serviceLabel, userName }) {
    this.h = h;
    this.request = request;
    this.serviceLabel = serviceLabel;
    this.userName = userName;
    this.range = "week";
    this.range_select = h("select", { id: "report-range", testid: "report-range" },
      RANGES.map(([value, label]) => h("option", { value, text: label, selected: value === this.range })));
    this.range_select.addEventListener("change", () => { this.range = this.range_select.value; this.load(); });
    this.status = h("p", { class: "muted small", role: "status", "aria-live": "polite", testid: "report-status" });
    this.body = h("div", { class: "report-body", testid: "report-body" });
    this.element = h("section", { class: "card report", testid: "report", "aria-labelledby": "report-heading" },
      h("div", { class: "report-head" },
        h("h2", { id: "report-heading", text: "Support report" }),
        h("div", { class: "field inline" }, h("label", { for: "report-range", text: "Range" }), this.range_select)),
      this.status, this.body);
  }

  async load() {
    const span = RANGES.find(([v]) => v === this.range)?.[2] ?? RANGES[1][2];
    const to = Date.now() + 1;
    this.status.textContent = "Loading…";
    try {
      const r = await this.request("admin.report", { from: to - span, to });
      this.render(r);
      this.status.textContent = `Updated ${new Date().toLocaleTimeString()}.`;
    } catch (e) {
      this.status.textContent = `Report unavailable: ${e?.message || e}`;
    }
  }

  render(r) {
    const h = this.h;
    const t = r.total || {};
    const tiles = h("ul", { class: "report-tiles", testid: "report-tiles" },
      this.tile("opened", "Opened", String(t.opened ?? 0)),
      this.tile("resolved", "Resolved", String(t.resolved ?? 0)),
      this.tile("first-response", "First response (median)", duration(t.first_response_ms?.median),
                `90% within ${duration(t.first_response_ms?.p90)}`),
      this.tile("resolution", "Resolution (median)", duration(t.resolution_ms?.median),
                `90% within ${duration(t.resolution_ms?.p90)}`));
    this.body.replaceChildren(tiles, this.queueChart(r.queue || []), this.serviceChart(r.by_service || {}), this.agentTable(r.by_agent || {}));
  }

  tile(key, label, value, hint) {
    const h = this.h;
    return h("li", { class: "report-tile", testid: `report-${key}` },
      h("span", { class: "stat-label", text: label }),
      h("span", { class: "report-value", testid: "report-value", text: value }),
      hint ? h("span", { class: "stat-hint", text: hint }) : null);
  }

  /** The queue's length at the end of each step (a line), its peak within the step (bars). */
  queueChart(points) {
    const h = this.h;
    const W = 480, H = 120, pad = 24;
    const max = Math.max(1, ...points.map((p) => p.peak));
    const x = (i) => pad + (points.length < 2 ? 0 : (i * (W - 2 * pad)) / (points.length - 1));
    const y = (v) => H - pad - (v * (H - 2 * pad)) / max;
    const bars = points.map((p, i) => svg("rect", { class: "chart-peak", x: x(i) - 3, y: y(p.peak), width: 6, height: H - pad - y(p.peak) }));
    const line = svg("polyline", { class: "chart-line", points: points.map((p, i) => `${x(i)},${y(p.length)}`).join(" ") });
    const fmt = (ts) => new Date(ts).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
    const peak = Math.max(0, ...points.map((p) => p.peak));
    const label = points.length
      ? `Queue length from ${fmt(points[0].ts)} to ${fmt(points[points.length - 1].ts)}: now ${points[points.length - 1].length}, peak ${peak}.`
      : "No queue data.";
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": label, "data-testid": "report-queue-chart" },
      svg("line", { class: "chart-axis", x1: pad, y1: H - pad, x2: W - pad, y2: H - pad }),
      ...bars, line,
      svg("text", { class: "chart-text", x: 2, y: y(max) + 4 }, document.createTextNode(String(max))),
      svg("text", { class: "chart-text", x: 2, y: H - pad + 4 }, document.createTextNode("0")),
      points.length ? svg("text", { class: "chart-text", x: pad, y: H - 6 }, document.createTextNode(fmt(points[0].ts))) : null,
      points.length ? svg("text", { class: "chart-text", x: W - pad, y: H - 6, "text-anchor": "end" },
                           document.createTextNode(fmt(points[points.length - 1].ts))) : null);
    return h("figure", { class: "report-figure" }, h("figcaption", { text: "Waiting in the queue (line: at each step's end; bars: the step's peak)" }), chart);
  }

  /** Opened and resolved, one pair of bars per service. */
  serviceChart(byService) {
    const h = this.h;
    const rows = Object.entries(byService).sort(([a], [b]) => a.localeCompare(b));
    const max = Math.max(1, ...rows.flatMap(([, f]) => [f.opened, f.resolved]));
    const list = h("ul", { class: "bar-list", testid: "report-services" }, rows.length ? rows.map(([service, f]) => {
      const bar = (kind, n) => {
        const graphic = svg("svg", { viewBox: "0 0 100 8", class: `bar bar-${kind}`, "aria-hidden": "true", preserveAspectRatio: "none" },
          svg("rect", { x: 0, y: 0, height: 8, width: Math.max(n ? 1 : 0, (n * 100) / max) }));
        return h("span", { class: "bar-row" }, h("span", { class: "bar-label", text: `${kind === "opened" ? "Opened" : "Resolved"} ${n}` }), graphic);
      };
      return h("li", { class: "bar-item", testid: "report-service", data: { service } },
        h("span", { class: "bar-name", text: this.serviceLabel(service) }), bar("opened", f.opened), bar("resolved", f.resolved));
    }) : h("li", { class: "muted", text: "No conversations in this range." }));
    return h("figure", { class: "report-figure" }, h("figcaption", { text: "Conversations per service" }), list);
  }

  /** Each agent's counts and times, as a table (the times are what a lead compares). */
  agentTable(byAgent) {
    const h = this.h;
    const rows = Object.entries(byAgent).sort(([a], [b]) => a.localeCompare(b));
    const head = h("tr", {}, ["Agent", "Opened", "Resolved", "First response (median / p90)", "Resolution (median / p90)"]
      .map((t) => h("th", { scope: "col", text: t })));
    const body = rows.map(([agent, f]) => h("tr", { testid: "report-agent", data: { agent } },
      h("th", { scope: "row", text: agent === "unassigned" ? "No agent yet" : this.userName(agent) }),
      h("td", { text: String(f.opened) }), h("td", { text: String(f.resolved) }),
      h("td", { text: `${duration(f.first_response_ms?.median)} / ${duration(f.first_response_ms?.p90)}` }),
      h("td", { text: `${duration(f.resolution_ms?.median)} / ${duration(f.resolution_ms?.p90)}` })));
    return h("div", { class: "table-wrap" },
      h("table", { class: "report-table", testid: "report-agents" },
        h("caption", { text: "Per agent" }), h("thead", {}, head),
        h("tbody", {}, body.length ? body : h("tr", {}, h("td", { colspan: "5", class: "muted", text: "Nothing yet." })))));
  }
}
