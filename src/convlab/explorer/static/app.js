// convlab explorer: this script only draws what the server computed (no arithmetic of convolution here).
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, text) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
};
const SVG = "http://www.w3.org/2000/svg";
const svgEl = (tag, attrs = {}) => {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
};

async function api(path, body, isForm) {
  const init = body === undefined ? {} : { method: "POST", body: isForm ? body : JSON.stringify(body),
    headers: isForm ? {} : { "Content-Type": "application/json" } };
  const response = await fetch(path, init);
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.blob();
  if (!response.ok) {
    const detail = data && data.detail;
    const text = Array.isArray(detail) ? detail.map((d) => `${(d.loc || []).slice(1).join(".") || "request"}: ${d.msg}`).join("\n")
      : String(detail || response.status);
    throw new Error(text);
  }
  return data;
}

function showError(box, error) {
  box.hidden = !error;
  box.textContent = error ? String(error.message || error) : "";
}

// ------------------------------------------------------------------ tabs
for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => {
    for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t === tab);
    for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== `view-${tab.dataset.view}`;
    if (tab.dataset.view === "network" && !$("model").options.length) initNetwork();
    if (tab.dataset.view === "training") loadTraining();
  });
}

// ------------------------------------------------------------------ playground: the form
function parseNumbers(text) {
  return text.trim().split(/[\s,;]+/).filter((t) => t.length).map((t) => {
    const v = Number(t);
    if (!Number.isFinite(v)) throw new Error(`not a number: ${t}`);
    return v;
  });
}
function blocks(text) {  // blocks separated by blank lines, each a list of rows
  return text.split(/\n\s*\n/).map((b) => b.split("\n").map((l) => l.trim()).filter((l) => l.length)
    .map(parseNumbers)).filter((b) => b.length);
}
function parseList(text) {  // "1" -> 1, "1,2" -> [1, 2]
  const values = parseNumbers(text.replace(/[()[\]]/g, " "));
  return values.length === 1 ? values[0] : values;
}
function parsePadding(text) {
  const t = text.trim();
  if (/^[a-z_]+$/.test(t)) return t;
  const pairs = [...t.matchAll(/\(([^)]*)\)/g)].map((m) => parseNumbers(m[1]));
  if (pairs.length) return pairs;
  return parseList(t);
}
function readInput(ndim) {
  const text = $("input").value;
  if (ndim === 1) return text.split("\n").map((l) => l.trim()).filter((l) => l).map(parseNumbers);
  return blocks(text);
}
function readWeight(ndim, op, inChannels, groups) {
  const text = $("weight").value;
  const kernels = ndim === 1 ? text.split("\n").map((l) => l.trim()).filter((l) => l).map(parseNumbers) : blocks(text);
  // conv: (C_out, C_in/groups, *k); transposed: (C_in, C_out/groups, *k). Blocks are listed in that order.
  const inner = op === "conv" ? Math.max(1, Math.floor(inChannels / groups)) : null;
  const perOuter = inner || Math.max(1, Math.floor(kernels.length / inChannels));
  const weight = [];
  for (let i = 0; i < kernels.length; i += perOuter) weight.push(kernels.slice(i, i + perOuter));
  return weight;
}
function request() {
  const ndim = Number($("ndim").value);
  const op = $("op").value;
  const pool = op.endsWith("pool");
  const x = readInput(ndim);
  const body = { op, ndim, input: x, padding: parsePadding($("padding").value), padding_mode: $("padding_mode").value,
    dilation: parseList($("dilation").value), groups: Number($("groups").value) };
  const stride = $("stride").value.trim();
  if (stride) body.stride = parseList(stride);
  if (pool) {
    body.kernel_size = parseList($("kernel_size").value);
    body.ceil_mode = $("ceil_mode").checked;
    if (op === "avg_pool") { body.count_include_pad = $("count_include_pad").checked; delete body.dilation; }
    delete body.padding_mode; delete body.groups;
  } else {
    body.weight = readWeight(ndim, op, x.length, body.groups);
    const bias = $("bias").value.trim();
    if (bias) body.bias = parseNumbers(bias);
    if (op === "conv") body.flip_kernel = $("flip_kernel").checked;
    if (op === "conv_transpose") body.output_padding = parseList($("output_padding").value);
  }
  return body;
}

