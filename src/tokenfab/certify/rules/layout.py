"""Layout rules (``LAY``): scalable units, rows, halls, floor."""

from __future__ import annotations

import math

from tokenfab.blueprint import layout
from tokenfab.blueprint.design import Design
from tokenfab.catalog.load import Catalog
from tokenfab.catalog.models import Cdu, System
from tokenfab.certify.check import finding, rule
from tokenfab.certify.rules._common import (
    _economics,
    _entry,
    _exceeds,
    _facility_limits,
    _sites,
    _standards,
)


@rule(
    "LAY-001",
    "layout",
    "scalable units no larger than the reference SU",
    "error",
    "An SU with more racks than its leaf switches were sized for leaves racks without leaf ports.",
    "R_su ≤ ⌈n_SU,nodes / n_rack,nodes⌉",
    kind="consistency",
    basis="the compiler's own rule: blueprint.layout.racks_per_scalable_unit from the reference SU",
)
def su_size(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        system = _entry(catalog, "systems", site.rack.system, System)
        if system is None:
            continue
        limit = layout.racks_per_scalable_unit(system.nodes_per_scalable_unit, system.nodes_per_rack)
        for h, hall in enumerate(site.halls):
            for s, racks in enumerate(hall.su_racks):
                if racks > limit:
                    yield finding(
                        "LAY-001",
                        f"{path}.hall[{h}].su[{s}]",
                        racks,
                        limit,
                        "racks",
                        f"scalable unit has {racks} racks; a {system.name} SU holds {limit}",
                    )


@rule(
    "LAY-002",
    "layout",
    "rack and SU counts add up",
    "error",
    "Counts that do not add up mean racks that are priced, powered or cooled twice or not at all.",
    "R_hall = Σ R_su; R_site = Σ R_hall; n_SU, n_hall as laid out",
    kind="consistency",
    basis="the design's own numbers: rack and SU counts",
)
def counts_add_up(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        for h, hall in enumerate(site.halls):
            if hall.racks != sum(hall.su_racks):
                yield finding(
                    "LAY-002",
                    f"{path}.hall[{h}]",
                    hall.racks,
                    sum(hall.su_racks),
                    "racks",
                    f"hall states {hall.racks} racks; its SUs hold {sum(hall.su_racks)}",
                )
        m = site.metrics
        derived = {
            "racks": sum(h.racks for h in site.halls),
            "halls": len(site.halls),
            "scalable_units": sum(len(h.su_racks) for h in site.halls),
        }
        for name, value in derived.items():
            if getattr(m, name) != value:
                yield finding(
                    "LAY-002",
                    f"{path}.metrics.{name}",
                    getattr(m, name),
                    value,
                    name,
                    f"site states {getattr(m, name):,} {name.replace('_', ' ')}; the halls hold {value:,}",
                )


@rule(
    "LAY-003",
    "layout",
    "rows hold the racks",
    "error",
    "Racks that do not fit the rows have no place, no busway and no containment.",
    "n_rows ≥ Σ_su ⌈R_su / R_row⌉; R_row ≤ R_row,limit",
    kind="consistency",
    basis="the compiler's own rule: blueprint.layout.rows_for_racks and the spec's row limit",
)
def rows_hold_racks(design: Design, catalog: Catalog):
    for i, site, path in _sites(design):
        row_limit = design.spec.sites[i].limits.racks_per_row if i < len(design.spec.sites) else None
        for h, hall in enumerate(site.halls):
            needed = (
                layout.rows_for_racks(hall.su_racks, hall.racks_per_row)
                if hall.racks_per_row > 0
                else hall.racks
            )
            if hall.rows < needed:
                yield finding(
                    "LAY-003",
                    f"{path}.hall[{h}]",
                    hall.rows,
                    needed,
                    "rows",
                    f"{hall.racks} racks in SUs of {hall.su_racks[:1]}… at {hall.racks_per_row} per row need {needed} rows; the hall has {hall.rows}",
                )
            if row_limit is not None and hall.racks_per_row > row_limit:
                yield finding(
                    "LAY-003",
                    f"{path}.hall[{h}]",
                    hall.racks_per_row,
                    row_limit,
                    "racks/row",
                    f"rows of {hall.racks_per_row} racks exceed the spec's limit of {row_limit}",
                )


@rule(
    "LAY-004",
    "layout",
    "hall floor loading within the slab rating",
    "error",
    "A floor loaded beyond its rating cracks or deflects; NVL72 racks weigh 1.4 t each.",
    "w = R · W_rack / A_white ≤ w_max",
    kind="engineering",
    basis="slab rating (catalog economics: floor load limit)",
)
def floor_loading(design: Design, catalog: Catalog):
    economics = _economics(design, catalog)
    if economics is None:
        return
    limit = economics.floor_load_limit_kg_per_m2
    for _, site, path in _sites(design):
        for h, hall in enumerate(site.halls):
            derived = (
                hall.racks * site.rack.weight_kg / hall.white_space_m2
                if hall.white_space_m2 > 0
                else math.inf
            )
            load = max(derived, hall.floor_load_kg_per_m2)
            if _exceeds(load, limit):
                yield finding(
                    "LAY-004",
                    f"{path}.hall[{h}]",
                    load,
                    limit,
                    "kg/m²",
                    f"{hall.racks} racks of {site.rack.weight_kg:,.0f} kg on {hall.white_space_m2:,.0f} m² load the floor at "
                    f"{load:,.0f} kg/m², above its {limit:,.0f} kg/m² rating",
                )


@rule(
    "LAY-005",
    "layout",
    "white space holds the racks and CDUs",
    "error",
    "A hall without room for its racks, aisles and CDUs cannot be built as drawn.",
    "A_white ≥ R · a_rack; A_hall ≥ A_white + n_CDU · A_CDU",
    kind="consistency",
    basis="the compiler's own rule: white space per rack (catalog economics)",
)
def white_space_holds_racks(design: Design, catalog: Catalog):
    economics = _economics(design, catalog)
    if economics is None:
        return
    for _, site, path in _sites(design):
        for h, hall in enumerate(site.halls):
            needed = layout.white_space_m2(hall.racks, economics.hall_white_space_m2_per_rack)
            if _exceeds(needed, hall.white_space_m2):
                yield finding(
                    "LAY-005",
                    f"{path}.hall[{h}]",
                    hall.white_space_m2,
                    needed,
                    "m²",
                    f"{hall.racks} racks with their aisles need {needed:,.0f} m²; the hall has {hall.white_space_m2:,.0f} m²",
                )
            cdu = _entry(catalog, "cdus", hall.cdu_model, Cdu)
            area = hall.white_space_m2 + hall.cdus_installed * (cdu.footprint_m2 if cdu else 0.0)
            if _exceeds(area, hall.area_m2):
                yield finding(
                    "LAY-005",
                    f"{path}.hall[{h}]",
                    hall.area_m2,
                    area,
                    "m²",
                    f"white space and {hall.cdus_installed} CDUs need {area:,.1f} m²; the hall is {hall.area_m2:,.1f} m²",
                )


@rule(
    "LAY-006",
    "layout",
    "hall IT power within the hall limit",
    "error",
    "A hall above its IT limit exceeds the power blocks and cooling loop it was designed around.",
    "P_hall ≤ P_hall,max (a hall of one SU may exceed it: warning)",
    kind="consistency",
    basis="the spec's own hall limit, which the compiler splits halls by",
)
def hall_within_limit(design: Design, catalog: Catalog):
    for i, site, path in _sites(design):
        if i >= len(design.spec.sites):
            continue
        limit = design.spec.sites[i].limits.hall_it_mw_max * 1000.0
        for h, hall in enumerate(site.halls):
            if _exceeds(hall.it_power_max_kw, limit):
                single = len(hall.su_racks) <= 1
                yield finding(
                    "LAY-006",
                    f"{path}.hall[{h}]",
                    hall.it_power_max_kw,
                    limit,
                    "kW",
                    f"hall draws {hall.it_power_max_kw:,.0f} kW, above the {limit:,.0f} kW hall limit"
                    + (" (one scalable unit cannot be split)" if single else ""),
                    severity="warning" if single else None,
                )


GRAVITY_M_PER_S2 = 9.80665


@rule(
    "LAY-007",
    "layout",
    "rack point load within the floor's rating",
    "error",
    "A rack's weight sits on its own footprint (and, on an access floor, on four casters); a slab or panel loaded past "
    "its rating cracks or punches through, whatever the hall's average load.",
    "W_rack / A_rack ≤ w_slab; on a raised floor W_rack g / n_feet ≤ F_panel",
    kind="engineering",
    basis="floor ratings (catalog standards: AI-ready slab 500 psf; CISCA heavy-duty access-floor panel, estimates)",
)
def rack_point_load(design: Design, catalog: Catalog):
    std = _standards(catalog)
    if std is None:
        return
    for _, site, path in _sites(design):
        r = site.rack
        on_footprint = r.weight_kg / r.footprint_m2 if r.footprint_m2 > 0 else math.inf
        per_foot_n = r.weight_kg * GRAVITY_M_PER_S2 / std.rack_feet
        for h, hall in enumerate(site.halls):
            if hall.floor.startswith("raised"):
                if _exceeds(per_foot_n, std.raised_floor_concentrated_load_n):
                    yield finding(
                        "LAY-007",
                        f"{path}.hall[{h}]",
                        per_foot_n,
                        std.raised_floor_concentrated_load_n,
                        "N",
                        f"a {r.weight_kg:,.0f} kg rack puts {per_foot_n:,.0f} N on each of its {std.rack_feet} feet; the "
                        f"access-floor panel is rated {std.raised_floor_concentrated_load_n:,.0f} N concentrated",
                    )
            elif _exceeds(on_footprint, std.slab_point_load_kg_per_m2):
                yield finding(
                    "LAY-007",
                    f"{path}.hall[{h}]",
                    on_footprint,
                    std.slab_point_load_kg_per_m2,
                    "kg/m²",
                    f"a {r.weight_kg:,.0f} kg rack on its {r.footprint_m2:.2f} m² footprint loads the slab at "
                    f"{on_footprint:,.0f} kg/m², above its {std.slab_point_load_kg_per_m2:,.0f} kg/m² rating",
                )


@rule(
    "LAY-008",
    "layout",
    "rows within egress length and row power",
    "error",
    "A row longer than the egress limit traps people in a contained aisle; a row drawing more than one row's feeds and "
    "containment carry cannot be powered or cooled as one row.",
    "min(R_row, R_SU) · pitch ≤ ℓ_row,max; min(R_row, R_SU) · P_rack ≤ P_row,max",
    kind="engineering",
    basis="IBC 2021 Table 1006.2.1 common path of egress (100 ft ≈ 30 m); row power per overhead busway space (estimate)",
)
def rows_within_limits(design: Design, catalog: Catalog):
    std, limits = _standards(catalog), _facility_limits(catalog)
    if std is None or limits is None:
        return
    for _, site, path in _sites(design):
        for h, hall in enumerate(site.halls):
            row_racks = min(hall.racks_per_row, max(hall.su_racks, default=0))  # each SU starts a row
            length = row_racks * limits.rack_pitch_m
            if _exceeds(length, std.row_length_max_m):
                yield finding(
                    "LAY-008",
                    f"{path}.hall[{h}]",
                    length,
                    std.row_length_max_m,
                    "m",
                    f"rows of {row_racks} racks at {limits.rack_pitch_m:g} m run {length:,.1f} m, past the "
                    f"{std.row_length_max_m:g} m egress limit",
                )
            row_kw = row_racks * site.rack.power_max_kw
            if _exceeds(row_kw, std.row_power_max_kw):
                yield finding(
                    "LAY-008",
                    f"{path}.hall[{h}]",
                    row_kw,
                    std.row_power_max_kw,
                    "kW",
                    f"a row draws {row_kw:,.0f} kW, more than the {std.row_power_max_kw:,.0f} kW one row is fed for",
                )
