"""Anchors: each example design's facility figures beside public ones, with sources and error.

For every example and a 1.2 GW GB200 site it prints and writes: facility capex per MW of critical load
against its market (Cushman & Wakefield 2025), all-in capex per GW against the ~$50-60 B quoted, GPUs per
MW, compute-fabric switches and transceiver modules per GPU against the SuperPOD RAs, WUE and PUE against
NVIDIA's and the DSX Blueprint's figures; and the time to compile 1 GW in-process (target <= 50 ms).
Writes bench/results/facility.md and the anchors section of docs/blueprint.md.
Run: .venv/bin/python bench/bench_facility.py
"""

from __future__ import annotations

import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import machine_line  # noqa: E402

from tokenfab.blueprint.compile import compile  # noqa: E402
from tokenfab.catalog.load import load_catalog  # noqa: E402
from tokenfab.catalog.models import Market  # noqa: E402
from tokenfab.spec import load_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["row-1mw", "site-10mw", "site-100mw", "site-1gw", "campus-2750mw", "site-1200mw-gb200"]

ALL_IN_USD_PER_GW = (
    50e9,
    "NVIDIA (J. Huang, Q2 FY2026 earnings call, Aug 2025): $50-60 B per GW of AI factory, all-in",
)
GPUS_PER_MW = {
    "gb200-nvl72": (576 / 1.2, "DGX SuperPOD GB200 RA: SU of 576 GPUs at 1.2 MW TDP"),
    "gb300-nvl72": (
        72 / 0.136,
        "72 GPUs per ~136 kW GB300 NVL72 rack (Microsoft via ai-infrastructure.net), racks only",
    ),
    "vera-rubin-nvl72": (
        72 / 0.21,
        "72 GPUs per ~190-230 kW VR NVL72 rack (regantih tsv; TrendForce), racks only",
    ),
}
SWITCHES_PER_GPU = {
    "infiniband_ndr": (
        1280 / 16384,
        "DGX SuperPOD B200 RA, 64 SU: 512 leaf + 512 spine + 256 core QM9700 for 16,384 GPUs",
    ),
    "infiniband_xdr": (
        216 / 10368,
        "DGX SuperPOD B300-XDR RA, 18 SU: 144 leaf + 72 spine Q3400 for 10,368 GPUs (2 tiers)",
    ),
}
MODULES_PER_GPU = (
    3.5,
    "issue 12: Q3400 / QM9700 twin-port OSFP, ~3.5 modules per GPU on 3 tiers (NIC + 2.5 switch-side)",
)
WUE_TOWER = (
    1.12,
    "NVIDIA: cooling towers ~2.6 M gal per MW-year = 1.12 L/kWh (derived; facility-figures §3c)",
)
PUE_ANCHOR = (
    1.2,
    "DSX Blueprint demo KPIs 1.15-1.2 (illustrative); liquid-cooled AI halls 1.1-1.2 (facility-figures §3c)",
)


def _err(design: float, public: float) -> str:
    return f"{(design - public) / public:+.0%}"


