"""Layout: how many NVLink domains, racks, scalable units and halls a power budget holds.

Counts only; whole NVLink domains always. Powers in kW.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokenfab.blueprint import cooling as cool
from tokenfab.blueprint.design import HallDesign, RackDesign

if TYPE_CHECKING:
    from tokenfab.blueprint.parts import Parts
    from tokenfab.catalog.models import System
    from tokenfab.spec import SiteSpec


def nvlink_domains_for_power(it_power_kw: float, rack_power_max_kw: float, domains_per_rack: int) -> int:
    """Whole NVLink domains that fit an IT power budget, each provisioned at its share of rack power.

    .. math:: D = \\lfloor P_{IT} / (P_{rack,max} / d_{rack}) \\rfloor
    """
    return math.floor(it_power_kw / (rack_power_max_kw / domains_per_rack) + 1e-9)


def racks_for_domains(domains: int, domains_per_rack: int) -> int:
    """:math:`R = \\lceil D / d_{rack} \\rceil` (a node-scale rack may be partly filled)."""
    return math.ceil(domains / domains_per_rack)


def racks_per_scalable_unit(nodes_per_su: int, nodes_per_rack: int) -> int:
    """:math:`R_{SU} = \\lceil n_{SU} / n_{rack} \\rceil`; 8 for a GB200 SU (144 trays / 18)."""
    return math.ceil(nodes_per_su / nodes_per_rack)


def split_into_scalable_units(racks: int, racks_per_su: int) -> list[int]:
    """Racks per SU: whole SUs, and the remainder in a last, partly filled SU."""
    full, rest = divmod(racks, racks_per_su)
    return [racks_per_su] * full + ([rest] if rest else [])


def scalable_units_per_hall(hall_it_kw_max: float, racks_per_su: int, rack_power_max_kw: float) -> int:
    """Whole SUs a hall of at most `hall_it_kw_max` holds (at least one):
    :math:`\\max(1, \\lfloor P_{hall} / (R_{SU} P_{rack}) \\rfloor)`."""
    return max(1, math.floor(hall_it_kw_max / (racks_per_su * rack_power_max_kw) + 1e-9))


def balanced_sizes(items: int, groups: int) -> list[int]:
    """`items` split into `groups` groups whose sizes differ by at most one, larger groups first."""
    base, extra = divmod(items, groups)
    return [base + 1] * extra + [base] * (groups - extra)


def split_into_halls(su_racks: list[int], sus_per_hall: int) -> list[list[int]]:
    """Groups of SUs per hall, in order: as few halls as hold `sus_per_hall` SUs each, balanced so that no
    hall holds more than one SU more than another (no near-empty last hall).

    .. math:: n_{hall} = \\lceil n_{SU} / s \\rceil, \\quad s_h \\in \\{\\lfloor n_{SU}/n_{hall} \\rfloor, \\lceil n_{SU}/n_{hall} \\rceil\\}
    """
    if not su_racks:
        return []
    halls = math.ceil(len(su_racks) / sus_per_hall)
    groups, start = [], 0
    for size in balanced_sizes(len(su_racks), halls):
        groups.append(su_racks[start : start + size])
        start += size
    return groups


def rows_for_racks(su_racks: list[int], racks_per_row: int) -> int:
    """Rows of a hall: each SU starts a new row, :math:`\\sum_{su} \\lceil R_{su} / R_{row} \\rceil`."""
    return sum(math.ceil(r / racks_per_row) for r in su_racks)


def white_space_m2(racks: int, m2_per_rack: float) -> float:
    """Floor for racks and their aisles: :math:`A = R \\times a_{rack}`."""
    return racks * m2_per_rack


def air_limited_white_space_m2(air_heat_kw: float, air_capacity_kw_per_m2: float) -> float:
    """Floor an air system needs to remove a hall's air-side heat: :math:`A = Q_{air} / q_{air}`.

    An air system (fan walls, CRAHs) removes a bounded heat flux per m² of white space; a hall whose
    air-side heat exceeds that over its rack floor needs more floor.
    """
    return air_heat_kw / air_capacity_kw_per_m2


def floor_load_kg_per_m2(rack_weight_kg: float, rack_footprint_m2: float, m2_per_rack: float) -> float:
    """Distributed floor load of a populated hall: the rack's weight over its share of the floor.

    .. math:: w = W_{rack} / a_{rack}

    (a rack's point load on its own footprint, :math:`W_{rack}/A_{rack}`, is checked separately).
    """
    return rack_weight_kg / m2_per_rack


@dataclass(frozen=True)
class SiteCounts:
    """Whole-site counts: NVLink domains, racks, nodes, GPUs, racks per SU, and SUs grouped into halls."""

    domains: int
    domains_per_rack: int
    racks: int
    nodes: int
    gpus: int
    su_racks: list[int]
    hall_groups: list[list[int]]

    @property
    def fill(self) -> float:
        """Share of rack slots holding a domain (a node-scale site's last rack may be part-filled)."""
        return self.domains / (self.racks * self.domains_per_rack)


def site_counts(system: System, domains: int, hall_it_mw_max: float) -> SiteCounts:
    """Racks, SUs and halls for `domains` NVLink domains of `system`, halls at most `hall_it_mw_max`."""
    racks = racks_for_domains(domains, system.domains_per_rack)
    racks_per_su = racks_per_scalable_unit(system.nodes_per_scalable_unit, system.nodes_per_rack)
    su_racks = split_into_scalable_units(racks, racks_per_su)
    sus_per_hall = scalable_units_per_hall(hall_it_mw_max * 1000.0, racks_per_su, system.rack_power_max_kw)
    return SiteCounts(
        domains=domains,
        domains_per_rack=system.domains_per_rack,
        racks=racks,
        nodes=domains * system.gpus_per_nvlink_domain // system.gpus_per_node,
        gpus=domains * system.gpus_per_nvlink_domain,
        su_racks=su_racks,
        hall_groups=split_into_halls(su_racks, sus_per_hall),
    )


def hall_designs(parts: Parts, site: SiteSpec, counts: SiteCounts, rack: RackDesign) -> list[HallDesign]:
    """Each hall's racks, rows, heat, CDUs and floor.

    Racks are full but the site's last one, so each hall holds whole NVLink domains (certify NET-003). The
    hall's air system removes at most `air_system_capacity_kw_per_m2` of white space, so air-heavy racks
    spread out (certify COOL-009).
    """
    system, econ = parts.system, parts.economics
    redundancy = site.redundancy.cooling.value
    halls: list[HallDesign] = []
    domains_left = counts.domains
    for hall_index, group in enumerate(counts.hall_groups):
        hall_racks = sum(group)
        hall_domains = min(hall_racks * system.domains_per_rack, domains_left)
        domains_left -= hall_domains
        hall_fill = hall_domains / (hall_racks * system.domains_per_rack)
        hall_it = hall_racks * rack.power_max_kw * hall_fill
        liquid = hall_racks * rack.liquid_heat_kw * hall_fill
        flow = hall_racks * rack.coolant_flow_lpm * hall_fill
        cdu, required = cool.cheapest_cdu(parts.cdus, liquid, flow, redundancy)
        installed = cool.units_with_redundancy(required, redundancy)
        white = max(
            white_space_m2(hall_racks, econ.hall_white_space_m2_per_rack),
            air_limited_white_space_m2(hall_it - liquid, econ.air_system_capacity_kw_per_m2),
        )
        halls.append(
            HallDesign(
                index=hall_index,
                su_racks=group,
                racks=hall_racks,
                gpus=hall_domains * system.gpus_per_nvlink_domain,
                rows=rows_for_racks(group, site.limits.racks_per_row),
                racks_per_row=site.limits.racks_per_row,
                it_power_max_kw=hall_it,
                liquid_heat_kw=liquid,
                air_heat_kw=hall_it - liquid,
                cdu_model=cdu.name if cdu else None,
                cdus_required=required,
                cdus_installed=installed,
                coolant_flow_lpm=flow,
                white_space_m2=white,
                area_m2=white + installed * (cdu.footprint_m2 if cdu else 0.0),
                floor_load_kg_per_m2=floor_load_kg_per_m2(
                    system.rack_weight_kg, system.rack_footprint_m2, econ.hall_white_space_m2_per_rack
                ),
                air_system_capacity_kw=white * econ.air_system_capacity_kw_per_m2,
                fire_detection=parts.standards.fire_detection,
                fire_suppression=parts.standards.fire_suppression,
                leak_detection=parts.standards.leak_detection if liquid > 0 else "",
            )
        )
    return halls
