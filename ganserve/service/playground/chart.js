// Two small SVG charts, no library: lines (a job's losses by step) and grouped bars (a
// version's figures beside its parent's). Each chart carries a text summary for screen
// readers (role="img" + aria-label) and a legend.

const NS = "http://www.w3.org/2000/svg";
const COLOURS = ["#0b63c5", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#495057"];
const W = 480, H = 200, PAD = { l: 44, r: 8, t: 8, b: 22 };

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function frame(label) {
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label,
                          class: "chart" });
  return svg;
}

const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2)
                    : v.toPrecision(2));

function axis(svg, lo, hi) {
  for (const v of [lo, (lo + hi) / 2, hi]) {
    const y = PAD.t + (H - PAD.t - PAD.b) * (1 - (v - lo) / (hi - lo || 1));
    svg.append(el("line", { x1: PAD.l, x2: W - PAD.r, y1: y, y2: y, class: "rule" }),
               el("text", { x: PAD.l - 4, y: y + 4, "text-anchor": "end" }, fmt(v)));
  }
}

function legend(names) {
  const p = document.createElement("p");
  p.className = "legend";
  names.forEach((name, i) => {
    const key = document.createElement("span");
    key.style.setProperty("--key", COLOURS[i % COLOURS.length]);
    key.textContent = name;
    p.append(key);
  });
  return p;
}

/** ``series``: {name: [[x, y], ...]} -> a figure with one line per series. */
export function lineChart(title, series) {
  const names = Object.keys(series).filter((n) => series[n].length);
  const points = names.flatMap((n) => series[n]);
  const figure = document.createElement("figure");
  figure.className = "chart-figure";
  if (!points.length) return figure;
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const last = names.map((n) => `${n} ${fmt(series[n].at(-1)[1])}`).join(", ");
  const svg = frame(`${title}: ${points.length} points up to step ${x1}; last ${last}`);
  axis(svg, y0, y1);
  const sx = (x) => PAD.l + (W - PAD.l - PAD.r) * ((x - x0) / (x1 - x0 || 1));
  const sy = (y) => PAD.t + (H - PAD.t - PAD.b) * (1 - (y - y0) / (y1 - y0 || 1));
  names.forEach((n, i) => {
    const d = series[n].map(([x, y], k) => `${k ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`);
    svg.append(el("path", { d: d.join(""), fill: "none", stroke: COLOURS[i % COLOURS.length],
                            "stroke-width": 1.5 }));
  });
  svg.append(el("text", { x: PAD.l, y: H - 4 }, `step ${x0}`),
             el("text", { x: W - PAD.r, y: H - 4, "text-anchor": "end" }, `${x1}`));
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  figure.append(caption, svg, legend(names));
  return figure;
}

/** ``groups``: [{label, values: {seriesName: number|undefined}}] -> grouped bars. */
export function barChart(title, groups, names) {
  const figure = document.createElement("figure");
  figure.className = "chart-figure";
  const values = groups.flatMap((g) => names.map((n) => g.values[n])).filter(Number.isFinite);
  if (!values.length) return figure;
  const hi = Math.max(...values, 0), lo = Math.min(...values, 0);
  const summary = groups.map((g) => `${g.label}: ` + names.map(
    (n) => `${n} ${Number.isFinite(g.values[n]) ? fmt(g.values[n]) : "none"}`).join(", "));
  const svg = frame(`${title}. ${summary.join("; ")}`);
  axis(svg, lo, hi);
  const band = (W - PAD.l - PAD.r) / groups.length;
  const bar = (band * 0.8) / names.length;
  const sy = (y) => PAD.t + (H - PAD.t - PAD.b) * (1 - (y - lo) / (hi - lo || 1));
  groups.forEach((g, k) => {
    names.forEach((n, i) => {
      const v = g.values[n];
      if (!Number.isFinite(v)) return;
      const x = PAD.l + band * k + band * 0.1 + bar * i;
      const [y, y0] = [sy(v), sy(0)];
      const rect = el("rect", { x, y: Math.min(y, y0), width: bar - 1,
                                height: Math.max(Math.abs(y0 - y), 1),
                                fill: COLOURS[i % COLOURS.length] });
      rect.append(el("title", {}, `${g.label}, ${n}: ${fmt(v)}`));
      svg.append(rect);
    });
    svg.append(el("text", { x: PAD.l + band * (k + 0.5), y: H - 6, "text-anchor": "middle",
                            class: "tick" }, g.label.slice(0, 10)));
  });
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  figure.append(caption, svg, legend(names));
  return figure;
}