let state = null;  // the server's answer for the current configuration
let frame = 0;
let timer = null;
let selected = null;

function cellAt(grid, cell) {
  let v = grid;
  for (const i of cell) v = v[i];
  return v;
}

function drawInput() {
  const box = $("input-grid");
  box.replaceChildren();
  const shape = state.canvas_shape.length === 1 ? [1, state.canvas_shape[0]] : state.canvas_shape;
  const kinds = state.canvas_shape.length === 1 ? [state.kinds] : state.kinds;
  const names = ["input", "padding", "zero", "outside"];
  state.input_labels.forEach((labels, c) => {
    const rows = state.canvas_shape.length === 1 ? [labels] : labels;
    const table = el("table", { class: "grid", "data-channel": c, id: `in-${c}` });
    for (let i = 0; i < shape[0]; i++) {
      const tr = el("tr");
      for (let j = 0; j < shape[1]; j++) {
        tr.appendChild(el("td", { class: names[kinds[i][j]], "data-cell": state.canvas_shape.length === 1 ? `${j}` : `${i},${j}` },
          rows[i][j]));
      }
      table.appendChild(tr);
    }
    box.appendChild(el("div", { class: "small" }, `channel ${c}`));
    box.appendChild(table);
  });
}

function drawOutput() {
  const box = $("output-grid");
  box.replaceChildren();
  const size = state.output_size.length === 1 ? [1, state.output_size[0]] : state.output_size;
  state.output.forEach((plane, c) => {
    const rows = state.output_size.length === 1 ? [plane] : plane;
    const table = el("table", { class: "grid output", "data-channel": c, id: `out-${c}` });
    for (let i = 0; i < size[0]; i++) {
      const tr = el("tr");
      for (let j = 0; j < size[1]; j++) {
        const index = state.output_size.length === 1 ? [c, j] : [c, i, j];
        const td = el("td", { class: "out", "data-index": index.join(","), "data-value": String(rows[i][j]) },
          state.output_labels[c][i * size[1] + j]);
        td.addEventListener("click", () => explainCell(index));
        tr.appendChild(td);
      }
      table.appendChild(tr);
    }
    box.appendChild(el("div", { class: "small" }, `channel ${c}`));
    box.appendChild(table);
  });
}

function showFrame(f) {
  if (!state || !state.frames.length) return;
  frame = (f + state.frames.length) % state.frames.length;
  for (const td of document.querySelectorAll("#input-grid td")) td.classList.remove("tap", "chosen", "skipped");
  const current = state.frames[frame];
  for (const [channel, cells] of Object.entries(current.cells)) {
    const table = $(`in-${channel}`);
    for (const [cell, role] of cells) {
      const td = table && table.querySelector(`td[data-cell="${cell.join(",")}"]`);
      if (td) td.classList.add(role);
    }
  }
  const order = state.frames.map((fr) => fr.index.join(","));
  document.querySelectorAll("#output-grid td").forEach((td) => {
    const k = order.indexOf(td.dataset.index);
    td.classList.toggle("current", k === frame);
    td.classList.toggle("done", k < frame);
  });
  $("frame-counter").textContent = `frame ${frame + 1} / ${state.frames.length}: y[${current.index.join(", ")}]`;
}

async function explainCell(index) {
  selected = index;
  const k = state.frames.findIndex((fr) => fr.index.join(",") === index.join(","));
  if (k >= 0) showFrame(k);
  document.querySelectorAll("#output-grid td").forEach((td) => td.classList.toggle("selected", td.dataset.index === index.join(",")));
  try {
    const e = await api("/api/conv/explain", { ...request(), position: index });
    $("explain").textContent = e.text;
    $("explain").dataset.result = String(e.result);
    $("explain").dataset.sum = e.sum === null ? "" : String(e.sum);
    const table = $("taps");
    table.replaceChildren();
    const head = el("tr");
    for (const h of ["channel", "input", "value", "weight", "product"]) head.appendChild(el("th", {}, h));
    table.appendChild(head);
    for (const t of e.taps) {
      const tr = el("tr", { class: "tap-row" });
      tr.appendChild(el("td", {}, String(t.channel)));
      tr.appendChild(el("td", {}, t.input_position ? t.input_position.join(",") : "pad"));
      tr.appendChild(el("td", { "data-value": String(t.value) }, String(t.value)));
      tr.appendChild(el("td", {}, t.weight === null ? "" : String(t.weight)));
      tr.appendChild(el("td", { class: "product", "data-value": t.product === null ? "" : String(t.product) },
        t.product === null ? "" : String(t.product)));
      table.appendChild(tr);
    }
  } catch (error) { showError($("conv-error"), error); }
}

