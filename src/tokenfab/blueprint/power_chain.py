"""The power chain of a site, sized in blocks: substation (or utility MV service), MV/LV transformers or
solid-state transformers, UPS or DC storage, busway, standby generators, and what the grid sees.

A block is one transformer (or SST) with its UPS system and generators; halls get whole blocks and the
spec's topology (N, N+1, distributed redundant n-make-(n−1), block redundant with a catcher, 2N) says how
many are installed and how many must carry the hall after its worst single block failure. Ratings are
picked from the catalog's range: the cheapest that keeps every hall's loading at or above the loading
target (catalog facility_limits), else the best-loaded. Pure; powers in kW, apparent powers in kVA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokenfab.blueprint import power
from tokenfab.blueprint.design import (
    DistributionDesign,
    FailureCase,
    GridDesign,
    HallDesign,
    PowerBlocks,
    PowerChainDesign,
    PowerStage,
    StandbyDesign,
)

if TYPE_CHECKING:
    from tokenfab.blueprint.loads import Loads
    from tokenfab.blueprint.parts import Parts
    from tokenfab.catalog.models import Generator, Transformer, Ups
    from tokenfab.spec import SiteSpec

DUAL_FEED_TOPOLOGIES = ("2N", "DR", "BR")
"""Topologies whose racks take two feeds, so every row has an A and a B busway."""


@dataclass(frozen=True)
class _Sized:
    """One stage sized hall by hall: the unit, and per hall (load, required, installed, carrying)."""

    unit: Transformer
    halls: list[tuple[float, int, int, int]]

    @property
    def required(self) -> int:
        return sum(h[1] for h in self.halls)

    @property
    def installed(self) -> int:
        return sum(h[2] for h in self.halls)

    @property
    def carrying(self) -> int:
        return sum(h[3] for h in self.halls)


def site_topology(site: SiteSpec) -> str:
    p = site.power
    return power.topology_label(
        p.topology.value, site.redundancy.power.value, p.distributed_make, p.catcher_group_max
    )


def size_blocks(
    options: tuple[Transformer, ...] | list[Transformer],
    hall_kva: list[float],
    topology: str,
    min_loading: float,
    extra_cost_per_block: float = 0.0,
) -> _Sized:
    """Pick the block rating and count blocks per hall.

    Every hall needs :math:`r = \\lceil S_{hall} / (S_{unit} f_{max}) \\rceil` blocks; `power.block_counts`
    adds the topology's spares. The rating chosen is the cheapest (units plus `extra_cost_per_block`) whose
    loading :math:`S_{hall} / (N_{carry} S_{unit})` is at least `min_loading` in every hall; when none
    reaches it, the best-loaded rating.
    """
    candidates = []
    for unit in options:
        usable = unit.rating_mva * 1000.0 * unit.max_loading_fraction
        halls = []
        for kva in hall_kva:
            required = math.ceil(kva / usable - 1e-9) if kva > 0 else 0
            installed, carrying = power.block_counts(required, topology)
            halls.append((kva, required, installed, carrying))
        loadings = [kva / (c * unit.rating_mva * 1000.0) for kva, _, _, c in halls if c]
        worst = min(loadings, default=0.0)
        cost = sum(h[2] for h in halls) * (unit.cost_usd + extra_cost_per_block)
        candidates.append(
            (
                worst < min_loading,
                cost if worst >= min_loading else -worst,
                -unit.rating_mva,
                unit.name,
                unit,
                halls,
            )
        )
    *_, unit, halls = min(candidates, key=lambda c: c[:4])
    return _Sized(unit, halls)


def _stage(
    name: str,
    equipment: str,
    sized_units: tuple[int, int, int],
    rating_kw: float,
    load_kw: float,
    max_loading: float,
    efficiency: float,
    loss_kw: float,
    redundancy: str,
) -> PowerStage:
    required, installed, carrying = sized_units
    return PowerStage(
        stage=name,
        equipment=equipment,
        units_required=required,
        units_installed=installed,
        unit_rating_kw=rating_kw,
        load_kw=load_kw,
        loading_fraction=power.loading_fraction(load_kw, installed, rating_kw, redundancy, carrying),
        max_loading_fraction=max_loading,
        efficiency=efficiency,
        loss_kw=loss_kw,
        redundancy=redundancy,
        units_carrying=carrying,
    )


def _failure(unit: str, sized: _Sized, rating_kw: float, topology: str) -> FailureCase:
    """The worst single failure of `unit` over the halls: the most loaded survivors."""
    worst = FailureCase(
        unit=unit, element="site", load_kw=0.0, capacity_after_kw=0.0, loading_after=0.0, carried=True
    )
    for h, (load, _, installed, carrying) in enumerate(sized.halls):
        if installed == 0:
            continue
        left = power.units_after_worst_failure(installed, carrying, topology)
        capacity = left * rating_kw
        loading = load / capacity if capacity > 0 else math.inf
        if loading > worst.loading_after:
            worst = FailureCase(
                unit=unit,
                element=f"hall[{h}]",
                load_kw=load,
                capacity_after_kw=capacity,
                loading_after=loading,
                carried=loading <= 1.0 + 1e-9,
            )
    return worst


def _hall_shares(halls: list[HallDesign]) -> list[float]:
    hall_it = [h.it_power_max_kw for h in halls]
    total = sum(hall_it)
    return [kw / total for kw in hall_it] if total > 0 else [1.0 / len(halls)] * len(halls)


def settle_parts(parts: Parts, site: SiteSpec, loads: Loads, halls: list[HallDesign]) -> Parts:
    """The MV/LV transformer and substation ratings for these loads, picked from the catalog's range.

    The chain's losses depend on the ratings picked, so `compile` recomputes the loads with the parts this
    returns and sizes the chain with exactly these units.
    """
    from dataclasses import replace

    topology = site_topology(site)
    pf, target = parts.economics.power_factor, parts.limits.transformer_loading_min_fraction
    shares = _hall_shares(halls)
    non_it = loads.mechanical_kw + loads.misc_kw
    options = parts.mv_lv_options or (parts.mv_lv,)
    if parts.dc:
        mv_lv = size_blocks(options, [non_it / pf], "N" if topology == "N" else "N+1", target).unit
    else:
        kva = (loads.it_kw + loads.busway_loss_kw + loads.ups_loss_kw + non_it) / pf
        extra = parts.generator.transfer_switch_cost_usd if parts.generator else 0.0
        mv_lv = size_blocks(options, [s * kva for s in shares], topology, target, extra).unit
    substation = parts.substation
    if substation is not None:
        red = "N" if topology == "N" else "N+1"
        substation = size_blocks(
            parts.substation_options or (substation,),
            [(loads.facility_kw - loads.substation_loss_kw) / pf],
            red,
            target,
        ).unit
    return replace(parts, mv_lv=mv_lv, substation=substation)


def power_chain(
    parts: Parts, site: SiteSpec, loads: Loads, halls: list[HallDesign], rack_kw: float
) -> PowerChainDesign:
    """Size the chain with the parts' units for the design-day loads, grid side first in `stages`."""
    topology = site_topology(site)
    family = topology.split(" ")[0]
    pf = parts.economics.power_factor
    limits = parts.limits
    shares = _hall_shares(halls)
    non_it = loads.mechanical_kw + loads.misc_kw
    stages: list[PowerStage] = []
    failures: list[FailureCase] = []

    bus_red = "2N" if family in DUAL_FEED_TOPOLOGIES else "N"
    # a row's busway carries its racks plus their share of the fabric's power (all of IT is on busways)
    it_per_rack_kw = rack_kw * loads.it_kw / max(loads.it_kw - loads.network_kw, 1e-9)
    runs_per_row = math.ceil(site.limits.racks_per_row * it_per_rack_kw / parts.busway.rating_kw - 1e-9)
    runs = sum(h.rows for h in halls) * runs_per_row
    bus_installed = power.installed_units(runs, bus_red)
    stages.append(
        _stage(
            "busway",
            parts.busway.name,
            (runs, bus_installed, runs),
            parts.busway.rating_kw,
            loads.it_kw,
            1.0,
            parts.busway.efficiency,
            loads.busway_loss_kw,
            bus_red,
        )
    )

    ups_kw = loads.it_kw + loads.busway_loss_kw
    if parts.dc and parts.sst is not None:
        block = size_blocks(
            [parts.sst], [s * ups_kw / pf for s in shares], topology, limits.transformer_loading_min_fraction
        )
        stages.append(
            _stage(
                "sst",
                block.unit.name,
                (block.required, block.installed, block.carrying),
                block.unit.rating_mva * 1000,
                ups_kw / pf,
                block.unit.max_loading_fraction,
                block.unit.efficiency,
                loads.sst_loss_kw,
                topology,
            )
        )
        failures.append(_failure("sst", block, block.unit.rating_mva * 1000, topology))
        mech_red = "N" if topology == "N" else "N+1"
        mech = size_blocks([parts.mv_lv], [non_it / pf], mech_red, limits.transformer_loading_min_fraction)
        stages.append(
            _stage(
                "mv_lv_transformer",
                mech.unit.name,
                (mech.required, mech.installed, mech.carrying),
                mech.unit.rating_mva * 1000,
                non_it / pf,
                mech.unit.max_loading_fraction,
                mech.unit.efficiency,
                loads.mv_lv_loss_kw,
                mech_red,
            )
        )
        failures.append(_failure("mv_lv_transformer", mech, mech.unit.rating_mva * 1000, mech_red))
        storage_kw = block.installed * block.unit.rating_mva * 1000 * block.unit.max_loading_fraction
        lv_fault = power.short_circuit_current_ka(
            block.unit.rating_mva * 1000, block.unit.secondary_voltage_v, block.unit.impedance_pct, dc=True
        )
        block_kw = block.unit.rating_mva * 1000 * block.unit.max_loading_fraction * pf
    else:
        mv_lv_kva = (ups_kw + loads.ups_loss_kw + non_it) / pf
        block = size_blocks(
            [parts.mv_lv], [s * mv_lv_kva for s in shares], topology, limits.transformer_loading_min_fraction
        )
        stages.append(
            _stage(
                "mv_lv_transformer",
                block.unit.name,
                (block.required, block.installed, block.carrying),
                block.unit.rating_mva * 1000,
                mv_lv_kva,
                block.unit.max_loading_fraction,
                block.unit.efficiency,
                loads.mv_lv_loss_kw,
                topology,
            )
        )
        failures.append(_failure("mv_lv_transformer", block, block.unit.rating_mva * 1000, topology))
        module, ups = _ups_modules(parts, block, [s * ups_kw for s in shares])
        stages.append(
            _stage(
                "ups",
                module.name,
                (ups.required, ups.installed, ups.carrying),
                module.module_kw,
                ups_kw,
                module.max_loading_fraction,
                module.efficiency,
                loads.ups_loss_kw,
                topology,
            )
        )
        failures.append(_failure("ups", ups, module.module_kw, topology))
        storage_kw = ups.installed * module.module_kw
        lv_fault = power.short_circuit_current_ka(
            block.unit.rating_mva * 1000, block.unit.secondary_voltage_v, block.unit.impedance_pct
        )
        block_kw = block.unit.rating_mva * 1000 * block.unit.max_loading_fraction * pf

    upstream_kw = loads.facility_kw - loads.substation_loss_kw
    mv_fault, grid_sc_mva, service_kv = _substation(
        parts, topology, upstream_kw / pf, loads, stages, failures
    )
    stages.reverse()
    standby = _standby(parts, site, block, shares, upstream_kw, storage_kw, topology, failures)
    return PowerChainDesign(
        grid_mw=site.grid_mw if site.grid_mw is not None else loads.facility_kw / 1000.0,
        facility_power_peak_kw=loads.facility_kw,
        it_power_max_kw=loads.it_kw,
        it_power_nominal_kw=loads.it_kw,
        network_power_kw=loads.network_kw,
        mechanical_power_peak_kw=loads.mechanical_kw,
        misc_power_kw=loads.misc_kw,
        redundancy=topology,
        stages=stages,
        topology=topology,
        blocks=[
            PowerBlocks(
                hall=h,
                block_kw=block_kw,
                load_kw=kva * pf,
                blocks_required=r,
                blocks_installed=i,
                blocks_carrying=c,
            )
            for h, (kva, r, i, c) in enumerate(block.halls)
        ],
        failures=failures,
        standby=standby,
        distribution=_distribution(parts, site, rack_kw, runs_per_row, lv_fault, mv_fault),
        grid=_grid(parts, loads, grid_sc_mva, service_kv, standby.battery_kwh),
    )


