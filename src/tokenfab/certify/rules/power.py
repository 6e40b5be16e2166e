"""Power rules (``PWR``): racks, power chain stages, grid, energy balance, PUE."""

from __future__ import annotations

from tokenfab.blueprint import power
from tokenfab.blueprint.design import Design
from tokenfab.catalog.load import Catalog
from tokenfab.catalog.models import Switch, Transceiver
from tokenfab.certify.check import finding, rule
from tokenfab.certify.rules._common import (
    RELATIVE_TOLERANCE,
    _differs,
    _economics,
    _entry,
    _exceeds,
    _sites,
    _stage,
    _stage_carrying,
)


@rule(
    "PWR-001",
    "power",
    "rack power within its power shelves",
    "error",
    "A rack that draws more than its power shelves deliver trips or throttles its GPUs at full load.",
    "P_rack,max ≤ P_shelves",
    kind="engineering",
    basis="vendor rating: the system's power shelves (catalog systems)",
)
def rack_power_within_shelves(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        r = site.rack
        if _exceeds(r.power_max_kw, r.power_shelf_capacity_kw):
            yield finding(
                "PWR-001",
                f"{path}.rack",
                r.power_max_kw,
                r.power_shelf_capacity_kw,
                "kW",
                f"every {r.system} rack draws up to {r.power_max_kw:.1f} kW but its power shelves deliver {r.power_shelf_capacity_kw:.1f} kW",
            )


@rule(
    "PWR-002",
    "power",
    "rack power within its busbar",
    "error",
    "The in-rack busbar or PDU overheats when carried above its rating.",
    "P_rack,max ≤ P_busbar",
    kind="engineering",
    basis="vendor rating: the rack busbar (catalog systems)",
)
def rack_power_within_busbar(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        r = site.rack
        if _exceeds(r.power_max_kw, r.busbar_limit_kw):
            yield finding(
                "PWR-002",
                f"{path}.rack",
                r.power_max_kw,
                r.busbar_limit_kw,
                "kW",
                f"rack draw {r.power_max_kw:.1f} kW exceeds the busbar rating {r.busbar_limit_kw:.1f} kW",
            )


@rule(
    "PWR-003",
    "power",
    "rack nominal power within its provisioned power",
    "warning",
    "Power is provisioned for the rack's maximum; an expected draw above it means the provisioning is short.",
    "P_rack,nominal ≤ P_rack,max",
    kind="consistency",
    basis="the design's own numbers: nominal against provisioned rack power",
)
def rack_nominal_within_max(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        r = site.rack
        if _exceeds(r.power_nominal_kw, r.power_max_kw):
            yield finding(
                "PWR-003",
                f"{path}.rack",
                r.power_nominal_kw,
                r.power_max_kw,
                "kW",
                f"nominal rack draw {r.power_nominal_kw:.1f} kW is above the provisioned {r.power_max_kw:.1f} kW",
            )


def _stage_loading(design: Design, rule_id: str, stage_names: tuple[str, ...]):
    for _, site, path in _sites(design):
        for stage in site.power.stages:
            if stage.stage not in stage_names:
                continue
            carrying = _stage_carrying(stage)
            loading = power.loading_fraction(
                stage.load_kw, stage.units_installed, stage.unit_rating_kw, stage.redundancy, carrying
            )
            if _exceeds(loading, stage.max_loading_fraction):
                yield finding(
                    rule_id,
                    f"{path}.power.stage[{stage.stage}]",
                    loading,
                    stage.max_loading_fraction,
                    "fraction",
                    f"{stage.load_kw:,.0f} kW(kVA) on {carrying} carrying {stage.equipment} of {stage.unit_rating_kw:,.0f} "
                    f"is {loading:.0%} loaded, above the {stage.max_loading_fraction:.0%} limit ({stage.redundancy})",
                )


@rule(
    "PWR-004",
    "power",
    "transformer loading within its limit",
    "error",
    "Transformers loaded past their limit age fast and leave no room to carry a failed unit's load.",
    "S / (N_carry · S_unit) ≤ f_max",
    kind="engineering",
    basis="equipment loading limit per stage (catalog economics, IEEE C57.91 loading practice)",
)
def transformer_loading(design: Design, catalog: Catalog):
    yield from _stage_loading(design, "PWR-004", ("substation_transformer", "mv_lv_transformer"))


@rule(
    "PWR-005",
    "power",
    "UPS loading within its limit",
    "error",
    "A UPS run above its loading limit cannot ride through a module failure or a load step.",
    "P / (N_carry · P_module) ≤ f_max",
    kind="engineering",
    basis="equipment loading limit per stage (catalog economics, UPS vendor loading practice)",
)
def ups_loading(design: Design, catalog: Catalog):
    yield from _stage_loading(design, "PWR-005", ("ups",))


@rule(
    "PWR-006",
    "power",
    "busway runs carry their row",
    "error",
    "A busway run loaded past its rating trips its breaker and drops a row of racks.",
    "R_row · P_rack ≤ n_runs/row · P_busway",
    kind="engineering",
    basis="busway rating (catalog power equipment)",
)
def busway_carries_row(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        stage = _stage(site, "busway")
        rows = sum(h.rows for h in site.halls)
        if stage is None or rows == 0:
            continue
        rack_kw = site.rack.power_max_kw  # a row is of full racks
        runs_per_row = stage.units_required / rows
        for h, hall in enumerate(site.halls):
            row_racks = min(hall.racks_per_row, max(hall.su_racks, default=0))
            row_kw = row_racks * rack_kw
            capacity = runs_per_row * stage.unit_rating_kw
            if _exceeds(row_kw, capacity):
                yield finding(
                    "PWR-006",
                    f"{path}.hall[{h}]",
                    row_kw,
                    capacity,
                    "kW",
                    f"a row of {row_racks} racks draws {row_kw:,.0f} kW but its {runs_per_row:g} busway run(s) carry {capacity:,.0f} kW",
                )


@rule(
    "PWR-007",
    "power",
    "grid connection not exceeded",
    "error",
    "Drawing more than the grid connection allows breaches the interconnection agreement and trips the feed.",
    "P_facility,peak ≤ P_grid",
    kind="engineering",
    basis="the grid connection the spec states (interconnection agreement)",
)
def grid_not_exceeded(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        grid_kw = site.power.grid_mw * 1000.0
        if _exceeds(site.power.facility_power_peak_kw, grid_kw):
            yield finding(
                "PWR-007",
                f"{path}.power",
                site.power.facility_power_peak_kw,
                grid_kw,
                "kW",
                f"design-day facility power {site.power.facility_power_peak_kw:,.0f} kW exceeds the {grid_kw:,.0f} kW grid connection",
            )


@rule(
    "PWR-008",
    "power",
    "facility power balances",
    "error",
    "Facility power that is not IT + mechanical + misc + losses hides load the grid and the PUE must carry.",
    "P_facility = P_IT + P_mech + P_misc + Σ P_loss",
    kind="consistency",
    basis="the design's own numbers: energy balance of the stated powers",
)
def facility_power_balances(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        p = site.power
        derived = (
            p.it_power_max_kw
            + p.mechanical_power_peak_kw
            + p.misc_power_kw
            + sum(s.loss_kw for s in p.stages)
        )
        if _differs(p.facility_power_peak_kw, derived):
            yield finding(
                "PWR-008",
                f"{path}.power",
                p.facility_power_peak_kw,
                derived,
                "kW",
                f"facility power {p.facility_power_peak_kw:,.1f} kW but IT + mechanical + misc + losses = {derived:,.1f} kW",
            )
        if _differs(p.mechanical_power_peak_kw, site.cooling.mechanical_power_design_kw):
            yield finding(
                "PWR-008",
                f"{path}.power",
                p.mechanical_power_peak_kw,
                site.cooling.mechanical_power_design_kw,
                "kW",
                "the power chain's mechanical load differs from the cooling plant's design-day power",
            )


@rule(
    "PWR-009",
    "power",
    "power stage loads follow the chain",
    "error",
    "Each stage must carry what the stage below it delivers plus that stage's loss, or it is sized for a load that is not there.",
    "P_busway = P_IT; P_UPS = P_IT + L_busway; S_MV/LV = (P_UPS + L_UPS + P_mech + P_misc)/cosφ; S_sub = (… + L_MV/LV)/cosφ; "
    "800 V DC: S_SST = (P_IT + L_busway)/cosφ, S_MV/LV = (P_mech + P_misc)/cosφ",
    kind="consistency",
    basis="the compiler's own rule: stage loads chained as blueprint.power_chain builds them",
)
def stage_loads_follow_chain(design: Design, catalog: Catalog):
    economics = _economics(design, catalog)
    pf = economics.power_factor if economics else 1.0
    for _, site, path in _sites(design):
        p = site.power
        stages = {s.stage: s for s in p.stages}
        expected = _expected_stages(site)
        missing = [n for n in expected if n not in stages]
        if missing:
            yield finding(
                "PWR-009",
                f"{path}.power",
                ", ".join(missing),
                ", ".join(expected),
                "",
                f"the power chain lacks stage(s) {', '.join(missing)}",
            )
            continue
        busway, mv_lv = stages["busway"], stages["mv_lv_transformer"]
        non_it = p.mechanical_power_peak_kw + p.misc_power_kw
        derived = {"busway": p.it_power_max_kw}
        if "sst" in stages:
            derived["sst"] = power.apparent_power_kva(p.it_power_max_kw + busway.loss_kw, pf)
            derived["mv_lv_transformer"] = power.apparent_power_kva(non_it, pf)
            upstream = p.it_power_max_kw + busway.loss_kw + stages["sst"].loss_kw + non_it + mv_lv.loss_kw
        else:
            ups = stages["ups"]
            derived["ups"] = p.it_power_max_kw + busway.loss_kw
            derived["mv_lv_transformer"] = power.apparent_power_kva(
                p.it_power_max_kw + busway.loss_kw + ups.loss_kw + non_it, pf
            )
            upstream = p.it_power_max_kw + busway.loss_kw + ups.loss_kw + non_it + mv_lv.loss_kw
        if "substation_transformer" in stages:
            derived["substation_transformer"] = power.apparent_power_kva(upstream, pf)
        for name, load in derived.items():
            if _differs(stages[name].load_kw, load):
                yield finding(
                    "PWR-009",
                    f"{path}.power.stage[{name}]",
                    stages[name].load_kw,
                    load,
                    "kW",
                    f"{name} states a load of {stages[name].load_kw:,.1f} but the stages below deliver {load:,.1f}",
                )


def _expected_stages(site) -> tuple[str, ...]:
    """Stages a site's chain must have: an SST instead of a UPS with 800 V DC; no substation on an MV service."""
    grid, dist = site.power.grid, site.power.distribution
    middle = "sst" if dist is not None and dist.kind == "dc_800v" else "ups"
    names = ("mv_lv_transformer", middle, "busway")
    return names if grid is not None and grid.service == "mv" else ("substation_transformer", *names)


@rule(
    "PWR-010",
    "power",
    "stage losses follow efficiency",
    "error",
    "Understated conversion losses understate facility power, heat in the electrical rooms and PUE.",
    "L = P_out (1/η − 1)",
    kind="consistency",
    basis="the compiler's own rule: blueprint.power.stage_loss_kw",
)
def stage_losses_follow_efficiency(design: Design, catalog: Catalog):
    economics = _economics(design, catalog)
    pf = economics.power_factor if economics else 1.0
    for _, site, path in _sites(design):
        for stage in site.power.stages:
            real_kw = (
                stage.load_kw * pf
                if stage.stage.endswith("transformer") or stage.stage == "sst"
                else stage.load_kw
            )
            derived = power.stage_loss_kw(real_kw, stage.efficiency)
            if _differs(stage.loss_kw, derived, 0.01):
                yield finding(
                    "PWR-010",
                    f"{path}.power.stage[{stage.stage}]",
                    stage.loss_kw,
                    derived,
                    "kW",
                    f"{stage.stage} loss {stage.loss_kw:,.1f} kW but {real_kw:,.0f} kW at η={stage.efficiency:.3f} loses {derived:,.1f} kW",
                )


@rule(
    "PWR-011",
    "power",
    "hall IT power covers its racks",
    "error",
    "A hall provisioned for less than its racks draw overloads its power blocks at full load.",
    "P_hall ≥ (G_hall / G_rack) · P_rack,max",
    kind="consistency",
    basis="the design's own numbers: hall power against its racks",
)
def hall_power_covers_racks(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        for h, hall in enumerate(site.halls):
            needed = hall.gpus / site.rack.gpus * site.rack.power_max_kw if site.rack.gpus else 0.0
            if _exceeds(needed, hall.it_power_max_kw * (1 + RELATIVE_TOLERANCE)):
                yield finding(
                    "PWR-011",
                    f"{path}.hall[{h}]",
                    hall.it_power_max_kw,
                    needed,
                    "kW",
                    f"hall provisions {hall.it_power_max_kw:,.0f} kW but its {hall.gpus:,} GPUs' racks draw up to {needed:,.0f} kW",
                )


@rule(
    "PWR-012",
    "power",
    "site IT power is its halls plus the fabric",
    "error",
    "Site IT power feeds the UPS and transformer sizing; if it misses halls or switches those are undersized.",
    "P_IT = Σ P_hall + P_network",
    kind="consistency",
    basis="the design's own numbers: site IT power as the sum of halls and network",
)
def site_it_power_sums(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        derived = sum(h.it_power_max_kw for h in site.halls) + site.power.network_power_kw
        if _differs(site.power.it_power_max_kw, derived):
            yield finding(
                "PWR-012",
                f"{path}.power",
                site.power.it_power_max_kw,
                derived,
                "kW",
                f"site IT power {site.power.it_power_max_kw:,.1f} kW but halls + network = {derived:,.1f} kW",
            )


@rule(
    "PWR-013",
    "power",
    "network power matches the networks' parts",
    "error",
    "Switch and optics power is IT load; leaving it out undersizes power and cooling.",
    "P_network = Σ_items n · P_item (catalog draw); compute switches ≥ Σ tiers",
    kind="consistency",
    basis="the design's own numbers: network power from the catalog's switch and module draws",
)
def network_power_matches_fabric(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        f = site.fabric
        derived, what = _network_draw_kw(f, catalog)
        stated = site.power.network_power_kw
        if _differs(stated, derived) or _differs(f.switch_power_kw + f.transceiver_power_kw, derived):
            yield finding(
                "PWR-013",
                f"{path}.power",
                stated,
                derived,
                "kW",
                f"network power {stated:,.1f} kW but {what} draw {derived:,.1f} kW",
            )


def _network_draw_kw(f, catalog: Catalog) -> tuple[float, str]:
    """Draw of every counted network part at the catalog's figure (the design's own where the catalog lacks it)."""
    if not f.items:  # a design written before network items: the compute fabric alone
        switch = _entry(catalog, "switches", f.switch, Switch)
        xcvr = _entry(catalog, "transceivers", f.transceiver, Transceiver)
        switches = sum(t.switches for t in f.tiers)
        switch_kw = switches * switch.maximum_draw_w / 1000.0 if switch else f.switch_power_kw
        xcvr_kw = f.transceivers * xcvr.maximum_draw_w / 1000.0 if xcvr else f.transceiver_power_kw
        return switch_kw + xcvr_kw, f"{switches:,} × {f.switch} and {f.transceivers:,} × {f.transceiver}"
    total_w = 0.0
    for item in f.items:
        models: dict[str, type[Switch | Transceiver]] = {"switch": Switch, "transceiver": Transceiver}
        model = models.get(item.kind)
        entry = (
            _entry(catalog, "switches" if item.kind == "switch" else "transceivers", item.item, model)
            if model
            else None
        )
        total_w += item.count * (entry.maximum_draw_w if entry else item.draw_w)
    switches = sum(i.count for i in f.items if i.kind == "switch")
    modules = sum(i.count for i in f.items if i.kind == "transceiver")
    return (
        total_w / 1000.0,
        f"{switches:,} switches and {modules:,} modules of {len({i.network for i in f.items})} networks",
    )


@rule(
    "PWR-014",
    "power",
    "PUE is facility over IT power",
    "error",
    "PUE is the headline efficiency figure operators buy on; it must follow from the stated powers.",
    "PUE = P_facility / P_IT ≥ 1",
    kind="consistency",
    basis="the design's own numbers: PUE as facility over IT power",
)
def pue_consistent(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        it_kw = site.power.it_power_max_kw
        if it_kw <= 0:
            continue
        derived = site.power.facility_power_peak_kw / it_kw
        for label, stated in (
            ("cooling.pue_design", site.cooling.pue_design),
            ("metrics.pue_design", site.metrics.pue_design),
        ):
            if _differs(stated, derived):
                yield finding(
                    "PWR-014",
                    f"{path}.{label}",
                    stated,
                    derived,
                    "",
                    f"{label} {stated:.4f} but facility/IT = {derived:.4f}",
                )
        for label, stated in (
            ("cooling.pue_design", site.cooling.pue_design),
            ("cooling.pue_annual", site.cooling.pue_annual),
        ):
            if stated < 1.0:
                yield finding(
                    "PWR-014",
                    f"{path}.{label}",
                    stated,
                    1.0,
                    "",
                    f"{label} {stated:.4f} is below 1, which no facility can reach",
                )
