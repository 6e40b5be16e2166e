// The operations loop on the dashboard: per service tokens/s, TTFT/ITL, SLO attainment and error budget,
// facility power against the grid limit, over time (from /api/v1/ops/history, what the loop read from
// Prometheus), and the loop's recent actions with their reaction times. Uses app.js's `state`, `api`,
// `$`, `esc` and `fmt`.
"use strict";

const OPS_COLOURS = ["#3fb6a8", "#b48cf2", "#e0843a", "#2b7fd6", "#d4b13a", "#e86aa6"];

function opsSeries(points) {
  const names = new Set();
  for (const p of points) for (const k of Object.keys(p.services || {})) names.add(k);
  return [...names].sort();
}

function opsChart(canvasId, points, series, value, lo, hi, unit) {
  const canvas = $(canvasId);
  if (!canvas) return;
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = 160;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  const pad = { l: 56, r: 10, t: 10, b: 20 };
  const w = width - pad.l - pad.r, h = height - pad.t - pad.b;
  ctx.font = "11px ui-monospace, monospace"; ctx.fillStyle = "#7f8fa3"; ctx.strokeStyle = "#1d2734";
  if (points.length < 2) { ctx.fillText("no samples yet (serve --prometheus)", pad.l + 8, pad.t + 20); return; }
  const t0 = points[0].at_unix, t1 = Math.max(t0 + 1, points[points.length - 1].at_unix);
  let top = hi;
  if (top === null) top = Math.max(1e-9, ...points.flatMap((p) => series.map((s) => value(p, s) || 0))) * 1.1;
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + h * i / 4;
    ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(pad.l + w, y); ctx.stroke();
    ctx.fillText(`${fmt(top - (top - lo) * i / 4, top <= 1.5 ? 3 : 0)}${unit}`, 2, y + 4);
  }
  series.forEach((s, i) => {
    ctx.beginPath(); ctx.strokeStyle = OPS_COLOURS[i % OPS_COLOURS.length]; ctx.lineWidth = 2;
    let started = false;
    for (const p of points) {
      const v = value(p, s);
      if (v === null || v === undefined || Number.isNaN(v)) { started = false; continue; }
      const px = pad.l + w * (p.at_unix - t0) / (t1 - t0);
      const py = pad.t + h * (1 - (Math.min(Math.max(v, lo), top) - lo) / (top - lo));
      if (!started) { ctx.moveTo(px, py); started = true; } else ctx.lineTo(px, py);
    }
    ctx.stroke();
    ctx.fillStyle = OPS_COLOURS[i % OPS_COLOURS.length];
    ctx.fillText(s, pad.l + 8 + i * 120, height - 5);
  });
}

async function refreshOps() {
  if (!state.me || state.me.role !== "operator" || !$("#ops-card")) return;
  try {
    const [history, actions] = await Promise.all([api("ops/history?limit=400"), api("ops/actions?limit=15")]);
    const points = history.data;
    const services = opsSeries(points);
    opsChart("#ops-attainment", points, services, (p, s) => (p.services[s] || {}).slo_attainment_5m, 0.9, 1.0, "");
    opsChart("#ops-tokens", points, services, (p, s) => (p.services[s] || {}).output_tokens_per_s, 0, null, "");
    opsChart("#ops-power", points, ["draw", "limit"],
      (p, s) => (s === "draw" ? p.facility.power_w : p.facility.limit_w) / 1000, 0, null, "");
    const last = points.length ? points[points.length - 1] : { services: {} };
    $("#ops-services tbody").innerHTML = services.map((s) => {
      const v = last.services[s] || {};
      const pct = (x) => (x === undefined ? "–" : `${fmt(100 * x, 2)} %`);
      const ms = (x) => (x === undefined ? "–" : `${fmt(1000 * x, 0)} ms`);
      return `<tr><td>${esc(s)}</td><td>${v.output_tokens_per_s === undefined ? "–" : fmt(v.output_tokens_per_s)}</td>
        <td>${ms(v.ttft_p50_s)} / ${ms(v.ttft_p99_s)}</td><td>${ms(v.itl_p50_s)} / ${ms(v.itl_p99_s)}</td>
        <td>${pct(v.slo_attainment_5m)}</td><td>${pct(v.error_budget_remaining)}</td></tr>`;
    }).join("");
    $("#ops-actions tbody").innerHTML = actions.data.slice().reverse().map((a) => `<tr>
      <td>${new Date(a.done_unix * 1000).toLocaleTimeString()}</td><td>${esc(a.alert)} (${esc(a.status)})</td>
      <td>${esc(a.acted ? a.action : "skipped")}</td><td>${esc(a.target)}</td><td>${fmt(1000 * a.reaction_s, 0)} ms</td></tr>`).join("");
  } catch (error) {
    // the main refresh reports a stale connection
  }
}

setInterval(refreshOps, 2000);