let pending = null;
async function update() {
  let body;
  try { body = request(); } catch (error) { showError($("conv-error"), error); return; }
  const mine = (pending = Symbol("request"));
  try {
    const data = await api("/api/conv", body);
    if (mine !== pending) return;  // a newer change is on its way
    showError($("conv-error"), null);
    state = data;
    $("conv-title").textContent = data.title;
    $("formula").textContent = data.formula.join("\n");
    $("code-convlab").textContent = data.code.convlab;
    $("code-torch").textContent = data.code.torch;
    $("plan").textContent = data.plan ? `algorithm="auto" runs ${data.plan.algorithm}: ${data.plan.reason}` : "";
    drawInput();
    drawOutput();
    $("explain").textContent = "";
    $("taps").replaceChildren();
    showFrame(0);
    document.body.dataset.convReady = String(Date.now());
  } catch (error) {
    if (mine === pending) showError($("conv-error"), error);
  }
}
let debounce = null;
function scheduleUpdate() {
  clearTimeout(debounce);
  debounce = setTimeout(update, 200);
}

function syncFields() {
  const op = $("op").value;
  const pool = op.endsWith("pool");
  $("kernel-fields").hidden = pool;
  $("kernel-size-label").hidden = !pool;
  $("output_padding").parentElement.hidden = op !== "conv_transpose";
  $("flip_kernel").parentElement.hidden = op !== "conv";
  $("ceil_mode").parentElement.hidden = !pool;
  $("count_include_pad").parentElement.hidden = op !== "avg_pool";
  $("padding_mode").parentElement.hidden = op !== "conv";
  $("groups").parentElement.hidden = pool;
  if (pool && !$("stride").value.trim()) $("stride").value = "";
}

let presets = {};
async function initPlayground() {
  presets = await api("/api/presets");
  for (const name of Object.keys(presets)) $("kernel-preset").appendChild(el("option", { value: name }, name));
  fillInput("ramp");
  setKernel("Sobel x");
  syncFields();
  update();
}
function setKernel(name) {
  const ndim = $("ndim").value;
  const k = presets[name][ndim];
  $("weight").value = ndim === "1" ? k.map(fmt).join(" ") : k.map((r) => r.map(fmt).join(" ")).join("\n");
}
const fmt = (v) => String(Math.round(v * 10000) / 10000);
async function fillInput(kind) {
  const ndim = Number($("ndim").value);
  const n = Number($("input-size").value) || 5;
  let grid;
  if (kind === "image") {
    grid = (await api(`/api/dataset/${Number($("image-index").value) || 0}/grid?size=${n}`)).values;
    if (ndim === 1) grid = [grid[Math.floor(n / 2)]];
  } else if (ndim === 1) {
    grid = [[...Array(n).keys()].map((j) => (kind === "checker" ? j % 2 : j))];
  } else {
    grid = [...Array(n).keys()].map((i) => [...Array(n).keys()].map((j) => (kind === "checker" ? (i + j) % 2 : i * n + j)));
  }
  $("input").value = grid.map((r) => r.join(" ")).join("\n");
}

