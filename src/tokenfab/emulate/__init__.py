"""The emulated factory: the twin's fleet and physics in (accelerated) real time, serving telemetry in the
formats real equipment emits (DCGM-exporter, vLLM, facility meters and CDUs, Redfish) and taking faults.

`build(design, workload_spec)` gives the factory, its workload and the names the telemetry uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokenfab.emulate.factory import EmulatedFactory
from tokenfab.emulate.workload import EmulatedWorkload, build_workload


@dataclass
class Emulation:
    factory: EmulatedFactory
    workload: EmulatedWorkload
    node_names: list[str]
    rack_names: list[str]


def build(
    design, workload_spec, catalog=None, start_hour: float = 12.0, seed: int = 0, base_dir: Path | None = None
) -> Emulation:
    """The factory of `design` running `workload_spec` from `start_hour` of its first day."""
    from tokenfab.names import inventory
    from tokenfab.twin.facility import facility_figures

    if catalog is None:
        from tokenfab.catalog.load import load_catalog

        catalog = load_catalog()
    figures = facility_figures(design, catalog)
    start_s = start_hour * 3600.0
    names = inventory(design)
    total = sum(s.metrics.gpus for s in design.sites)
    workload = build_workload(
        workload_spec,
        catalog,
        figures.system,
        total,
        figures.gpus_per_node,
        figures.gpus_per_domain,
        start_s,
        seed,
        base_dir,
    )
    factory = EmulatedFactory(design, figures, workload, start_s)
    return Emulation(factory, workload, list(names.node_names), list(names.rack_names))
