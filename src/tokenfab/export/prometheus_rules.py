"""Prometheus recording and alerting rules for an AI factory (the files in ``ops/prometheus/rules/``).

Recording rules: output tokens/s per service and tenant, TTFT and ITL p50/p99, the TTFT SLO's error
ratio and attainment over the windows the burn-rate alerts need, error budget left, facility power.

The SLO is "a request's time to first token is within the service's target", objective `SLO_OBJECTIVE`.
A request is good when it lands in the histogram bucket whose ``le`` equals the target: the vLLM
exporter's ``tokenfab_service_slo_info`` names that bucket (``ttft_le``), and a join on ``le`` picks it,
so one rule serves every service whatever its target.

Burn-rate alerts follow the multiwindow, multi-burn-rate form of the Google SRE Workbook (chapter
"Alerting on SLOs", table 5-8): page when the error ratio exceeds 14.4x the budget over 1 h and 5 m, or
6x over 6 h and 30 m; ticket at 3x over 1 d and 2 h, or 1x over 3 d and 6 h. The burn rate is the error
ratio over the budget :math:`1 - objective`.

`rule_files(time_scale, floor_s)` divides every window and ``for`` duration by `time_scale` (not below
`floor_s`), so a factory emulated at N times real time is watched with windows N times shorter
(time_scale=1 gives the shipped files).
"""

from __future__ import annotations

import yaml

from tokenfab.twin.metrics import SLO_OBJECTIVE

SLO_WINDOWS_S = {"5m": 300, "30m": 1800, "1h": 3600, "2h": 7200, "6h": 21600, "1d": 86400, "3d": 259200}
BURN_RATES = (
    ("page", 14.4, "1h", "5m"),
    ("page", 6.0, "6h", "30m"),
    ("ticket", 3.0, "1d", "2h"),
    ("ticket", 1.0, "3d", "6h"),
)
"""(severity, burn rate, long window, short window) of the SRE Workbook's table."""
XID_CODES = (48, 79, 94)
"""XIDs that take a GPU out of service: 48 double-bit ECC, 79 fallen off the bus, 94 contained ECC."""
GPU_TEMP_MAX_C = 85.0
"""estimate: GPU temperature past which the node is treated as overheating [°C]."""
NVLINK_CRC_MAX_PER_S = 1.0
"""estimate: NVLink CRC flit errors per second past which a link is treated as failing [1/s]."""


def duration(seconds: float) -> str:
    """A Prometheus duration for `seconds` (the largest whole unit, milliseconds for fractions)."""
    if seconds >= 1 and abs(seconds - round(seconds)) < 1e-9:
        whole = int(round(seconds))
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if whole % size == 0:
                return f"{whole // size}{unit}"
        return f"{whole}s"
    return f"{max(1, int(round(seconds * 1000)))}ms"


def _window(name: str, scale: float, floor_s: float = 0.0) -> str:
    return duration(max(SLO_WINDOWS_S[name] / scale, floor_s))


def _good_ratio(window: str) -> str:
    target = 'label_replace(tokenfab_service_slo_info, "le", "$1", "ttft_le", "(.*)")'
    good = (
        f"sum by (service, tenant) (rate(vllm:time_to_first_token_seconds_bucket[{window}])"
        f" * on (service, le) group_left () {target})"
    )
    total = f"sum by (service, tenant) (rate(vllm:time_to_first_token_seconds_count[{window}]))"
    return f"{good} / {total}"