$("conv-form").addEventListener("input", (event) => {
  if (["input-preset", "kernel-preset", "input-size", "image-index"].includes(event.target.id)) return;
  syncFields();
  scheduleUpdate();
});
$("ndim").addEventListener("change", () => { fillInput("ramp").then(() => { setKernel($("kernel-preset").value || "edge [1, -1]"); update(); }); });
$("input-preset").addEventListener("change", async (e) => { if (e.target.value) { await fillInput(e.target.value); update(); } });
$("kernel-preset").addEventListener("change", (e) => { if (e.target.value) { setKernel(e.target.value); update(); } });
$("play").addEventListener("click", () => {
  clearInterval(timer);
  timer = setInterval(() => showFrame(frame + 1), 1000 / Number($("speed").value));
});
$("pause").addEventListener("click", () => { clearInterval(timer); timer = null; });
$("step").addEventListener("click", () => showFrame(frame + 1));
$("back").addEventListener("click", () => showFrame(frame - 1));
$("speed").addEventListener("input", () => { if (timer) $("play").click(); });
for (const button of document.querySelectorAll(".copy")) {
  button.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText($(button.dataset.target).textContent));
}
$("svg-link").addEventListener("click", async (event) => {
  event.preventDefault();
  try {
    const blob = await api("/api/conv/animation.svg", request());
    const a = el("a", { href: URL.createObjectURL(blob), download: "convlab-animation.svg" });
    a.click();
  } catch (error) { showError($("conv-error"), error); }
});

