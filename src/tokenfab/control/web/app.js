// tokenfab control plane dashboard: vanilla JS, no build step, no network beyond this server's API.
"use strict";

const API = "/api/v1";
const REFRESH_MS = 2000;
const state = { token: sessionStorage.getItem("tokenfab.token") || "", me: null, mode: "occupancy",
  selectedRack: null, map: null, timer: null, tenants: [] };
const $ = (sel) => document.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const fmt = (n, d = 0) => Number(n).toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const HEALTH_COLOURS = { ok: "#35b26b", cordoned: "#d4b13a", draining: "#e0843a", failed: "#e04a4a" };
const TENANT_PALETTE = ["#3fb6a8", "#2b7fd6", "#b48cf2", "#e0843a", "#d4b13a", "#e86aa6", "#6cc04a", "#4ac1e0", "#c98b5a", "#8f9cf5"];

async function api(path, options = {}) {
  const response = await fetch(path.startsWith("/") ? path : `${API}/${path}`, {
    ...options,
    headers: { "Authorization": `Bearer ${state.token}`, "Content-Type": "application/json", ...(options.headers || {}) },
  });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = { error: text }; }
  if (!response.ok) {
    const error = new Error((body && body.error) || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

// ---------------------------------------------------------------- login

async function login(token) {
  state.token = token.trim();
  try {
    state.me = await api("whoami");
  } catch (error) {
    state.token = "";
    sessionStorage.removeItem("tokenfab.token");
    $("#login-error").textContent = error.status === 401 ? "That token is not valid (unknown, expired or revoked)." : error.message;
    return;
  }
  sessionStorage.setItem("tokenfab.token", state.token);
  $("#login").classList.add("hidden");
  $("#app").classList.remove("hidden");
  document.body.classList.toggle("tenant", state.me.role === "tenant");
  const who = $("#whoami");
  who.textContent = state.me.role === "operator" ? `operator · ${state.me.name}` : `tenant ${state.me.tenant} · ${state.me.name}`;
  who.className = `whoami ${state.me.role}`;
  await refresh();
  state.timer = setInterval(refresh, REFRESH_MS);
}

function logout() {
  clearInterval(state.timer);
  sessionStorage.removeItem("tokenfab.token");
  state.token = ""; state.me = null; state.selectedRack = null; state.tenants = [];
  $("#rack-actions").innerHTML = "";
  $("#submit-msg").textContent = "";
  $("#power-msg").textContent = "";
  $("#rack-title").textContent = "Rack";
  $("#rack-detail").innerHTML = '<p class="dim">Click a rack on the map to see its nodes and workloads.</p>';
  $("#app").classList.add("hidden");
  $("#login").classList.remove("hidden");
  $("#token-input").value = "";
}

// ---------------------------------------------------------------- refresh

async function refresh() {
  try {
    const operator = state.me.role === "operator";
    const [map, workloads, queue, power, telemetry, audit, usage, environments] = await Promise.all([
      api("factory"), api("workloads?limit=200"), api("queue"), operator ? api("power") : null,
      operator ? api("telemetry?limit=300") : null, api("audit?limit=60"), api("usage"), api("environments"),
    ]);
    renderEnvironments(environments.data);
    state.map = map;
    renderKpis(map, queue, power, usage);
    renderMap(map);
    renderWorkloads(workloads.data);
    renderQueue(queue.data);
    if (operator) renderChart(telemetry.data, power);
    renderAudit(audit.data);
    if (state.me.role === "operator" && state.tenants.length === 0) await loadTenants();
    if (state.selectedRack !== null) await renderRack(state.selectedRack);
    $("#live").classList.remove("stale");
  } catch (error) {
    $("#live").classList.add("stale");
    if (error.status === 401) logout();
  }
}

async function loadTenants() {
  const tenants = await api("tenants");
  state.tenants = tenants.data.map((t) => t.name);
  const options = state.tenants.map((t) => `<option>${esc(t)}</option>`).join("");
  $("#wl-tenant").innerHTML = options;
  $("#env-tenant").innerHTML = options;
}

function renderKpis(map, queue, power, usage) {
  $("#design-name").textContent = `${map.design} · ${map.system.join(", ")}`;
  const used = map.gpus - map.gpus_free;
  const own = state.me.role === "tenant" ? usage.data.reduce((a, u) => a + u.gpus_allocated, 0) : used;
  $("#kpi-gpus").textContent = state.me.role === "tenant" ? `${fmt(own)} held` : `${fmt(used)} / ${fmt(map.gpus)}`;
  $("#kpi-gpus-bar").style.width = `${(100 * (state.me.role === "tenant" ? own : used) / Math.max(1, map.gpus)).toFixed(1)}%`;
  if (power) {
    $("#kpi-power").textContent = `${fmt(power.facility_draw_kw)} kW`;
    $("#kpi-power-sub").textContent = power.cap_kw !== null ? `cap ${fmt(power.cap_kw)} kW · design ${fmt(power.facility_design_kw)} kW`
      : `no cap · design ${fmt(power.facility_design_kw)} kW`;
  }
  $("#kpi-tokens-label").textContent = state.me.role === "tenant" ? "Your tokens / s" : "Tokens / s";
  $("#kpi-tokens").textContent = fmt(usage.data.reduce((a, u) => a + u.tokens_per_s, 0));
  $("#kpi-queue").textContent = fmt(queue.count);
  $("#kpi-queue-sub").textContent = queue.count ? `${fmt(queue.data.reduce((a, w) => a + w.gpus, 0))} GPUs waiting` : "nothing waiting";
  let bad = 0; const counts = { cordoned: 0, draining: 0, failed: 0 };
  for (const site of map.sites) for (const hall of site.halls) for (const rack of hall.racks)
    for (const [h, n] of Object.entries(rack.health)) if (h !== "ok") { bad += n; counts[h] += n; }
  $("#kpi-health").textContent = fmt(bad);
  $("#kpi-health-sub").textContent = `${counts.cordoned} cordoned · ${counts.draining} draining · ${counts.failed} failed`;
}

// ---------------------------------------------------------------- map

function tenantColour(name) {
  let hash = 0;
  for (const c of name) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return TENANT_PALETTE[hash % TENANT_PALETTE.length];
}

function occupancyColour(share) {
  // empty slate → teal → amber as the rack fills
  const stops = [[0, [38, 52, 69]], [0.5, [63, 182, 168]], [1, [224, 164, 58]]];
  let i = 0;
  while (i < stops.length - 2 && share > stops[i + 1][0]) i++;
  const [s0, c0] = stops[i], [s1, c1] = stops[i + 1];
  const t = Math.min(1, Math.max(0, (share - s0) / (s1 - s0)));
  const c = c0.map((v, k) => Math.round(v + (c1[k] - v) * t));
  return `rgb(${c.join(",")})`;
}

function rackHealth(rack) {
  for (const h of ["failed", "draining", "cordoned"]) if ((rack.health[h] || 0) > 0) return h;
  return "ok";
}

function rackTile(rack) {
  const usedAll = rack.gpus - rack.gpus_free;
  const used = state.me.role === "tenant" ? (rack.gpus_own || 0) : usedAll;
  const share = used / Math.max(1, rack.gpus);
  const health = rackHealth(rack);
  let fill = "", height = 100;
  if (state.mode === "occupancy") { fill = occupancyColour(share); height = Math.max(share * 100, share > 0 ? 8 : 0); }
  else if (state.mode === "tenant") {
    const parts = Object.entries(rack.tenants).sort((a, b) => b[1] - a[1]);
    let acc = 0; const segs = [];
    for (const [name, gpus] of parts) {
      const pct = 100 * gpus / rack.gpus;
      segs.push(`${tenantColour(name)} ${acc}% ${acc + pct}%`); acc += pct;
    }
    fill = segs.length ? `linear-gradient(0deg, ${segs.join(", ")}, transparent ${acc}%)` : "transparent";
  } else { fill = HEALTH_COLOURS[health]; height = 100; }
  const title = `rack ${rack.id} · SU ${rack.su} · ${used}/${rack.gpus} GPUs${state.me.role === "tenant" ? " yours" : " used"}` +
    ` · ${Object.entries(rack.health).map(([h, n]) => `${n} ${h}`).join(", ")}` +
    (Object.keys(rack.tenants).length ? ` · ${Object.entries(rack.tenants).map(([t, g]) => `${t} ${g}`).join(", ")}` : "");
  const badge = health !== "ok" && state.mode !== "health" ? `<span class="badge" style="background:${HEALTH_COLOURS[health]}"></span>` : "";
  const bg = state.mode === "tenant" ? `background:${fill};height:100%` : `background:${fill};height:${height}%`;
  return `<div class="rack${state.selectedRack === rack.id ? " selected" : ""}" data-rack-id="${rack.id}" data-health="${health}"
    data-used="${used}" data-gpus="${rack.gpus}" title="${esc(title)}"><div class="fill" style="${bg}"></div>${badge}
    <div class="label">R${rack.id}</div></div>`;
}

function ownGpus(racks) { return racks.reduce((a, r) => a + (r.gpus_own || 0), 0); }

function renderMap(map) {
  const tenant = state.me.role === "tenant";
  const html = map.sites.map((site) => `
    <div class="site"><div class="site-head"><span><b>${esc(site.name)}</b> · site ${site.id}</span>
      <span>${tenant ? `${fmt(ownGpus(site.halls.flatMap((h) => h.racks)))} of your GPUs · ${fmt(site.gpus_free)} free`
        : `${fmt(site.gpus - site.gpus_free)} / ${fmt(site.gpus)} GPUs in use`}</span></div>
      ${site.halls.map((hall) => {
        const sus = {};
        for (const r of hall.racks) (sus[r.su] = sus[r.su] || []).push(r);
        return `<div class="hall"><div class="hall-head"><span>hall ${hall.id}</span>
          <span>${fmt(hall.gpus_free)} free of ${fmt(hall.gpus)}</span></div><div class="sus">
          ${Object.entries(sus).map(([su, racks]) => `<div class="su"><div class="su-label">SU ${su}</div>
            <div class="racks">${racks.map(rackTile).join("")}</div></div>`).join("")}</div></div>`;
      }).join("")}
    </div>`).join("");
  $("#map").innerHTML = html;
  renderLegend(map);
}

function renderLegend(map) {
  let items = [];
  if (state.mode === "occupancy") items = [[occupancyColour(0), "empty"], [occupancyColour(0.5), "half"], [occupancyColour(1), "full"]];
  else if (state.mode === "health") items = Object.entries(HEALTH_COLOURS);
  else {
    const names = new Set();
    for (const s of map.sites) for (const h of s.halls) for (const r of h.racks) Object.keys(r.tenants).forEach((t) => names.add(t));
    items = [...names].sort().map((t) => [tenantColour(t), t]);
    if (!items.length) items = [["#263445", "no tenant holds GPUs"]];
  }
  $("#legend").innerHTML = items.map(([c, label]) => {
    const [colour, text] = state.mode === "health" ? [label, c] : [c, label];
    return `<span><span class="sw" style="background:${colour}"></span>${esc(text)}</span>`;
  }).join("");
}

// ---------------------------------------------------------------- rack detail

// whole GPUs, or a small workload's share of one GPU ("0.25 GPU")
function gpusText(w) {
  return w.kind === "small" && w.spec && w.spec.gpu_fraction ? `${w.spec.gpu_fraction} GPU` : fmt(w.gpus);
}

function sharedText(n) {
  const shares = Object.entries(n.gpus_shared || {});
  return shares.length ? ` · shared GPUs: ${shares.map(([slot, milli]) => `#${slot} ${milli / 10}%`).join(", ")}` : "";
}

async function renderRack(rackId) {
  let detail;
  try { detail = await api(`racks/${rackId}`); } catch (error) { $("#rack-detail").textContent = error.message; return; }
  const rack = detail.rack;
  $("#rack-title").textContent = `Rack ${rack.id} · SU ${rack.su} · hall ${rack.hall}`;
  const nodes = detail.nodes.map((n) => `<div class="node" data-node-id="${n.id}" data-health="${n.health}"
      title="node ${n.id} · domain ${n.domain} · ${n.health}${n.health_reason ? " (" + esc(n.health_reason) + ")" : ""}${sharedText(n)}">
      <span class="h h-${n.health}"></span>n${n.id}
      <div class="gpus">${Array.from({ length: n.gpus }, (_, i) => `<span class="${i < n.gpus - n.gpus_free ? "used" : ""}"></span>`).join("")}</div></div>`).join("");
  const health = Object.entries(rack.health).map(([h, n]) => `<span class="h h-${h}"></span>${n} ${h}`).join(" &nbsp; ");
  const workloads = detail.workloads.length ? `<table class="table"><thead><tr><th>workload</th><th>tenant</th><th class="num">GPUs</th><th>state</th></tr></thead><tbody>
      ${detail.workloads.map((w) => `<tr><td>${esc(w.id)}</td><td>${esc(w.tenant)}</td><td class="num">${gpusText(w)}</td>
      <td><span class="state state-${w.state}">${w.state}</span></td></tr>`).join("")}</tbody></table>`
    : `<p class="dim">No ${state.me.role === "tenant" ? "workload of yours" : "workload"} on this rack.</p>`;
  $("#rack-detail").innerHTML = `<p class="dim">${fmt(rack.gpus - rack.gpus_free)} / ${rack.gpus} GPUs in use · ${health}</p>
    <div class="nodes">${nodes}</div>${workloads}`;
  $("#rack-actions").innerHTML = state.me.role === "operator" ? `
    <button class="small" data-action="cordon">Cordon</button>
    <button class="small warn" data-action="drain">Drain</button>
    <button class="small danger" data-action="fail">Fail</button>
    <button class="small" data-action="return">Return</button>` : "";
}

async function rackAction(action) {
  if (state.selectedRack === null) return;
  try {
    const result = await api(`racks/${state.selectedRack}/${action}`, { method: "POST", body: JSON.stringify({ reason: `dashboard ${action}` }) });
    flash("#submit-msg", `rack ${state.selectedRack}: ${result.nodes.length} nodes ${result.health}; requeued ${result.requeued.length}`, true);
  } catch (error) { flash("#submit-msg", error.message, false); }
  await refresh();
}

// ---------------------------------------------------------------- tables

function renderWorkloads(workloads) {
  $("#workloads-count").textContent = `${workloads.length} shown`;
  $("#workloads tbody").innerHTML = workloads.map((w) => {
    const where = w.placement ? `racks ${w.placement.racks.join(", ")} · ${w.placement.node_ids.length} nodes` : esc(w.queue_reason);
    const live = ["queued", "placed", "running"].includes(w.state);
    return `<tr data-workload-id="${esc(w.id)}" data-state="${w.state}"><td>${esc(w.id)}</td><td>${esc(w.name)}</td>
      <td>${esc(w.tenant)}</td><td>${esc(w.kind)}${w.kind === "inference" ? ` ×${w.replicas}` : ""}</td><td class="num">${gpusText(w)}</td>
      <td><span class="state state-${w.state}">${w.state}</span></td><td>${where}</td>
      <td>${live ? `<button class="small ghost" data-cancel="${esc(w.id)}">Cancel</button>` : ""}</td></tr>`;
  }).join("");
}

function renderEnvironments(environments) {
  // grouped per tenant (an operator sees every tenant's, a tenant only its own)
  const sorted = [...environments].sort((a, b) => a.tenant.localeCompare(b.tenant) || a.name.localeCompare(b.name));
  $("#environments-count").textContent = `${environments.filter((e) => e.state !== "deleted").length} live`;
  $("#environments tbody").innerHTML = sorted.length ? sorted.map((e) => {
    const live = e.state === "ready";
    const pkey = e.pkey === null ? "" : `0x${e.pkey.toString(16).padStart(4, "0")}`;
    return `<tr data-env-id="${esc(e.id)}" data-env-name="${esc(e.name)}" data-tenant="${esc(e.tenant)}" data-state="${e.state}">
      <td>${esc(e.tenant)}</td><td>${esc(e.name)}</td><td>${esc(e.kind)}</td><td>${esc(e.template)}</td>
      <td><span class="state state-${e.state}" title="${esc(e.reason)}">${e.state}</span></td>
      <td class="num">${e.domains.length}</td><td class="num">${fmt(e.gpus)}</td><td>${pkey}</td><td class="num">${e.vlan ?? ""}</td>
      <td>${live ? `<button class="small ghost" data-env-delete="${esc(e.id)}">Delete</button>` : ""}</td></tr>`;
  }).join("") : `<tr><td colspan="10" class="dim">No environments yet.</td></tr>`;
}

async function createEnvironment(event) {
  event.preventDefault();
  const body = { name: $("#env-name").value.trim(), kind: $("#env-kind").value, domains: Number($("#env-domains").value) };
  if (state.me.role === "operator") body.tenant = $("#env-tenant").value;
  try {
    const e = await api("environments", { method: "POST", body: JSON.stringify(body) });
    flash("#env-msg", e.state === "ready" ? `${e.name} ready on ${e.nodes.length} nodes (P_Key 0x${e.pkey.toString(16)}, VLAN ${e.vlan})`
      : `${e.name} ${e.state}: ${e.reason}`, e.state === "ready");
  } catch (error) { flash("#env-msg", error.message, false); }
  await refresh();
}

function renderQueue(queue) {
  $("#queue tbody").innerHTML = queue.length ? queue.map((w, i) => `<tr data-workload-id="${esc(w.id)}"><td class="num">${i + 1}</td>
    <td>${esc(w.name)} <span class="dim">${esc(w.tenant)}</span></td><td class="num">${gpusText(w)}</td><td>${esc(w.queue_reason)}</td></tr>`).join("")
    : `<tr><td colspan="4" class="dim">The queue is empty.</td></tr>`;
}

function renderAudit(entries) {
  $("#audit tbody").innerHTML = entries.map((a) => {
    const change = a.after ? JSON.stringify(a.after) : "";
    return `<tr><td>${esc(new Date(a.at).toLocaleTimeString())}</td><td>${esc(a.actor)}</td><td>${esc(a.action)}</td>
      <td>${esc(a.target)}</td><td class="change" title="${esc(change)}">${esc(change)}</td></tr>`;
  }).join("");
}

// ---------------------------------------------------------------- chart

function renderChart(points, power) {
  const canvas = $("#chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = 200;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  const pad = { l: 52, r: 58, t: 12, b: 22 };
  const w = width - pad.l - pad.r, h = height - pad.t - pad.b;
  ctx.strokeStyle = "#1d2734"; ctx.fillStyle = "#7f8fa3"; ctx.font = "11px ui-monospace, monospace"; ctx.lineWidth = 1;
  if (!points.length) { ctx.fillText("no samples yet", pad.l + 8, pad.t + 20); return; }
  const t0 = new Date(points[0].at).getTime(), t1 = Math.max(t0 + 1000, new Date(points[points.length - 1].at).getTime());
  const kwMax = Math.max(...points.map((p) => Math.max(p.draw_kw, p.cap_kw || 0)), power.facility_design_kw * 0.25) * 1.1;
  const tokMax = Math.max(1, ...points.map((p) => p.tokens_per_s)) * 1.1;
  const x = (t) => pad.l + w * (new Date(t).getTime() - t0) / (t1 - t0);
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + h * i / 4;
    ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(pad.l + w, y); ctx.stroke();
    ctx.fillStyle = "#3fb6a8"; ctx.fillText(fmt(kwMax * (1 - i / 4)), 4, y + 4);
    ctx.fillStyle = "#b48cf2"; ctx.fillText(fmt(tokMax * (1 - i / 4)), pad.l + w + 6, y + 4);
  }
  ctx.fillStyle = "#7f8fa3";
  ctx.fillText(new Date(t0).toLocaleTimeString(), pad.l, height - 6);
  const last = new Date(t1).toLocaleTimeString();
  ctx.fillText(last, pad.l + w - ctx.measureText(last).width, height - 6);
  const line = (key, max, colour, dash = []) => {
    ctx.beginPath(); ctx.setLineDash(dash); ctx.strokeStyle = colour; ctx.lineWidth = 2;
    let started = false, prev = null;
    for (const p of points) {
      const v = p[key];
      if (v === null || v === undefined) { started = false; continue; }
      const px = x(p.at), py = pad.t + h * (1 - v / max);
      if (!started) { ctx.moveTo(px, py); started = true; } else { ctx.lineTo(px, prev); ctx.lineTo(px, py); }
      prev = py;
    }
    if (started) ctx.lineTo(pad.l + w, prev);
    ctx.stroke(); ctx.setLineDash([]);
  };
  line("tokens_per_s", tokMax, "#b48cf2");
  line("draw_kw", kwMax, "#3fb6a8");
  line("cap_kw", kwMax, "#e04a4a", [5, 4]);
}

// ---------------------------------------------------------------- forms

function flash(selector, text, ok) {
  const el = $(selector);
  el.textContent = text;
  el.className = `msg ${ok ? "ok" : "bad"}`;
}

async function submitWorkload(event) {
  event.preventDefault();
  const body = {
    name: $("#wl-name").value.trim(), kind: $("#wl-kind").value, gpus: Number($("#wl-gpus").value),
    replicas: Number($("#wl-replicas").value || 1), priority: Number($("#wl-priority").value || 0),
  };
  if (state.me.role === "operator") body.tenant = $("#wl-tenant").value;
  try {
    const w = await api("workloads", { method: "POST", body: JSON.stringify(body) });
    flash("#submit-msg", w.placement ? `${w.id} placed on racks ${w.placement.racks.join(", ")}` : `${w.id} queued: ${w.queue_reason}`, true);
    if (w.placement) state.selectedRack = w.placement.racks[0];
  } catch (error) { flash("#submit-msg", error.message, false); }
  await refresh();
}

async function gridEvent(kind) {
  const body = { kind };
  if (kind === "curtailment") body.cap_kw = Number($("#curtail-kw").value);
  try {
    const result = await api("power/events", { method: "POST", body: JSON.stringify(body) });
    $("#power-msg").textContent = result.events.length ? result.events[0].message : "";
  } catch (error) { $("#power-msg").textContent = error.message; }
  await refresh();
}

// ---------------------------------------------------------------- wiring

$("#login-form").addEventListener("submit", (e) => { e.preventDefault(); login($("#token-input").value); });
$("#logout").addEventListener("click", logout);
$("#submit-form").addEventListener("submit", submitWorkload);
$("#wl-kind").addEventListener("change", () => {
  $("#wl-gpus-hint").textContent = $("#wl-kind").value === "inference" ? "(per replica)" : "(gang)";
});
$("#colour-mode").addEventListener("click", (e) => {
  const mode = e.target.dataset.mode;
  if (!mode) return;
  state.mode = mode;
  document.querySelectorAll("#colour-mode button").forEach((b) => b.classList.toggle("active", b.dataset.mode === mode));
  if (state.map) renderMap(state.map);
});
$("#map").addEventListener("click", (e) => {
  const tile = e.target.closest(".rack");
  if (!tile) return;
  state.selectedRack = Number(tile.dataset.rackId);
  document.querySelectorAll(".rack").forEach((r) => r.classList.toggle("selected", r === tile));
  renderRack(state.selectedRack);
});
$("#rack-actions").addEventListener("click", (e) => { if (e.target.dataset.action) rackAction(e.target.dataset.action); });
$("#workloads").addEventListener("click", async (e) => {
  const id = e.target.dataset.cancel;
  if (!id) return;
  try { await api(`workloads/${id}`, { method: "DELETE" }); } catch (error) { flash("#submit-msg", error.message, false); }
  await refresh();
});
$("#env-form").addEventListener("submit", createEnvironment);
$("#environments").addEventListener("click", async (e) => {
  const id = e.target.dataset.envDelete;
  if (!id) return;
  try {
    const env = await api(`environments/${id}`, { method: "DELETE" });
    flash("#env-msg", `${env.name} ${env.state}`, env.state === "deleted");
  } catch (error) { flash("#env-msg", error.message, false); }
  await refresh();
});
$("#curtail").addEventListener("click", () => gridEvent("curtailment"));
$("#restore").addEventListener("click", () => gridEvent("restore"));
if (state.token) login(state.token);
