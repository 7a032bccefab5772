// handgrad playground page: draws what the server's trainer sends; all training happens in Python.
"use strict";
(() => {
const $ = (id) => document.getElementById(id);
const pg = { state: null, options: null, frame: null, points: null, lastDerivation: null, lastVerify: null,
  lastWalk: null, errors: [], framesDrawn: 0, selected: null };
window.playground = pg;

// ---------------------------------------------------------------- colours: -1 orange, 0 grey, +1 blue
const NEG = [245, 147, 34], ZERO = [232, 234, 235], POS = [8, 119, 189];
const PALETTE = Array.from({ length: 256 }, (_, i) => {
  const t = i / 127.5 - 1, [a, b] = t < 0 ? [ZERO, NEG] : [ZERO, POS], s = Math.abs(t);
  return a.map((c, k) => Math.round(c + (b[k] - c) * s));
});
const rgb = (v) => { const c = PALETTE[Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)))]; return `rgb(${c})`; };

function paint(canvas, b64, n) {
  const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  canvas.width = n; canvas.height = n;
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(n, n);
  for (let i = 0; i < n * n; i++) {
    const c = PALETTE[bytes[i]]; img.data.set([c[0], c[1], c[2], 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
}

// ---------------------------------------------------------------- the URL holds the whole state
const URL_KEYS = { problem: "s", dataset: "s", noise: "i", train_ratio: "i", batch_size: "i", seed: "i",
  features: "list", hidden: "ints", activation: "s", learning_rate: "f", regularization: "s", reg_rate: "f",
  loss: "s" };
function stateToHash(st) {
  const p = new URLSearchParams();
  for (const [k, kind] of Object.entries(URL_KEYS)) p.set(k, Array.isArray(st[k]) ? st[k].join(",") : String(st[k]));
  return "#" + p.toString();
}
function hashToState(hash, defaults) {
  const st = JSON.parse(JSON.stringify(defaults)), p = new URLSearchParams(hash.replace(/^#/, ""));
  for (const [k, kind] of Object.entries(URL_KEYS)) {
    if (!p.has(k)) continue;
    const v = p.get(k);
    if (kind === "s") st[k] = v;
    else if (kind === "i" || kind === "f") st[k] = Number(v);
    else if (kind === "list") st[k] = v ? v.split(",") : [];
    else st[k] = v ? v.split(",").map(Number) : [];
  }
  return st;
}

// ---------------------------------------------------------------- the socket
let ws;
function send(msg) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(msg)); }
pg.send = send;
function connect() {
  ws = new WebSocket(`ws://${location.host}/ws`);
  pg.ws = ws;
  ws.onmessage = (ev) => handle(JSON.parse(ev.data));
  ws.onclose = () => showError("connection to the playground server closed; reload the page to start again");
}
function showError(text) {
  pg.errors.push(text);
  const el = $("error"); el.textContent = text; el.hidden = false;
  clearTimeout(showError.timer); showError.timer = setTimeout(() => { el.hidden = true; }, 8000);
}
function pushConfig() { send({ type: "config", config: pg.state }); }

function handle(msg) {
  switch (msg.type) {
    case "hello":
      pg.options = msg.options; buildControls();
      pg.state = hashToState(location.hash, msg.options.defaults);
      pushConfig(); break;
    case "config":
      pg.state = msg.config; syncControls(); history.replaceState(null, "", stateToHash(pg.state)); break;
    case "points": pg.points = msg; break;
    case "frame":
      pg.frame = msg;
      requestAnimationFrame(() => { drawFrame(msg); send({ type: "ack" }); });
      break;
    case "derivation": pg.lastDerivation = msg; showDerivation(msg); break;
    case "verify": pg.lastVerify = msg; showVerify(msg); break;
    case "walkthrough": pg.lastWalk = msg; pg.walkPos = 0; showWalk(); break;
    case "model": download(msg.filename, Uint8Array.from(atob(msg.data), (c) => c.charCodeAt(0)),
      "application/octet-stream"); break;
    case "error":
      showError(msg.message);
      if (!pg.frame && pg.options) { pg.state = JSON.parse(JSON.stringify(pg.options.defaults)); pushConfig(); }
      break;
  }
}

// ---------------------------------------------------------------- controls
function buildControls() {
  const o = pg.options;
  $("activation").innerHTML = o.activations.map((a) => `<option value="${a}">${a}</option>`).join("");
  $("datasets").innerHTML = Object.entries(o.datasets)
    .map(([name, problem]) => `<button data-dataset="${name}" data-problem="${problem}">${name}</button>`).join("");
  for (const b of $("datasets").querySelectorAll("button"))
    b.onclick = () => change({ dataset: b.dataset.dataset });
}
function syncControls() {
  const st = pg.state;
  for (const k of ["learning_rate", "reg_rate"]) {
    const sel = $(k);
    if (![...sel.options].some((o) => Number(o.value) === st[k])) sel.add(new Option(String(st[k])));
    sel.value = [...sel.options].find((o) => Number(o.value) === st[k]).value;
  }
  for (const k of ["activation", "regularization", "problem", "loss"]) $(k).value = st[k];
  for (const k of ["train_ratio", "noise", "batch_size"]) { $(k).value = st[k]; $(k + "_v").textContent = st[k]; }
  for (const b of $("datasets").querySelectorAll("button")) {
    b.hidden = b.dataset.problem !== st.problem;
    b.classList.toggle("active", b.dataset.dataset === st.dataset);
  }
  $("loss").querySelector('[value="bce"]').disabled = st.problem !== "classification";
  $("layer-count").textContent = `${st.hidden.length} hidden layer${st.hidden.length === 1 ? "" : "s"}`;
  buildNetwork();
}
function change(patch) {
  const st = Object.assign(JSON.parse(JSON.stringify(pg.state)), patch);
  if (patch.problem && patch.problem !== pg.state.problem) {
    st.dataset = Object.entries(pg.options.datasets).find(([, p]) => p === st.problem)[0];
    st.loss = st.problem === "classification" ? "bce" : "mse";
  }
  pg.state = st; history.replaceState(null, "", stateToHash(st)); pushConfig();
}
const PRESETS = {
  hw11: { problem: "regression", dataset: "plane", activation: "5relu", hidden: [4], loss: "mse",
    features: ["x1", "x2"], learning_rate: 0.003 },
  hw12: { problem: "classification", dataset: "gauss", activation: "tanh", hidden: [4], loss: "bce",
    features: ["x1", "x2"], learning_rate: 0.03 },
};
function wire() {
  $("play").onclick = () => send({ type: pg.frame && pg.frame.playing ? "pause" : "play" });
  $("step").onclick = () => send({ type: "step" });
  $("reset").onclick = () => send({ type: "reset" });
  $("regenerate").onclick = () => send({ type: "regenerate" });
  $("walk").onclick = () => send({ type: "walkthrough" });
  $("download-model").onclick = () => send({ type: "download_model" });
  for (const k of ["learning_rate", "reg_rate"]) $(k).onchange = () => change({ [k]: Number($(k).value) });
  for (const k of ["activation", "regularization", "problem", "loss"]) $(k).onchange = () => change({ [k]: $(k).value });
  for (const k of ["train_ratio", "noise", "batch_size"]) {
    $(k).oninput = () => { $(k + "_v").textContent = $(k).value; };
    $(k).onchange = () => change({ [k]: Number($(k).value) });
  }
  $("preset").onchange = () => { if (PRESETS[$("preset").value]) change(PRESETS[$("preset").value]); $("preset").value = ""; };
  $("add-layer").onclick = () => { if (pg.state.hidden.length < pg.options.max_hidden_layers) change({ hidden: [...pg.state.hidden, 2] }); };
  $("remove-layer").onclick = () => { if (pg.state.hidden.length) change({ hidden: pg.state.hidden.slice(0, -1) }); };
  $("show_test").onchange = () => pg.frame && drawOutput(pg.frame);
  $("verify").onclick = () => pg.selected && send({ type: "verify", target: pg.selected });
  $("close-panel").onclick = () => { $("panel").hidden = true; pg.selected = null; markSelected(); };
  $("close-walk").onclick = () => { $("walk-panel").hidden = true; };
  $("walk-next").onclick = () => { pg.walkPos = Math.min(4, pg.walkPos + 1); showWalk(); };
  $("walk-prev").onclick = () => { pg.walkPos = Math.max(0, pg.walkPos - 1); showWalk(); };
  $("download-md").onclick = () => pg.lastDerivation && download("derivation.md", derivationMarkdown(pg.lastDerivation), "text/markdown");
  $("download-tex").onclick = () => pg.lastDerivation && download("derivation.tex", derivationLatex(pg.lastDerivation), "application/x-tex");
}
function download(name, data, type) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([data], { type })); a.download = name; a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

// ---------------------------------------------------------------- the network
const NODE = 36, GAP_Y = 48, COL_W = 110, TOP = 40;
let layout = null;
function buildNetwork() {
  const st = pg.state, o = pg.options, net = $("network");
  net.querySelectorAll(".node, .layer-head").forEach((e) => e.remove());
  const featureNames = Object.keys(o.features), sizes = [...st.hidden, 1];
  layout = { cols: [], lines: null };
  const col0 = featureNames.map((f, i) => ({ x: 60, y: TOP + i * GAP_Y, feature: f, on: st.features.includes(f) }));
  layout.cols.push(col0);
  sizes.forEach((n, c) => layout.cols.push(Array.from({ length: n }, (_, i) => ({ x: 60 + (c + 1) * COL_W, y: TOP + i * GAP_Y }))));
  col0.forEach((node) => {
    const el = addNode(node, `feature ${node.feature}`);
    el.classList.toggle("off", !node.on);
    el.insertAdjacentHTML("beforeend", `<span class="label">${o.features[node.feature]}</span>`);
    el.onclick = () => {
      const on = st.features.includes(node.feature);
      const feats = on ? st.features.filter((f) => f !== node.feature) : [...st.features, node.feature];
      if (feats.length) change({ features: feats });
    };
    paintFeature(el.querySelector("canvas"), node.feature);
  });
  st.hidden.forEach((n, c) => {
    const head = document.createElement("div");
    head.className = "layer-head"; head.style.left = `${60 + (c + 1) * COL_W - 12}px`; head.style.top = "0px";
    head.innerHTML = `<button title="add a neuron">+</button><button title="remove a neuron">−</button><br>${n} neurons`;
    const [plus, minus] = head.querySelectorAll("button");
    plus.onclick = () => { if (n < o.max_neurons) { const h = [...st.hidden]; h[c]++; change({ hidden: h }); } };
    minus.onclick = () => { if (n > 1) { const h = [...st.hidden]; h[c]--; change({ hidden: h }); } };
    net.appendChild(head);
  });
  layout.cols.slice(1).forEach((col, c) => col.forEach((node, i) => {
    const el = addNode(node, c === layout.cols.length - 2 ? "output neuron" : `neuron ${i} of layer ${c + 1}`);
    el.dataset.layer = c + 1; el.dataset.row = i;
    el.onclick = () => select({ kind: "neuron", layer: c + 1, row: i });
  }));
  net.style.height = `${TOP + Math.max(...layout.cols.map((c) => c.length)) * GAP_Y + 10}px`;
  net.style.width = `${60 + sizes.length * COL_W + NODE + 20}px`;
  drawEdges();
}
function addNode(node, title) {
  const el = document.createElement("div");
  el.className = "node"; el.style.left = `${node.x}px`; el.style.top = `${node.y}px`; el.title = title;
  el.appendChild(document.createElement("canvas"));
  $("network").appendChild(el); node.el = el; return el;
}
function paintFeature(canvas, name) {
  const n = 20, vals = [], f = { x1: (a) => a, x2: (a, b) => b, x1_sq: (a) => a * a, x2_sq: (a, b) => b * b,
    x1_x2: (a, b) => a * b, sin_x1: (a) => Math.sin(a), sin_x2: (a, b) => Math.sin(b) }[name];
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) vals.push(f(-6 + 12 * (c + 0.5) / n, 6 - 12 * (r + 0.5) / n));
  const m = Math.max(...vals.map(Math.abs)) || 1;
  paint(canvas, btoa(String.fromCharCode(...vals.map((v) => Math.round((v / m + 1) * 127.5)))), n);
}
function drawEdges() {
  const svg = $("edges"), weights = pg.frame && pg.frame.weights;
  if (!layout.lines) {  // built once per architecture; frames only restyle the lines
    svg.setAttribute("width", parseInt($("network").style.width, 10));
    svg.setAttribute("height", parseInt($("network").style.height, 10));
    const cols = [layout.cols[0].filter((n) => n.on), ...layout.cols.slice(1)], parts = [];
    for (let l = 1; l < cols.length; l++) cols[l].forEach((to, i) => cols[l - 1].forEach((from, j) => {
      parts.push(`<line data-layer="${l}" data-row="${i}" data-col="${j}" x1="${from.x + NODE}" y1="${from.y + NODE / 2}" ` +
        `x2="${to.x}" y2="${to.y + NODE / 2}" stroke-opacity="0.8"><title></title></line>`);
    }));
    svg.innerHTML = parts.join("");
    layout.lines = [...svg.querySelectorAll("line")];
    layout.lines.forEach((line) => {
      line.onclick = () => select({ kind: "W", layer: +line.dataset.layer, row: +line.dataset.row, col: +line.dataset.col });
    });
  }
  const s = pg.selected;
  for (const line of layout.lines) {
    const l = +line.dataset.layer, i = +line.dataset.row, j = +line.dataset.col;
    const W = weights && weights[l - 1] && weights[l - 1].W, w = W && W[i] && W[i][j] !== undefined ? W[i][j] : 0;
    line.setAttribute("stroke", w >= 0 ? "#0877bd" : "#f59322");
    line.setAttribute("stroke-width", Math.min(8, 0.5 + Math.abs(w) * 2).toFixed(2));
    line.classList.toggle("selected", !!s && s.kind === "W" && s.layer === l && s.row === i && s.col === j);
    line.firstChild.textContent = `W${l}[${i},${j}] = ${w.toPrecision(6)}`;
  }
}
function select(target) { pg.selected = target; markSelected(); send({ type: "derive", target }); }
function markSelected() {
  document.querySelectorAll(".node.selected").forEach((e) => e.classList.remove("selected"));
  const s = pg.selected;
  if (s && s.kind === "neuron") {
    const el = document.querySelector(`.node[data-layer="${s.layer}"][data-row="${s.row}"]`);
    if (el) el.classList.add("selected");
  }
  if (layout) drawEdges();
}

// ---------------------------------------------------------------- a frame
function drawFrame(f) {
  pg.framesDrawn++;
  $("epoch").textContent = String(f.epoch).padStart(6, "0");
  $("play").textContent = f.playing ? "❚❚ pause" : "▶ play";
  $("train_loss").textContent = f.train_loss === null ? "diverged" : f.train_loss.toFixed(3);
  $("test_loss").textContent = f.test_loss === null ? "diverged" : f.test_loss.toFixed(3);
  if (layout) {
    layout.cols.slice(1, -1).forEach((col, l) => col.forEach((node, i) => {
      if (f.neurons[l] && f.neurons[l][i]) paint(node.el.querySelector("canvas"), f.neurons[l][i], f.neuron_grid);
    }));
    const out = layout.cols[layout.cols.length - 1][0];
    if (out) paint(out.el.querySelector("canvas"), f.output, f.output_grid);
    drawEdges();
  }
  drawOutput(f); drawCurve(f.history);
}
function drawOutput(f) {
  const cv = $("output"), ctx = cv.getContext("2d"), tmp = document.createElement("canvas");
  paint(tmp, f.output, f.output_grid);
  ctx.imageSmoothingEnabled = true; ctx.drawImage(tmp, 0, 0, cv.width, cv.height);
  if (!pg.points) return;
  const px = (v) => ((v + 6) / 12) * cv.width, py = (v) => ((6 - v) / 12) * cv.height;
  const cls = pg.points.problem === "classification";
  const sets = [[pg.points.train, "#fff"], ...($("show_test").checked ? [[pg.points.test, "#000"]] : [])];
  for (const [pts, stroke] of sets) for (const [a, b, y] of pts) {
    ctx.beginPath(); ctx.arc(px(a), py(b), 3, 0, 2 * Math.PI);
    ctx.fillStyle = rgb(cls ? 2 * y - 1 : y); ctx.fill(); ctx.strokeStyle = stroke; ctx.lineWidth = 1; ctx.stroke();
  }
}
function drawCurve(h) {
  const cv = $("curve"), ctx = cv.getContext("2d");
  ctx.clearRect(0, 0, cv.width, cv.height);
  if (!h || h.length < 2) return;
  const vals = h.flatMap((r) => [r[1], r[2]]).filter((v) => v !== null), top = Math.max(...vals, 1e-9);
  [[1, "#999"], [2, "#000"]].forEach(([k, colour]) => {
    ctx.beginPath(); ctx.strokeStyle = colour;
    h.forEach((r, i) => { const x = (i / (h.length - 1)) * cv.width, y = cv.height - ((r[k] ?? top) / top) * (cv.height - 2);
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
    ctx.stroke();
  });
}

// ---------------------------------------------------------------- the derivation panel
const fmt = (v) => (Math.abs(v) >= 1e-4 || v === 0 ? v.toPrecision(6) : v.toExponential(4));
const full = (v) => v.toPrecision(12);
function table(rows, head) {
  const h = head ? `<tr>${head.map((c) => `<th>${c}</th>`).join("")}</tr>` : "";
  return `<table class="m">${h}${rows.map((r) => `<tr>${(Array.isArray(r) ? r : [r]).map((v) => `<td>${fmt(v)}</td>`).join("")}</tr>`).join("")}</table>`;
}
function esc(s) { return String(s).replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]); }
function showDerivation(d) {
  $("panel").hidden = false; $("verify-result").textContent = "";
  $("panel-title").textContent = `dJ/d${d.name}${d.neuron ? " (the neuron's bias)" : ""} on the current batch (N = ${d.batch.x.length})`;
  const chainNames = d.factors.map((f) => f.name.split(" = ")[0]).join(" · ");
  const samples = d.terms.map((_, n) => n);
  $("panel-body").innerHTML = `
    <h3>forward</h3><div class="formula">${d.forward.map(esc).join("\n")}\n${esc(d.loss)}    (J = ${full(d.J)})</div>
    <h3>chain of Jacobians (per sample n, numerator layout)</h3>
    <div class="formula">dJ/d${esc(d.name)} = Σ_n ${esc(chainNames)}</div>
    ${d.factors.map((f) => `<div class="factor"><div class="name">${esc(f.name)}</div><div class="shape">${esc(f.shape)}</div>
      ${table(f.rows)}<div class="note">${esc(f.note)}</div></div>`).join("")}
    <h3>evaluated, sample by sample</h3>
    ${table(samples.map((n) => [d.delta[n], d.terms[n]]), ["dJ/dz (this neuron), sample n", "term n"])}
    <div class="result">chain rule: <span id="deriv-chain">${full(d.chain)}</span></div>
    <div class="result">backward:   <span id="deriv-backward">${full(d.backward)}</span>
      <span class="${d.difference < 1e-9 ? "ok" : "bad"}">|difference| = ${d.difference.toExponential(2)}</span></div>`;
}
function showVerify(v) {
  const ok = v.difference < 1e-6;
  $("verify-result").innerHTML = `<div class="result">finite differences (ε = ${v.eps}): <span id="verify-numeric">${full(v.numeric)}</span>
    vs backward <span>${full(v.backward)}</span> <span class="${ok ? "ok" : "bad"}">|difference| = ${v.difference.toExponential(2)} ${ok ? "✓" : "✗"}</span></div>`;
}
function derivationMarkdown(d) {
  const mat = (rows) => rows.map((r) => "| " + (Array.isArray(r) ? r : [r]).map(full).join(" | ") + " |").join("\n");
  const hdr = (rows) => { const k = Array.isArray(rows[0]) ? rows[0].length : 1; return "|" + " |".repeat(k) + "\n|" + "---|".repeat(k) + "\n"; };
  return `# dJ/d${d.name} on one batch (N = ${d.batch.x.length})\n\n## Forward\n\n\`\`\`\n${d.forward.join("\n")}\n${d.loss}\n\`\`\`\n\nJ = ${full(d.J)}\n\n` +
    `## Chain of Jacobians (per sample, numerator layout)\n\ndJ/d${d.name} = Σ_n ${d.factors.map((f) => f.name.split(" = ")[0]).join(" · ")}\n\n` +
    d.factors.map((f) => `### ${f.name}  ${f.shape}\n\n${f.note}\n\n${hdr(f.rows)}${mat(f.rows)}\n`).join("\n") +
    `\n## Result\n\n- chain rule: ${full(d.chain)}\n- backward: ${full(d.backward)}\n- |difference|: ${d.difference.toExponential(2)}\n`;
}
function derivationLatex(d) {
  const bm = (rows) => "\\begin{bmatrix}" + rows.map((r) => (Array.isArray(r) ? r : [r]).map(fmt).join(" & ")).join(" \\\\ ") + "\\end{bmatrix}";
  const t = (s) => s.replace(/[_&%#]/g, (c) => "\\" + c);
  return `\\documentclass{article}\n\\usepackage{amsmath}\n\\usepackage[utf8]{inputenc}\n\\begin{document}\n` +
    `\\section*{$\\partial J/\\partial ${t(d.name)}$ on one batch ($N = ${d.batch.x.length}$)}\n` +
    d.factors.map((f) => `\\paragraph{${t(f.name)}} ${t(f.shape)}: $${bm(f.rows)}$\n`).join("\n") +
    `\n\\paragraph{Result} chain rule $${full(d.chain)}$, backward $${full(d.backward)}$.\n\\end{document}\n`;
}

// ---------------------------------------------------------------- step mode
const STEPS = ["forward", "loss", "clear", "backward", "update"];
function showWalk() {
  const w = pg.lastWalk; if (!w) return;
  $("walk-panel").hidden = false;
  const step = STEPS[pg.walkPos], s = w.steps;
  $("walk-pos").textContent = `step ${pg.walkPos + 1} of 5: ${step}`;
  let html = "";
  if (step === "forward") {
    html = `<p>batch x (N × features) and y:</p>${table(w.batch.x.map((r, n) => [...r, w.batch.y[n][0]]))}` +
      s.forward.map((l) => `<div class="factor"><div class="name">z${l.layer} = a${l.layer - 1} W${l.layer}ᵀ + b${l.layer}</div>
        <div class="shape">(${l.shape.join("×")})</div>${table(l.z)}</div><div class="factor"><div class="name">a${l.layer} = f(z${l.layer})</div>
        <div class="shape">(${l.shape.join("×")})</div>${table(l.a)}</div>`).join("");
  } else if (step === "loss") {
    html = `<div class="result">J (${s.loss.name}) = ${full(s.loss.J)}</div><div class="factor"><div class="name">dJ/dŷ</div>${table(s.loss.dJ_dyhat)}</div>`;
  } else if (step === "clear") {
    html = `<p>Gradients accumulate across backward passes, so each is set to zero first:</p>` +
      table(s.clear.map((g) => [g.max_abs]), ["max |·| after clearing"]) + `<p>${s.clear.map((g) => `${g.name} (${g.shape.join("×")})`).join(", ")}</p>`;
  } else if (step === "backward") {
    html = s.backward.map((l) => `<h3>layer ${l.layer}</h3><div class="factor"><div class="name">dJ/dz${l.layer}</div>${table(l.dJ_dz)}</div>
      <div class="factor"><div class="name">dJ/dW${l.layer} = (dJ/dz${l.layer})ᵀ a${l.layer - 1}</div>${table(l.dJ_dW)}</div>
      <div class="factor"><div class="name">dJ/db${l.layer} = Σ_n dJ/dz${l.layer}</div>${table(l.dJ_db)}</div>
      ${l.penalty_dW ? `<div class="factor"><div class="name">+ dΩ/dW${l.layer}</div>${table(l.penalty_dW)}</div>` : ""}`).join("");
  } else {
    html = `<p>θ ← θ − lr · dJ/dθ with lr = ${w.lr}</p>` + Object.keys(s.update.before).map((k) =>
      `<div class="factor"><div class="name">${k} before</div>${table(s.update.before[k])}</div><div class="factor"><div class="name">${k} after</div>${table(s.update.after[k])}</div>`).join("");
  }
  $("walk-body").innerHTML = html;
}

wire();
connect();
})();