// ------------------------------------------------------------------ network
let catalog = [];
let netState = null;
async function initNetwork() {
  catalog = (await api("/api/models")).models;
  for (const m of catalog) $("model").appendChild(el("option", { value: m.name, title: m.description }, m.name));
  const first = catalog.find((m) => m.name === "lenet") || catalog[0];
  $("model").value = first.name;
  $("net-input").value = first.input_size.join(",");
  const data = await api("/api/dataset");
  data.labels.forEach((label, i) => $("net-image").appendChild(el("option", { value: `dataset:${i}` }, `${i}: ${data.classes[label]}`)));
}
$("model").addEventListener("change", () => {
  const m = catalog.find((c) => c.name === $("model").value);
  if (m) $("net-input").value = m.input_size.join(",");
});
$("upload").addEventListener("change", async () => {
  const file = $("upload").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  try {
    const info = await api("/api/images", form, true);
    const option = el("option", { value: `upload:${info.id}` }, `${file.name} (${info.width}x${info.height})`);
    $("net-image").appendChild(option);
    $("net-image").value = option.value;
    showError($("net-error"), null);
  } catch (error) { showError($("net-error"), error); }
});
const netBody = () => ({ model: $("model").value, input_size: parseNumbers($("net-input").value) });
$("net-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    netState = await api("/api/network", netBody());
    showError($("net-error"), null);
    const t = netState.totals;
    $("net-totals").textContent = `${netState.model} at ${netState.input_size.join("x")}: ${t.params.toLocaleString()} parameters, ${t.macs.toLocaleString()} MACs`;
    const table = $("layers");
    table.replaceChildren();
    const head = el("tr");
    for (const h of ["layer", "kind", "output shape", "params", "MACs", "RF size", "RF jump", "auto algorithm"]) head.appendChild(el("th", {}, h));
    table.appendChild(head);
    for (const row of netState.rows) {
      const tr = el("tr", { class: "clickable layer-row", "data-layer": row.name });
      const rf = row.receptive_field;
      const cells = [row.name, row.kind, row.output_shape.join("x"), String(row.params), String(row.macs),
        rf ? rf.map((f) => f.size).join("x") : "", rf ? rf.map((f) => (f.jump === null ? "-" : f.jump)).join("x") : "",
        row.plan ? row.plan.algorithm : ""];
      const names = ["name", "kind", "shape", "params", "macs", "rf", "jump", "plan"];
      cells.forEach((c, i) => tr.appendChild(el("td", { class: `c-${names[i]}` }, c)));
      if (row.plan) tr.lastChild.title = row.plan.reason;
      if (row.kind !== "input") tr.addEventListener("click", () => openLayer(row.name, tr));
      table.appendChild(tr);
    }
  } catch (error) { showError($("net-error"), error); }
});
function layerBody(name) {
  const [source, value] = $("net-image").value.split(":");
  const image = source === "upload" ? { upload: value } : { dataset: Number(value || 0) };
  return { ...netBody(), layer: name, image };
}
let currentLayer = null;
async function openLayer(name, tr) {
  currentLayer = name;
  document.querySelectorAll("#layers tr").forEach((r) => r.classList.toggle("selected", r === tr));
  $("layer-title").textContent = `${name}: computing...`;
  try {
    // The feature maps first (the forward pass stops after the layer), then the ERF on its own request.
    const v = await api("/api/network/layer", { ...layerBody(name), erf: false });
    if (currentLayer !== name) return;
    showError($("net-error"), null);
    $("layer-title").textContent = `${v.layer} (${v.facts.kind}, output ${v.facts.output_shape.join("x")})`;
    $("layer-note").textContent = `weights: ${v.weights}`;
    const maps = $("feature-maps");
    maps.replaceChildren();
    if (v.feature_maps && v.feature_maps.tiles) {
      for (const t of v.feature_maps.tiles) {
        const fig = el("figure", { class: "feature-map", "data-min": String(t.min), "data-max": String(t.max) });
        fig.appendChild(el("img", { src: t.png, alt: `channel ${t.channel}` }));
        fig.appendChild(el("figcaption", {}, `${t.channel}: ${t.min.toPrecision(3)}..${t.max.toPrecision(3)}`));
        maps.appendChild(fig);
      }
    } else if (v.feature_maps) {
      maps.appendChild(el("pre", { class: "mono small" }, v.feature_maps.values.map((x) => x.toPrecision(4)).join("  ")));
    }
    const kernels = $("kernels");
    kernels.replaceChildren();
    if (v.kernels) {
      for (const f of v.kernels.filters) {
        const fig = el("figure", { class: "kernel" });
        fig.appendChild(el("img", { src: f.png, alt: `filter ${f.filter}` }));
        fig.appendChild(el("figcaption", {}, String(f.filter)));
        kernels.appendChild(fig);
      }
    } else kernels.textContent = "no convolution kernel";
    drawFields(v);
    document.body.dataset.layerReady = name;
    if (v.receptive_field) {
      $("erf-summary").textContent = "computing the effective receptive field...";
      const e = await api("/api/network/layer", { ...layerBody(name), feature_maps: false });
      if (currentLayer !== name) return;
      drawFields(e);
      document.body.dataset.erfReady = name;
    }
  } catch (error) { showError($("net-error"), error); $("layer-title").textContent = name; }
}
function drawFields(v) {
  const [, h, w] = v.input_size;
  const scale = 224 / Math.max(h, w);
  for (const id of ["rf-view", "erf-view"]) {
    const box = $(id);
    box.replaceChildren(el("img", { src: v.image, alt: "input" }));
  }
  if (v.receptive_field) {
    const svg = svgEl("svg", { viewBox: "0 0 224 224" });
    v.receptive_field.boxes.forEach((b, i) => {
      const [top, left, bottom, right] = b.box;
      const rect = svgEl("rect", { x: left * scale, y: top * scale, width: (right - left + 1) * scale,
        height: (bottom - top + 1) * scale, fill: "none", stroke: i === v.receptive_field.boxes.length - 1 ? "#d55e00" : "#e69f00",
        "stroke-width": 1.5, "data-layer": b.layer });
      rect.appendChild(svgEl("title")).textContent = `${b.layer}: rows ${top}..${bottom}, columns ${left}..${right}`;
      svg.appendChild(rect);
    });
    $("rf-view").appendChild(svg);
  }
  if (v.erf) {
    $("erf-view").appendChild(el("img", { src: v.erf.png, alt: "effective receptive field" }));
    if (v.erf.field_box) {
      const [top, left, bottom, right] = v.erf.field_box;
      const svg = svgEl("svg", { viewBox: "0 0 224 224" });
      svg.appendChild(svgEl("rect", { x: left * scale, y: top * scale, width: (right - left + 1) * scale,
        height: (bottom - top + 1) * scale, fill: "none", stroke: "#fff", "stroke-dasharray": "4 3" }));
      $("erf-view").appendChild(svg);
    }
    $("erf-summary").textContent = v.erf.summary;
  } else $("erf-summary").textContent = v.erf_note || (v.receptive_field ? "" : "no spatial output: no receptive field");
}
for (const link of document.querySelectorAll("[data-figure]")) {
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    if (!currentLayer) return;
    try {
      const blob = await api(`/api/network/figure/${link.dataset.figure}`, layerBody(currentLayer));
      $("figure").src = URL.createObjectURL(blob);
    } catch (error) { showError($("net-error"), error); }
  });
}

