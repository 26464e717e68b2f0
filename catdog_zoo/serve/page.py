"""The page at ``/``: drop, paste, choose or snap photos and see what the run says of each. One document, no
external resource (works offline), readable at phone width, usable from the keyboard; names and labels are
set as text (``textContent``), never as HTML."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def page() -> str:
    return PAGE


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>catdog-zoo</title>
<style>
:root { --fg: #1d1d1f; --muted: #666; --line: #ddd; --accent: #2a62c9; --bad: #b3261e; }
* { box-sizing: border-box; } [hidden] { display: none !important; }
body { font-family: system-ui, sans-serif; color: var(--fg); margin: 0 auto; max-width: 980px; padding: 1em; }
h1 { font-size: 1.5em; margin: 0.2em 0; } .muted { color: var(--muted); }
#panel { border: 1px solid var(--line); border-radius: 8px; padding: 0.6em 1em; margin: 0.8em 0; }
#panel dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2em 1em; margin: 0.3em 0; }
#panel dt { font-weight: 600; } #panel dd { margin: 0; overflow-wrap: anywhere; }
#drop { display: block; border: 2px dashed var(--accent); border-radius: 10px; padding: 1.5em; text-align: center;
        cursor: pointer; margin: 0.8em 0; }
#drop:focus-within, #drop.over { background: #eef3fd; outline: 3px solid var(--accent); }
.row { display: flex; flex-wrap: wrap; gap: 0.6em; align-items: center; margin: 0.5em 0; }
button, select, input[type=password] { font: inherit; padding: 0.4em 0.8em; }
button { border: 1px solid var(--accent); background: var(--accent); color: white; border-radius: 6px; cursor: pointer; }
button.plain { background: white; color: var(--accent); }
#results { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 260px), 1fr)); gap: 1em; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 0.6em; }
.card img { width: 100%; border-radius: 4px; display: block; }
.label { font-size: 1.25em; font-weight: 700; margin: 0.3em 0 0.1em; }
.label.unknown { color: var(--bad); }
.name { color: var(--muted); font-size: 0.85em; overflow-wrap: anywhere; }
.bar { display: grid; grid-template-columns: 6em 1fr 4em; gap: 0.4em; align-items: center; font-size: 0.9em; }
.bar span:first-child { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
meter { width: 100%; } .error { color: var(--bad); }
video { max-width: 100%; border-radius: 8px; }
.sr { position: absolute; left: -9999px; }
</style></head>
<body>
<h1>catdog-zoo</h1>
<p class="muted">Drop, paste or choose photos: the run below says what each one is, or <b>unknown</b> when it is
like none of its training photos.</p>
<section id="panel" aria-live="polite"><h2 class="sr">Model</h2><div class="row">
<label for="model">Model</label><select id="model"></select></div><dl id="facts"></dl></section>
<div id="auth" class="row" hidden><label for="token">Token</label>
<input id="token" type="password" autocomplete="off"><span class="muted">this server needs its bearer token</span></div>
<label id="drop" for="files">Drop photos here, paste them (Ctrl+V), or press Enter to choose files
<input id="files" class="sr" type="file" accept="image/*" multiple></label>
<div class="row">
<label><input id="explain" type="checkbox"> show where it looked (heatmap)</label>
<button id="camera" class="plain" type="button">Camera</button>
<button id="snap" type="button" hidden>Take photo</button>
<button id="clear" class="plain" type="button">Clear</button>
</div>
<video id="video" autoplay playsinline muted hidden></video>
<p id="status" role="status" class="muted"></p>
<section><h2 class="sr">Results</h2><div id="results"></div></section>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let models = [];
function headers() {
  const t = $("token").value;
  return t ? {"Authorization": "Bearer " + t} : {};
}
function say(text, bad) { $("status").textContent = text; $("status").className = bad ? "error" : "muted"; }
function add(dl, key, value) {
  const dt = document.createElement("dt"); dt.textContent = key;
  const dd = document.createElement("dd"); dd.textContent = value;
  dl.append(dt, dd);
}
function pct(x) { return x === null || x === undefined ? "-" : (100 * x).toFixed(1) + "%"; }
function showModel() {
  const m = models[$("model").selectedIndex]; const dl = $("facts"); dl.textContent = "";
  if (!m) return;
  add(dl, "run", m.run); add(dl, "classes", m.classes.join(", "));
  add(dl, "accuracy", "validation " + pct(m.val_accuracy) + ", test " + pct(m.test_accuracy));
  add(dl, "data fingerprint", m.data_fingerprint || "-"); add(dl, "trained", m.finished_at || "-");
  add(dl, "unknown answers", m.rejection ? "on" : ("off " + (m.rejection_note || "")));
  if (m.precision === "bfloat16") add(dl, "precision", "bfloat16: faster; an image near the boundary may be answered otherwise than by predict");
}
async function load() {
  const r = await fetch("info", {headers: headers()});
  if (r.status === 401) { $("auth").hidden = false; say("Enter the server's token, then drop photos."); return; }
  const info = await r.json(); models = info.models; $("model").textContent = "";
  for (const m of models) {
    const o = document.createElement("option"); o.textContent = m.name + " v" + m.version; $("model").append(o);
  }
  showModel();
}
function card(file, answer) {
  const c = document.createElement("article"); c.className = "card";
  const img = document.createElement("img");
  img.alt = "photo " + answer.path; img.src = answer.heatmap_png || URL.createObjectURL(file);
  const label = document.createElement("div");
  label.className = "label" + (answer.rejected ? " unknown" : ""); label.textContent = answer.label;
  const name = document.createElement("div"); name.className = "name"; name.textContent = answer.path +
    (answer.ood_score === null ? "" : " \\u00b7 ood " + answer.ood_score.toFixed(3));
  c.append(img, label, name);
  for (const [cls, p] of Object.entries(answer.probabilities)) {
    const b = document.createElement("div"); b.className = "bar";
    const n = document.createElement("span"); n.textContent = cls;
    const m = document.createElement("meter"); m.min = 0; m.max = 1; m.value = p; m.setAttribute("aria-label", cls);
    const v = document.createElement("span"); v.textContent = pct(p);
    b.append(n, m, v); c.append(b);
  }
  return c;
}
async function send(files) {
  files = Array.from(files).filter((f) => f.type.startsWith("image/") || f.type === "");
  if (!files.length) return;
  const m = models[$("model").selectedIndex];
  const form = new FormData();
  for (const f of files) form.append("file", f, f.name || "pasted image");
  const q = new URLSearchParams(); if (m) { q.set("model", m.name); q.set("version", m.version); }
  if ($("explain").checked) q.set("explain", "1");
  say("Asking the model about " + files.length + " photo(s)...");
  let r;
  try { r = await fetch("predict?" + q, {method: "POST", body: form, headers: headers()}); }
  catch (e) { say("The server did not answer: " + e, true); return; }
  const body = await r.json().catch(() => ({error: "an answer that is not JSON"}));
  if (!r.ok) { if (r.status === 401) $("auth").hidden = false; say(body.error || ("error " + r.status), true); return; }
  body.forEach((answer, i) => $("results").prepend(card(files[i], answer)));
  say(body.length + " photo(s) answered.");
}
$("files").addEventListener("change", (e) => { send(e.target.files); e.target.value = ""; });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); send(e.dataTransfer.files); });
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("files").click(); } });
drop.tabIndex = 0;
document.addEventListener("paste", (e) => send(Array.from(e.clipboardData.items)
  .filter((i) => i.kind === "file").map((i) => i.getAsFile())));
$("model").addEventListener("change", showModel);
$("token").addEventListener("change", load);
$("clear").addEventListener("click", () => { $("results").textContent = ""; say(""); });
let stream = null;
$("camera").addEventListener("click", async () => {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    say("This browser gives no camera here (it needs https or localhost): choose a photo instead.", true); return;
  }
  try { stream = await navigator.mediaDevices.getUserMedia({video: true}); }
  catch (e) { say("No camera: " + e.message, true); return; }
  $("video").srcObject = stream; $("video").hidden = false; $("snap").hidden = false; $("snap").focus();
});
$("snap").addEventListener("click", () => {
  const v = $("video"); const c = document.createElement("canvas");
  c.width = v.videoWidth; c.height = v.videoHeight; c.getContext("2d").drawImage(v, 0, 0);
  c.toBlob((blob) => send([new File([blob], "camera.jpg", {type: "image/jpeg"})]), "image/jpeg", 0.92);
});
load().catch((e) => say("Could not reach the server: " + e, true));
</script>
</body></html>
"""