def _ups_modules(parts: Parts, block: _Sized, hall_kw: list[float]) -> tuple[Ups, _Sized]:
    """UPS modules per block so that a block's carrying share fits: :math:`m = \\lceil P_{block} / (P_{mod} f_{max}) \\rceil`;
    the module size is the catalog's cheapest for the whole site."""
    best: tuple[tuple[float, float], Ups, _Sized] | None = None
    for module in parts.ups_options or (parts.ups,):
        usable = module.module_kw * module.max_loading_fraction
        per_block = [
            math.ceil(kw / c / usable - 1e-9) if c else 0
            for kw, (_, _, _, c) in zip(hall_kw, block.halls, strict=True)
        ]
        sized = _Sized(
            block.unit,
            [
                (kw, r * m, i * m, c * m)
                for kw, m, (_, r, i, c) in zip(hall_kw, per_block, block.halls, strict=True)
            ],
        )
        key = (sized.installed * module.cost_usd, -module.module_kw)
        if best is None or key < best[0]:
            best = (key, module, sized)
    assert best is not None  # there is always at least the site's UPS
    return best[1], best[2]


def _substation(
    parts: Parts,
    topology: str,
    load_kva: float,
    loads: Loads,
    stages: list[PowerStage],
    failures: list[FailureCase],
) -> tuple[float, float, float]:
    """HV/MV substation (N+1; N for an N site) when the site is above the MV service limit.

    Returns (MV bus fault kA, grid short-circuit MVA at the point of interconnection, service kV).
    """
    limits = parts.limits
    if parts.substation is None:
        fault = (
            limits.mv_grid_short_circuit_mva
            * 1000.0
            / (math.sqrt(3.0) * limits.mv_service_voltage_kv * 1000.0)
        )
        return fault, limits.mv_grid_short_circuit_mva, limits.mv_service_voltage_kv
    red = "N" if topology == "N" else "N+1"
    sub = size_blocks([parts.substation], [load_kva], red, limits.transformer_loading_min_fraction)
    stages.append(
        _stage(
            "substation_transformer",
            sub.unit.name,
            (sub.required, sub.installed, sub.carrying),
            sub.unit.rating_mva * 1000,
            load_kva,
            sub.unit.max_loading_fraction,
            sub.unit.efficiency,
            loads.substation_loss_kw,
            red,
        )
    )
    failures.append(_failure("substation_transformer", sub, sub.unit.rating_mva * 1000, red))
    fault = power.short_circuit_current_ka(
        sub.unit.rating_mva * 1000, sub.unit.secondary_voltage_v, sub.unit.impedance_pct
    )
    return fault, limits.hv_grid_short_circuit_mva, limits.hv_service_voltage_kv