def _rows(catalog) -> list[list[str]]:
    rows = []
    for name in EXAMPLES:
        spec, _ = load_spec(ROOT / "examples" / f"{name}.yaml")
        design = compile(spec, catalog)
        for site in design.sites:
            m, f = site.metrics, site.fabric
            label = f"{name}/{site.name}"
            market = catalog.typed("markets", m.market, Market) if m.market else None
            if market:
                lo, mid, hi = (
                    market.construction_usd_per_mw_low,
                    market.construction_usd_per_mw_mid,
                    market.construction_usd_per_mw_high,
                )
                rows.append(
                    [
                        label,
                        "facility capex per MW IT",
                        f"${m.facility_capex_usd_per_mw / 1e6:.2f} M",
                        f"${mid / 1e6:.1f} M (${lo / 1e6:.1f}-{hi / 1e6:.1f} M)",
                        _err(m.facility_capex_usd_per_mw, mid),
                        f"{market.name}: {market.sources.get('construction_usd_per_mw_mid', '')}",
                    ]
                )
            per_gw = m.capex_usd / (m.facility_mw / 1000.0)
            rows.append(
                [
                    label,
                    "all-in capex per GW (facility)",
                    f"${per_gw / 1e9:.1f} B",
                    f"${ALL_IN_USD_PER_GW[0] / 1e9:.0f} B",
                    _err(per_gw, ALL_IN_USD_PER_GW[0]),
                    ALL_IN_USD_PER_GW[1],
                ]
            )
            public = GPUS_PER_MW.get(site.system)
            if public:
                rows.append(
                    [
                        label,
                        "GPUs per MW IT",
                        f"{m.gpus / m.it_mw:.0f}",
                        f"{public[0]:.0f}",
                        _err(m.gpus / m.it_mw, public[0]),
                        public[1],
                    ]
                )
            compute = [i for i in f.items if i.network == "compute"]
            switches = sum(i.count for i in compute if i.kind == "switch")
            modules = sum(i.count for i in compute if i.kind == "transceiver")
            public = SWITCHES_PER_GPU.get(f.kind)
            if public and m.gpus:
                rows.append(
                    [
                        label,
                        f"compute switches per GPU ({f.tiers_per_plane} tiers)",
                        f"{switches / m.gpus:.4f}",
                        f"{public[0]:.4f}",
                        _err(switches / m.gpus, public[0]),
                        public[1],
                    ]
                )
            if m.gpus and modules:
                rows.append(
                    [
                        label,
                        "compute transceiver modules per GPU",
                        f"{modules / m.gpus:.2f}",
                        f"{MODULES_PER_GPU[0]:.2f}",
                        _err(modules / m.gpus, MODULES_PER_GPU[0]),
                        MODULES_PER_GPU[1],
                    ]
                )
            rows.append(
                [
                    label,
                    f"WUE, L/kWh ({site.cooling.heat_rejection})",
                    f"{m.wue_l_per_kwh:.2f}",
                    f"{WUE_TOWER[0]:.2f} (towers)",
                    _err(m.wue_l_per_kwh, WUE_TOWER[0]),
                    WUE_TOWER[1],
                ]
            )
            rows.append(
                [
                    label,
                    "PUE (annual)",
                    f"{m.pue_annual:.3f}",
                    f"{PUE_ANCHOR[0]:.2f}",
                    _err(m.pue_annual, PUE_ANCHOR[0]),
                    PUE_ANCHOR[1],
                ]
            )
    return rows


def _compile_ms(catalog) -> float:
    spec, _ = load_spec(ROOT / "examples" / "site-1gw.yaml")
    compile(spec, catalog)
    samples = []
    for _ in range(15):
        start = time.perf_counter()
        compile(spec, catalog)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000.0


def main() -> None:
    catalog = load_catalog()
    rows = _rows(catalog)
    ms = _compile_ms(catalog)
    table = ["| design | figure | design | public | error | source |", "|---|---|---|---|---|---|"]
    table += ["| " + " | ".join(r) + " |" for r in rows]
    header = [
        f"Machine: {machine_line()}. Command: `.venv/bin/python bench/bench_facility.py`. "
        f"Compile of the 1 GW example in-process: median {ms:.1f} ms of 15 (target <= 50 ms).",
        "",
    ]
    text = "\n".join(["## Facility anchors (issue 12)", "", *header, *table, ""])
    print(text)
    (ROOT / "bench" / "results" / "facility.md").write_text(text, encoding="utf-8")
    docs = ROOT / "docs" / "blueprint.md"
    body = docs.read_text(encoding="utf-8")
    section = "\n".join(
        [
            "<!-- anchors:start (written by bench/bench_facility.py) -->",
            *header,
            *table,
            "<!-- anchors:end -->",
        ]
    )
    if "<!-- anchors:start" in body:
        body = re.sub(r"<!-- anchors:start.*?<!-- anchors:end -->", lambda _: section, body, flags=re.S)
    else:
        body = body.rstrip() + "\n\n## Anchors: the design beside public figures\n\n" + section + "\n"
    docs.write_text(body, encoding="utf-8")


if __name__ == "__main__":
    main()