def recording_rules(scale: float = 1.0, floor_s: float = 0.0) -> dict:
    rate = duration(max(60 / scale, floor_s)) if scale > 1 else "1m"
    rules = [
        {
            "record": "tokenfab:service_output_tokens:rate1m",
            "expr": f"sum by (service, tenant) (rate(vllm:generation_tokens_total[{rate}]))",
        },
        {
            "record": "tokenfab:tenant_output_tokens:rate1m",
            "expr": "sum by (tenant) (tokenfab:service_output_tokens:rate1m)",
        },
        {
            "record": "tokenfab:service_requests:rate1m",
            "expr": f"sum by (service, tenant) (rate(vllm:request_success_total[{rate}]))",
        },
    ]
    for metric, short in (("time_to_first_token_seconds", "ttft"), ("inter_token_latency_seconds", "itl")):
        for q, label in ((0.5, "p50"), (0.99, "p99")):
            rules.append(
                {
                    "record": f"tokenfab:service_{short}_seconds:{label}_1m",
                    "expr": f"histogram_quantile({q}, sum by (service, tenant, le) (rate(vllm:{metric}_bucket[{rate}])))",
                }
            )
    for name in SLO_WINDOWS_S:
        w = _window(name, scale, floor_s)
        rules.append({"record": f"slo:ttft_errors:ratio_rate{name}", "expr": f"1 - ({_good_ratio(w)})"})
    rules += [
        {"record": "slo:ttft_attainment:ratio_rate5m", "expr": "1 - slo:ttft_errors:ratio_rate5m"},
        {"record": "slo:ttft_attainment:ratio_rate1h", "expr": "1 - slo:ttft_errors:ratio_rate1h"},
        {
            "record": "slo:error_budget_remaining:ratio_rate3d",
            "expr": f"1 - slo:ttft_errors:ratio_rate3d / {1 - SLO_OBJECTIVE:.4g}",
        },
        {"record": "tokenfab:facility_power_watts", "expr": "sum by (site) (facility_meter_power_watts)"},
        {
            "record": "tokenfab:facility_power_headroom_watts",
            "expr": "sum by (site) (facility_grid_power_limit_watts) - sum by (site) (facility_meter_power_watts)",
        },
        {"record": "tokenfab:gpu_power_watts:sum", "expr": "sum by (hall) (DCGM_FI_DEV_POWER_USAGE)"},
        {"record": "tokenfab:gpus_reporting:count", "expr": "count by (hall) (DCGM_FI_DEV_GPU_TEMP)"},
    ]
    return {"groups": [{"name": "tokenfab-recording", "rules": rules}]}


def _burn_alert(severity: str, pairs: list[tuple[float, str, str]]) -> dict:
    budget = 1 - SLO_OBJECTIVE
    terms = [
        f"(slo:ttft_errors:ratio_rate{long} > {rate:g} * {budget:.4g} and slo:ttft_errors:ratio_rate{short} > {rate:g} * {budget:.4g})"
        for rate, long, short in pairs
    ]
    name = "SLOBurnRateFast" if severity == "page" else "SLOBurnRateSlow"
    return {
        "alert": name,
        "expr": "\n  or\n".join(terms),
        "labels": {"severity": severity, "action": "scale_out"},
        "annotations": {
            "summary": "{{ $labels.service }} ({{ $labels.tenant }}) burns its TTFT error budget",
            "description": "error ratio {{ $value | humanizePercentage }} against a "
            f"{SLO_OBJECTIVE:.0%} objective (SRE Workbook multiwindow burn rate)",
        },
    }