def _standby(
    parts: Parts,
    site: SiteSpec,
    block: _Sized,
    shares: list[float],
    facility_kw: float,
    storage_kw: float,
    topology: str,
    failures: list[FailureCase],
) -> StandbyDesign:
    """Generators per block (N+1 per hall for N+1 and 2N), with fuel for the autonomy asked; or none."""
    spec = site.power
    battery_kwh = storage_kw * spec.ups_ride_through_min / 60.0
    gen = parts.generator
    if gen is None:
        return StandbyDesign(
            generators=False,
            generator=None,
            generator_rating_kw=0.0,
            generators_installed=0,
            generators_carrying=0,
            generator_load_kw=0.0,
            fuel_l=0.0,
            fuel_autonomy_h=0.0,
            transfer_switches=0,
            ups_ride_through_min=spec.ups_ride_through_min,
            battery_kwh=battery_kwh,
        )
    best: tuple[tuple[float, float], Generator, _Sized] | None = None
    for option in parts.generator_options or (gen,):
        sized = _generators(option, block, shares, facility_kw, topology)
        key = (
            sized.installed * option.cost_usd + block.installed * option.transfer_switch_cost_usd,
            -option.rating_kw,
        )
        if best is None or key < best[0]:
            best = (key, option, sized)
    assert best is not None  # there is always at least the site's generator
    _, gen, sized = best
    gen_topology = "N+1" if topology in ("N+1", "2N") else topology
    failures.append(_failure("generator", sized, gen.rating_kw, gen_topology))
    return StandbyDesign(
        generators=True,
        generator=gen.name,
        generator_rating_kw=gen.rating_kw,
        generators_installed=sized.installed,
        generators_carrying=sized.carrying,
        generator_load_kw=facility_kw,
        fuel_l=power.fuel_l(facility_kw, spec.fuel_autonomy_h, gen.fuel_l_per_kwh),
        fuel_autonomy_h=spec.fuel_autonomy_h,
        transfer_switches=block.installed,
        ups_ride_through_min=spec.ups_ride_through_min,
        battery_kwh=battery_kwh,
    )


