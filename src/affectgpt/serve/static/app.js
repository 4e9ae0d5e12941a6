// The demo page: upload a clip, POST /v1/describe?stream=1, render each NDJSON event as it arrives.
"use strict";
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#e6194b", "#f58231", "#ffe119", "#3cb44b", "#42d4f4", "#4363d8", "#911eb4", "#f032e6",
                "#a9a9a9", "#9a6324"];

function el(tag, attrs, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(text) { const box = $("error"); box.textContent = text; box.hidden = false; }

function setText(id, text) {
  const node = $(id);
  node.textContent = text || "—";
  node.classList.toggle("muted", !text);
}

function images(id, urls) {
  const box = $(id);
  box.replaceChildren();
  (urls || []).forEach((url, i) => {
    if (typeof url === "string" && url.startsWith("data:image/")) box.append(el("img", {src: url, alt: `${id} ${i}`}));
  });
  if (!box.children.length) box.append(el("p", {class: "muted"}, "none"));
}

function renderClues(clues) {
  const box = $("clues");
  box.replaceChildren();
  for (const [modality, items] of Object.entries(clues || {})) {
    box.append(el("div", {class: "modality"}, modality));
    const list = Array.isArray(items) ? items : items ? [items] : [];
    for (const item of list) {
      const row = el("div", {class: "clue"});
      const conf = typeof item.confidence === "number" ? item.confidence.toFixed(2) : "";
      const text = typeof item === "string" ? item : item.text ?? JSON.stringify(item);
      row.append(el("span", {class: "conf"}, conf), document.createTextNode(" " + text));
      box.append(row);
    }
  }
  if (!box.children.length) box.append(el("p", {class: "muted"}, "none"));
}

function renderLabels(labels, sentiment) {
  const box = $("labels");
  box.replaceChildren(...(labels || []).map((l) => el("span", {class: "label"}, l)));
  if (!box.children.length) box.append(el("p", {class: "muted"}, "none"));
  if (sentiment !== undefined && sentiment !== null) setText("sentiment", String(sentiment));
  drawWheel(labels || []);
}

async function drawWheel(labels) {
  const box = $("wheel");
  const response = await fetch("/v1/wheel?words=" + encodeURIComponent(labels.join(",")));
  if (!response.ok) { box.textContent = "wheel unavailable"; return; }
  const chart = await response.json();
  const size = 320, c = size / 2, outer = 150, inner = 95, n = chart.clusters.length;
  const svg = el("svg:svg", {viewBox: `0 0 ${size} ${size}`, width: size, height: size, role: "img",
                             "aria-label": `labels on the ${chart.wheel} wheel`});
  const at = (r, a) => [c + r * Math.cos(a), c + r * Math.sin(a)];
  const angle = (i) => -Math.PI / 2 + (2 * Math.PI * i) / n;
  chart.clusters.forEach((name, i) => {
    const [a0, a1] = [angle(i), angle(i + 1)];
    const [x0, y0] = at(outer, a0), [x1, y1] = at(outer, a1), [x2, y2] = at(inner, a1), [x3, y3] = at(inner, a0);
    const path = `M${x0},${y0} A${outer},${outer} 0 0 1 ${x1},${y1} L${x2},${y2} A${inner},${inner} 0 0 0 ${x3},${y3} Z`;
    svg.append(el("svg:path", {d: path, fill: COLORS[i % COLORS.length], "fill-opacity": "0.25", stroke: "#fff",
                               class: "cluster", "data-cluster": name}));
    const [tx, ty] = at((outer + inner) / 2, (a0 + a1) / 2);
    svg.append(el("svg:text", {x: tx, y: ty, "text-anchor": "middle", "dominant-baseline": "middle",
                               "font-size": "11", "font-weight": "600", fill: "#333"}, name));
  });
  for (const w of chart.words) {
    const path = svg.querySelector(`path[data-cluster="${w.cluster}"]`);
    if (path) path.setAttribute("fill-opacity", "0.6");
  }
  const perCluster = {};
  const unplaced = [];
  for (const w of chart.words) {
    const i = chart.clusters.indexOf(w.cluster);
    if (i < 0) { unplaced.push(w.word); continue; }
    const k = (perCluster[i] = (perCluster[i] || 0) + 1) - 1;
    const a = (angle(i) + angle(i + 1)) / 2 + (k % 2 ? 1 : -1) * 0.12 * Math.ceil(k / 2);
    const r = w.level === 1 ? inner - 20 : inner - 48;
    const [x, y] = at(r, a);
    svg.append(el("svg:circle", {cx: x, cy: y, r: 6, fill: COLORS[i % COLORS.length], stroke: "#333"}));
    svg.append(el("svg:text", {x, y: y - 8, "text-anchor": "middle", "font-size": "12", "font-weight": "600", class: "label-word",
                               "data-word": w.word, "data-cluster": w.cluster, "data-level": w.level}, w.word));
  }
  if (unplaced.length) {
    svg.append(el("svg:text", {x: c, y: c + 4, "text-anchor": "middle", "font-size": "10", fill: "#777"},
                  "not on the wheel: " + unplaced.join(", ")));
  }
  box.replaceChildren(svg);
}

const HANDLERS = {
  frames: (e) => images("frames", e.frames),
  faces: (e) => images("faces", e.faces),
  transcript: (e) => setText("transcript", e.transcript),
  clues: (e) => {
    if (e.modality !== undefined && Array.isArray(e.clues)) clueState[e.modality] = e.clues;
    else Object.assign(clueState, e.clues || {});
    renderClues(clueState);
  },
  description: (e) => setText("description", e.description),
  labels: (e) => renderLabels(e.labels, e.sentiment),
  error: (e) => showError(errorText(e, e.status)),
  done: (event) => {
    const e = event.result || event;
    for (const key of ["frames", "faces", "transcript", "clues", "description", "labels"]) {
      if (e[key] !== undefined && !seen.has(key)) HANDLERS[key](e);
    }
    if (e.timings) $("timings").textContent = "timings: " + Object.entries(e.timings)
      .map(([k, v]) => `${k} ${typeof v === "number" ? v.toFixed(2) : v}`).join(", ");
  },
};
let seen = new Set();
let clueState = {};

function errorText(body, status) {
  const err = (body && body.error) || {};
  const code = err.code || (status ? `HTTP ${status}` : "error");
  return `${status ? status + " " : ""}${code}: ${err.message || (typeof body === "string" ? body : "request failed")}`;
}

function reset() {
  seen = new Set();
  clueState = {};
  $("error").hidden = true;
  for (const id of ["frames", "faces", "labels"]) $(id).replaceChildren();
  for (const id of ["transcript", "description", "sentiment"]) setText(id, "");
  $("clues").replaceChildren(); $("wheel").replaceChildren(); $("timings").textContent = "";
}

async function describe(event) {
  event.preventDefault();
  const file = $("video").files[0];
  if (!file) { showError("choose a video clip first"); return; }
  reset();
  const form = new FormData();
  form.append("video", file);
  if ($("subtitle").value.trim()) form.append("subtitle", $("subtitle").value.trim());
  $("submit").disabled = true;
  $("status").textContent = "uploading…";
  try {
    const response = await fetch("/v1/describe?stream=1", {method: "POST", body: form});
    if (!response.ok) {
      const text = await response.text();
      let body = text;
      try { body = JSON.parse(text); } catch (_) { /* not JSON */ }
      let message = errorText(body, response.status);
      const retry = response.headers.get("Retry-After");
      if (retry) message += ` (retry after ${retry} s)`;
      showError(message);
      $("status").textContent = "failed";
      return;
    }
    $("status").textContent = "working…";
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (value) buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, cut).trim();
        buffer = buffer.slice(cut + 1);
        if (line) handle(JSON.parse(line));
      }
      if (done) break;
    }
    if (buffer.trim()) handle(JSON.parse(buffer));
    $("status").textContent = $("error").hidden ? "done" : "failed";
  } catch (err) {
    showError("connection failed: " + err);
    $("status").textContent = "failed";
  } finally {
    $("submit").disabled = false;
  }
}

function handle(event) {
  const handler = HANDLERS[event.event];
  if (!handler) return;
  handler(event);
  seen.add(event.event);
  $("status").textContent = `working… (${event.event})`;
}

async function showModel() {
  try {
    const response = await fetch("/v1/models");
    const body = await response.json();
    const names = (body.data || []).map((m) => m.id).join(", ");
    if (names) $("model").textContent = "model: " + names;
  } catch (_) { /* the page works without it */ }
}

$("upload").addEventListener("submit", describe);
showModel();