def alert_rules(scale: float = 1.0, floor_s: float = 0.0) -> dict:
    def d(seconds: float) -> str:
        return duration(max(seconds / scale, floor_s))

    xid = " or ".join(f"DCGM_FI_DEV_XID_ERRORS == {c}" for c in XID_CODES)
    gpu = [
        "GpuXidError",
        "GpuDoubleBitEcc",
        "NvlinkErrors",
        "GpuOverheating",
        "GpuTelemetryLost",
        "RackExporterDown",
    ]
    rules = [
        {
            "alert": gpu[0],
            "expr": f"max by (Hostname, gpu, rack, hall) ({xid})",
            "labels": {"severity": "critical", "action": "drain_node"},
            "annotations": {"summary": "XID {{ $value }} on {{ $labels.Hostname }} GPU {{ $labels.gpu }}"},
        },
        {
            "alert": gpu[1],
            "expr": f"max by (Hostname, gpu, rack, hall) (increase(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL[{d(300)}]) > 0)",
            "labels": {"severity": "critical", "action": "drain_node"},
            "annotations": {
                "summary": "double-bit ECC errors on {{ $labels.Hostname }} GPU {{ $labels.gpu }}"
            },
        },
        {
            "alert": gpu[2],
            "expr": (
                f"max by (Hostname, gpu, rack, hall) (rate(DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL[{d(120)}]) > {NVLINK_CRC_MAX_PER_S:g}"
                f" or increase(DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL[{d(300)}]) > 0)"
            ),
            "labels": {"severity": "critical", "action": "drain_node"},
            "annotations": {"summary": "NVLink errors on {{ $labels.Hostname }} GPU {{ $labels.gpu }}"},
        },
        {
            "alert": gpu[3],
            "expr": f"max by (Hostname, gpu, rack, hall) (DCGM_FI_DEV_GPU_TEMP > {GPU_TEMP_MAX_C:g})",
            "for": d(60),
            "labels": {"severity": "warning", "action": "none"},
            "annotations": {"summary": "{{ $labels.Hostname }} GPU {{ $labels.gpu }} at {{ $value }} °C"},
        },
        {
            "alert": gpu[4],
            "expr": (
                f"(max by (Hostname, rack, hall) (max_over_time(DCGM_FI_DEV_GPU_TEMP[{d(600)}]))"
                " unless max by (Hostname, rack, hall) (DCGM_FI_DEV_GPU_TEMP))"
                ' and on (rack) (max by (rack) (up{job="dcgm"}) == 1)'
            ),
            "for": d(30),
            "labels": {"severity": "critical", "action": "drain_node"},
            "annotations": {"summary": "{{ $labels.Hostname }} stopped reporting (node down)"},
        },
        {
            "alert": gpu[5],
            "expr": 'up{job="dcgm"} == 0',
            "for": d(30),
            "labels": {"severity": "critical", "action": "drain_rack"},
            "annotations": {"summary": "rack {{ $labels.rack }} exporter down"},
        },
        {
            "alert": "CduPumpFailed",
            "expr": "facility_cdu_pump_running == 0",
            "labels": {"severity": "critical", "action": "derate_racks"},
            "annotations": {"summary": "CDU {{ $labels.cdu }} pump stopped in hall {{ $labels.hall }}"},
        },
        {
            "alert": "CduCapacityShort",
            "expr": "sum by (site, hall) (facility_cdu_pump_running) < on (site, hall) max by (site, hall) (facility_cdu_required)",
            "labels": {"severity": "critical", "action": "derate_racks"},
            "annotations": {"summary": "hall {{ $labels.hall }} has fewer running CDUs than it needs"},
        },
        {
            "alert": "FacilityPowerOverCap",
            "expr": "sum by (site) (facility_meter_power_watts) > on (site) sum by (site) (facility_grid_power_limit_watts)",
            "labels": {"severity": "critical", "action": "shed_power"},
            "annotations": {
                "summary": "site {{ $labels.site }} draws {{ $value | humanize }}W, over its limit"
            },
        },
        {
            "alert": "GridEventActive",
            "expr": "facility_grid_event_active == 1",
            "labels": {"severity": "warning", "action": "grid_event"},
            "annotations": {"summary": "the grid asks site {{ $labels.site }} to shed load"},
        },
    ]
    pages = [(r, long, short) for sev, r, long, short in BURN_RATES if sev == "page"]
    tickets = [(r, long, short) for sev, r, long, short in BURN_RATES if sev == "ticket"]
    slo = [_burn_alert("page", pages), _burn_alert("ticket", tickets)]
    return {
        "groups": [{"name": "tokenfab-gpu-facility", "rules": rules}, {"name": "tokenfab-slo", "rules": slo}]
    }


def rule_files(scale: float = 1.0, floor_s: float = 0.0) -> dict[str, str]:
    """File name → YAML text of the recording and alerting rules; no window or ``for`` below `floor_s`
    (a few scrape intervals, so every window holds samples enough for a rate)."""
    head = "# Generated by `tokenfab export prometheus` (tokenfab.export.prometheus_rules); do not edit by hand.\n"
    if scale != 1.0:
        head += f"# Windows and `for` durations divided by {scale:g} (an emulated factory at {scale:g}x), {floor_s:g} s at least.\n"
    dump = lambda doc: head + yaml.safe_dump(doc, sort_keys=False, width=200, allow_unicode=True)  # noqa: E731
    return {
        "recording.yml": dump(recording_rules(scale, floor_s)),
        "alerts.yml": dump(alert_rules(scale, floor_s)),
    }