// ------------------------------------------------------------------ training
let liveTimer = null;
async function loadTraining() {
  try {
    const run = await api("/api/training");
    if (!run.logdir) { $("train-info").textContent = "No log directory: start with convlab serve --logdir DIR."; }
    else $("train-info").textContent = `${run.logdir}: ${run.records || 0} records, last step ${run.last_step || 0}${run.message ? " (" + run.message + ")" : ""}`;
    drawCurves(run.series || {});
    if (run.checkpoint && !$("confusion").rows.length) loadEvaluation();
    document.body.dataset.trainingReady = String(Date.now());
  } catch (error) { $("train-info").textContent = String(error.message || error); }
}
function drawCurves(series) {
  const box = $("curves");
  box.replaceChildren();
  const families = {};
  for (const tag of Object.keys(series)) (families[tag.split("/")[0]] ||= []).push(tag);
  const colours = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00"];
  for (const [family, tags] of Object.entries(families)) {
    const W = 360, H = 220, pad = 40;
    const all = tags.flatMap((t) => series[t]);
    const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    const sx = (x) => pad + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (W - pad - 10);
    const sy = (y) => H - pad + 10 - (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5) * (H - pad - 10);
    const svg = svgEl("svg", { width: W, height: H, class: "curve", "data-family": family });
    const title = svgEl("text", { x: pad, y: 14, "font-size": 12 });
    title.textContent = family;
    svg.appendChild(title);
    for (const [v, y] of [[y0, sy(y0)], [y1, sy(y1)]]) {
      const t = svgEl("text", { x: 2, y: y + 4, "font-size": 10 });
      t.textContent = Number(v).toPrecision(3);
      svg.appendChild(t);
    }
    const xl = svgEl("text", { x: W - 60, y: H - 5, "font-size": 10 });
    xl.textContent = `step ${x1}`;
    svg.appendChild(xl);
    tags.forEach((tag, i) => {
      const points = series[tag];
      const line = svgEl("polyline", { fill: "none", stroke: colours[i % colours.length], "stroke-width": 1.5,
        points: points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" "),
        "data-tag": tag, "data-points": JSON.stringify(points) });
      line.appendChild(svgEl("title")).textContent = tag;
      svg.appendChild(line);
      const label = svgEl("text", { x: W - 120, y: 28 + 12 * i, "font-size": 10, fill: colours[i % colours.length] });
      label.textContent = tag;
      svg.appendChild(label);
    });
    box.appendChild(svg);
  }
}
async function loadEvaluation() {
  $("eval-info").textContent = "evaluating the checkpoint on the test split...";
  try {
    const e = await api("/api/training/evaluation");
    $("eval-info").textContent = `${e.checkpoint} (${e.model}, epoch ${e.epoch}): accuracy ${(100 * e.accuracy).toFixed(2)}% on ${e.count} test images of ${e.data}; ${e.misclassified} misclassified`;
    const table = $("confusion");
    table.replaceChildren();
    const head = el("tr");
    head.appendChild(el("th", {}, "true \\ predicted"));
    e.classes.forEach((c) => head.appendChild(el("th", {}, c)));
    table.appendChild(head);
    e.confusion.forEach((row, i) => {
      const tr = el("tr");
      tr.appendChild(el("th", {}, e.classes[i]));
      row.forEach((n) => tr.appendChild(el("td", { class: "count" }, String(n))));
      table.appendChild(tr);
    });
    const box = $("misclassified");
    box.replaceChildren();
    for (const x of e.examples) {
      const fig = el("figure", { class: "example", "data-index": String(x.index) });
      fig.appendChild(el("img", { src: x.png, alt: `test image ${x.index}` }));
      fig.appendChild(el("figcaption", {}, `#${x.index}: ${e.classes[x.true]} as ${e.classes[x.predicted]}`));
      box.appendChild(fig);
    }
  } catch (error) { $("eval-info").textContent = String(error.message || error); }
}
$("live").addEventListener("change", () => {
  clearInterval(liveTimer);
  if ($("live").checked) liveTimer = setInterval(loadTraining, 5000);
});

initPlayground().catch((error) => showError($("conv-error"), error));