def _generators(
    gen: Generator, block: _Sized, shares: list[float], facility_kw: float, topology: str
) -> _Sized:
    """Generators per hall: per block for N, DR and BR; N+1 per hall beside N+1 and 2N UPS."""
    usable = gen.rating_kw * gen.max_loading_fraction
    per_hall = []
    for share, (_, required, installed, carrying) in zip(shares, block.halls, strict=True):
        load = share * facility_kw
        if topology in ("N+1", "2N"):
            need = math.ceil(load / usable - 1e-9)
            per_hall.append((load, need, need + 1, need))
        else:
            per_block = math.ceil(load / max(carrying, 1) / usable - 1e-9)
            per_hall.append((load, required * per_block, installed * per_block, carrying * per_block))
    return _Sized(block.unit, per_hall)


def _distribution(
    parts: Parts, site: SiteSpec, rack_kw: float, runs_per_row: int, lv_fault_ka: float, mv_fault_ka: float
) -> DistributionDesign:
    """The most loaded busway run of a full row, its voltage drop and tap-offs, and the fault levels."""
    b, limits, pf = parts.busway, parts.limits, parts.economics.power_factor
    dc = b.kind == "dc"
    row_kw = site.limits.racks_per_row * rack_kw
    run_current = power.line_current_a(row_kw / max(runs_per_row, 1), b.voltage_v, pf, dc)
    row_m = site.limits.racks_per_row * limits.rack_pitch_m
    length = limits.busway_feed_length_m + row_m / 2.0
    rack_current = power.line_current_a(rack_kw, b.voltage_v, pf, dc)
    taps = max(1, math.ceil(rack_current / b.tap_off_a - 1e-9))
    return DistributionDesign(
        kind="dc_800v" if dc else "ac",
        busway=b.name,
        voltage_v=b.voltage_v,
        run_current_a=run_current,
        ampacity_a=b.ampacity_a,
        run_length_m=limits.busway_feed_length_m + row_m,
        voltage_drop_pct=power.busway_voltage_drop_pct(
            run_current, length, b.resistance_mohm_per_m, b.reactance_mohm_per_m, b.voltage_v, pf, dc
        ),
        rack_current_a=rack_current,
        tap_offs_per_rack=taps,
        tap_off_current_a=rack_current / taps,
        tap_off_rating_a=b.tap_off_a,
        lv_fault_ka=lv_fault_ka,
        lv_interrupting_ka=power.interrupting_rating_ka(lv_fault_ka, limits.lv_interrupting_ratings_ka),
        mv_fault_ka=mv_fault_ka,
        mv_interrupting_ka=power.interrupting_rating_ka(mv_fault_ka, limits.mv_interrupting_ratings_ka),
    )


def _grid(
    parts: Parts, loads: Loads, short_circuit_mva: float, service_kv: float, storage_kwh: float
) -> GridDesign:
    """What the point of interconnection sees: strength, harmonics, power factor, smoothed load swings."""
    limits, pf = parts.limits, parts.economics.power_factor
    load_kva = loads.facility_kw / pf
    swing_kw = limits.load_swing_fraction * loads.it_kw
    window_s, ramp = power.smoothed_ramp_fraction_per_min(swing_kw, storage_kwh, loads.facility_kw)
    return GridDesign(
        service="hv" if parts.substation is not None else "mv",
        voltage_kv=service_kv,
        short_circuit_mva=short_circuit_mva,
        power_factor=pf,
        current_thd_pct=parts.ups.current_thd_pct,
        isc_to_load_ratio=short_circuit_mva * 1000.0 / load_kva,
        voltage_thd_pct=power.voltage_thd_pct(
            parts.ups.current_thd_pct, load_kva, short_circuit_mva * 1000.0
        ),
        load_swing_kw=swing_kw,
        storage_kwh=storage_kwh,
        smoothing_window_s=window_s,
        ramp_fraction_per_min=ramp,
        load_loss_mw=loads.facility_kw / 1000.0,
    )
