"""NetBox inventory of a design: device types (device-type library YAML) and bulk-import CSV files.

Device types follow the netbox-community device-type library format (validated in the tests against its
JSON schema): the compute node (an NVL72 compute tray or an HGX node), the NVLink switch tray of
rack-scale systems, the scale-out fabric switch, the power shelf and the CDU. Interfaces carry the names
the cables use: ``nic0 …`` on a node (one per rail), ``p1 …`` on a fabric switch (downlinks first).

The CSV files use the column names of NetBox's bulk-import forms (``dcim/forms/bulk_import.py``) and are
imported in this order: manufacturers, device-roles, (device types), sites, locations (one per hall),
racks, power-panels, power-feeds, devices, cables. Names come from `tokenfab.names`.

Mapping: site → Site; hall → Location; rack → Rack; node → Device (role ``compute-node``) placed in its
rack; NVLink switch trays and power shelves → Devices in the rack; fabric switches → Devices of the
site (leaves in their SU's hall; no rack: the design does not place network racks); CDUs → Devices of
the hall; power chain → one PowerPanel per hall and side (A, plus B for 2N power) and a PowerFeed per
rack and side; fabric links → Cables between interfaces (status ``planned``).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import yaml

from tokenfab.blueprint.design import Design, SiteDesign
from tokenfab.export.fabric import inventory_site_links
from tokenfab.names import Inventory, inventory, switch_name

MANUFACTURER = "Nvidia"
"""Spelled as in the device-type library (device-types/Nvidia/)."""
GENERIC_MANUFACTURER = "Generic"
POWER_SHELF_KW = 33.0
"""estimate: one NVL72 power shelf of 6 × 5.5 kW PSUs (DGX GB200 user guide, power shelves)."""
NVLINK_SWITCH_TRAY_GPUS = 8
"""estimate: NVL72 has 9 NVLink switch trays for 72 GPUs (DGX GB200 user guide)."""
FEED_VOLTAGE_V = 415
FEED_POWER_FACTOR = 0.95
FEED_MAX_UTILIZATION_PCT = 80

FABRIC_INTERFACE_TYPES = {
    ("infiniband_ndr", 400): "infiniband-ndr",
    ("infiniband_xdr", 800): "infiniband-xdr",
    ("infiniband_xdr", 400): "infiniband-ndr",
    ("spectrum_x", 800): "800gbase-x-osfp",
    ("spectrum_x", 400): "400gbase-x-osfp",
}

ROLES = {
    "compute-node": "4caf50",
    "nvlink-switch": "9c27b0",
    "power-shelf": "ff9800",
    "cdu": "03a9f4",
    "leaf-switch": "607d8b",
    "spine-switch": "455a64",
    "core-switch": "263238",
    "super-core-switch": "212121",
}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "-", text.lower()).strip("-")


def interface_type(site: SiteDesign) -> str:
    return FABRIC_INTERFACE_TYPES.get((site.fabric.kind, site.fabric.link_gbps), "other")


def feed_amperage_a(power_kw: float) -> int:
    """Three-phase feed current [A] that carries `power_kw` at the maximum utilisation.

    .. math:: I = \\left\\lceil \\frac{P}{\\sqrt{3}\\, V \\cos\\varphi \\, u_{max}} \\right\\rceil
    """
    return math.ceil(
        power_kw
        * 1000.0
        / (math.sqrt(3) * FEED_VOLTAGE_V * FEED_POWER_FACTOR * FEED_MAX_UTILIZATION_PCT / 100.0)
    )


# --- device types ----------------------------------------------------------------------------------


def _node_model(site: SiteDesign) -> str:
    tray = "compute tray" if site.rack.nodes > site.rack.nvlink_domains else "node"
    return f"{site.system.upper()} {tray}"


def _switch_model(site: SiteDesign) -> str:
    """The switch with its ports as the fabric uses them (the library's own file names ports differently)."""
    return f"{site.fabric.switch.upper()}-{site.fabric.switch_ports}P"


def node_u_height(site: SiteDesign, rack_units: int) -> int:
    """1U trays in rack-scale systems; node-scale servers get the rack's share less 2U for power/network."""
    if site.rack.nodes > site.rack.nvlink_domains:
        return 1
    return max(1, rack_units // site.rack.nodes - 2)


def power_shelves_per_rack(site: SiteDesign) -> int:
    """Power shelves of a rack-scale system: :math:`\\lceil P_{shelves} / 33\\,kW \\rceil`; none for nodes."""
    if site.rack.nodes == site.rack.nvlink_domains:
        return 0
    return math.ceil(site.rack.power_shelf_capacity_kw / POWER_SHELF_KW)


def nvlink_trays_per_rack(site: SiteDesign) -> int:
    if site.rack.nodes == site.rack.nvlink_domains:
        return 0
    return site.rack.nvlink_domains * math.ceil(site.rack.gpus_per_nvlink_domain / NVLINK_SWITCH_TRAY_GPUS)


DEFAULT_RACK_UNITS = 48


def rack_units(site: SiteDesign) -> int:
    """Height of the site's rack [U], from the bundled catalog's system (48 U for a system it lacks)."""
    from tokenfab.catalog.load import load_catalog
    from tokenfab.catalog.models import System

    try:
        return load_catalog().typed("systems", site.system, System).rack_units
    except KeyError:
        return DEFAULT_RACK_UNITS


def device_types(design: Design) -> list[dict]:
    """Every device type the design uses, in the device-type library format (one dict per file)."""
    types: dict[str, dict] = {}
    for site in design.sites:
        for device_type in _site_device_types(site):
            types.setdefault(device_type["model"], device_type)
    return list(types.values())


def _site_device_types(site: SiteDesign) -> Iterator[dict]:
    """The device types one site uses: node, NVLink tray and power shelf (rack-scale), switch, CDUs."""
    kind = interface_type(site)
    node_model = _node_model(site)
    gpus_per_node = site.rack.gpus // site.rack.nodes
    yield {
        "manufacturer": MANUFACTURER,
        "model": node_model,
        "slug": slug(f"{MANUFACTURER}-{node_model}"),
        "u_height": node_u_height(site, rack_units(site)),
        "is_full_depth": True,
        "airflow": "front-to-rear",
        "comments": (
            f"{gpus_per_node} GPUs ({site.gpu}) of a {site.system} system; one scale-out NIC port per "
            f"rail. Generated by tokenfab."
        ),
        "interfaces": [{"name": "bmc", "type": "1000base-t", "mgmt_only": True}]
        + [{"name": f"nic{r}", "type": kind} for r in range(site.fabric.rails)],
    }
    if nvlink_trays_per_rack(site):
        yield {
            "manufacturer": MANUFACTURER,
            "model": "NVLink Switch tray",
            "slug": slug(f"{MANUFACTURER}-nvlink-switch-tray"),
            "u_height": 1,
            "is_full_depth": True,
            "is_powered": False,
            "comments": "NVLink switch tray of an NVL72 rack; NVLink ports are backplane connections.",
            "interfaces": [{"name": "bmc", "type": "1000base-t", "mgmt_only": True}],
        }
    if power_shelves_per_rack(site):
        yield {
            "manufacturer": MANUFACTURER,
            "model": "Power shelf 33 kW",
            "slug": slug(f"{MANUFACTURER}-power-shelf-33kw"),
            "u_height": 1,
            "is_full_depth": True,
            "comments": "estimate: 6 x 5.5 kW PSUs feeding the rack busbar.",
            "power-ports": [{"name": "input", "type": "iec-60309-3p-n-e-6h", "maximum_draw": 33000}],
        }
    yield _switch_device_type(site, kind)
    for hall in site.halls:
        if hall.cdu_model and hall.cdus_installed:
            yield {
                "manufacturer": GENERIC_MANUFACTURER,
                "model": hall.cdu_model.upper(),
                "slug": slug(f"generic-{hall.cdu_model}"),
                "u_height": 0,
                "is_full_depth": False,
                "comments": "Coolant distribution unit (floor-standing). Generated by tokenfab.",
                "power-ports": [{"name": "input", "type": "iec-60309-3p-n-e-6h"}],
            }


def _switch_device_type(site: SiteDesign, kind: str) -> dict:
    switch_model = _switch_model(site)
    ports = site.fabric.switch_ports
    return {
        "manufacturer": MANUFACTURER,
        "model": switch_model,
        "slug": slug(f"{MANUFACTURER}-{switch_model}"),
        "u_height": 1,
        "is_full_depth": True,
        "airflow": "rear-to-front",
        "comments": f"{ports} fabric ports at {site.fabric.link_gbps} Gb/s. Generated by tokenfab.",
        "interfaces": [{"name": "mgmt0", "type": "1000base-t", "mgmt_only": True}]
        + [{"name": f"p{p}", "type": kind} for p in range(1, ports + 1)],
    }


def device_type_yaml(device_type: dict) -> str:
    return "---\n" + yaml.safe_dump(device_type, sort_keys=False)


# --- CSV -------------------------------------------------------------------------------------------

CSV_HEADERS: dict[str, tuple[str, ...]] = {
    "manufacturers.csv": ("name", "slug"),
    "device-roles.csv": ("name", "slug", "color"),
    "sites.csv": ("name", "slug", "status", "description"),
    "locations.csv": ("site", "name", "slug", "status", "description"),
    "racks.csv": ("site", "location", "name", "status", "width", "u_height", "weight_unit"),
    "power-panels.csv": ("site", "location", "name"),
    "power-feeds.csv": (
        "site",
        "power_panel",
        "location",
        "rack",
        "name",
        "status",
        "type",
        "supply",
        "phase",
        "voltage",
        "amperage",
        "max_utilization",
    ),
    "devices.csv": (
        "name",
        "role",
        "manufacturer",
        "device_type",
        "status",
        "site",
        "location",
        "rack",
        "position",
        "face",
    ),
}
"""Columns of every bulk-import CSV file (NetBox's import field names), in the order written."""

Row = dict[str, object]
"""One CSV row, keyed by its file's column names."""


def _csv(header: Sequence[str], rows: Iterable[Row]) -> str:
    """CSV text of `rows` under `header`; a row must have exactly the header's keys (ValueError naming them)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    columns = frozenset(header)
    for row in rows:
        if row.keys() != columns:
            missing, extra = sorted(columns - row.keys()), sorted(row.keys() - columns)
            raise ValueError(f"CSV row does not fit its header: missing {missing}, unexpected {extra}")
        writer.writerow([row[name] for name in header])
    return out.getvalue()


def _hall_location(inv: Inventory, site_index: int, hall_in_site: int) -> str:
    return f"{inv.site_codes[site_index]}-hall-{hall_in_site}"


def _power_sides(site: SiteDesign) -> list[str]:
    return ["a", "b"] if site.power.redundancy == "2N" else ["a"]


def _device(
    name: str,
    role: str,
    manufacturer: str,
    device_type: str,
    site: str,
    location: str = "",
    rack: str = "",
    position: object = "",
    face: str = "",
) -> Row:
    """A devices.csv row (status ``planned``)."""
    return {
        "name": name,
        "role": role,
        "manufacturer": manufacturer,
        "device_type": device_type,
        "status": "planned",
        "site": site,
        "location": location,
        "rack": rack,
        "position": position,
        "face": face,
    }


def netbox_csvs(inv: Inventory, *, stream: bool = False) -> dict[str, str | Iterator[str]]:
    """The bulk-import CSV files: file name → text.

    With `stream`, ``cables.csv`` (by far the largest file: ~100 MB for 1 GW) is an iterator of text
    chunks, one per site and tier, built only as it is consumed.
    """
    design = inv.design
    hall_location = [
        _hall_location(inv, int(inv.fleet.hall_site[h]), int(inv.hall_in_site[h]))
        for h in range(inv.fleet.n_halls)
    ]
    rows: dict[str, list[Row]] = {name: [] for name in CSV_HEADERS}
    rows["manufacturers.csv"] = [
        {"name": MANUFACTURER, "slug": "nvidia"},
        {"name": GENERIC_MANUFACTURER, "slug": "generic"},
    ]
    rows["device-roles.csv"] = [{"name": r, "slug": r, "color": c} for r, c in ROLES.items()]
    rows["sites.csv"] = [
        {
            "name": site.name,
            "slug": slug(site.name),
            "status": "planned",
            "description": f"{site.system}, {site.metrics.gpus} GPUs, {site.region}",
        }
        for site in design.sites
    ]
    _hall_rows(inv, hall_location, rows)
    _rack_rows(inv, hall_location, rows)
    for site_index, site in enumerate(design.sites):
        rows["devices.csv"].extend(_switch_devices(inv, site_index, site, hall_location))
    files: dict[str, str | Iterator[str]] = {
        name: _csv(CSV_HEADERS[name], rows[name]) for name in CSV_HEADERS
    }
    cables = cable_chunks(inv)
    files["cables.csv"] = cables if stream else "".join(cables)
    return files


def _hall_rows(inv: Inventory, hall_location: list[str], rows: dict[str, list[Row]]) -> None:
    """Per hall: its Location, its power panels (one per side) and its CDUs."""
    design, fleet = inv.design, inv.fleet
    for hall in range(fleet.n_halls):
        site = design.sites[int(fleet.hall_site[hall])]
        hall_design = site.halls[int(inv.hall_in_site[hall])]
        location = hall_location[hall]
        rows["locations.csv"].append(
            {
                "site": site.name,
                "name": location,
                "slug": slug(location),
                "status": "planned",
                "description": f"{hall_design.racks} racks",
            }
        )
        for side in _power_sides(site):
            rows["power-panels.csv"].append(
                {"site": site.name, "location": location, "name": f"{location}-panel-{side}"}
            )
        cdu_model = (hall_design.cdu_model or "").upper()
        for cdu in range(hall_design.cdus_installed if cdu_model else 0):
            rows["devices.csv"].append(
                _device(
                    f"{inv.hall_codes[hall]}-cdu-{cdu:02d}",
                    "cdu",
                    GENERIC_MANUFACTURER,
                    cdu_model,
                    site.name,
                    location,
                )
            )


def _rack_rows(inv: Inventory, hall_location: list[str], rows: dict[str, list[Row]]) -> None:
    """Per rack: the Rack, a power feed per side, and the devices in it."""
    design, fleet = inv.design, inv.fleet
    units = [rack_units(site) for site in design.sites]
    starts = inv.nodes_of_rack()
    for rack in range(fleet.n_racks):
        hall = int(inv.rack_hall[rack])
        site_index = int(fleet.hall_site[hall])
        site = design.sites[site_index]
        location, name = hall_location[hall], inv.rack_names[rack]
        rows["racks.csv"].append(
            {
                "site": site.name,
                "location": location,
                "name": name,
                "status": "planned",
                "width": 19,
                "u_height": units[site_index],
                "weight_unit": "kg",
            }
        )
        amperage = feed_amperage_a(site.rack.power_max_kw)
        for side in _power_sides(site):
            rows["power-feeds.csv"].append(
                {
                    "site": site.name,
                    "power_panel": f"{location}-panel-{side}",
                    "location": location,
                    "rack": name,
                    "name": f"{name}-feed-{side}",
                    "status": "planned",
                    "type": "primary" if side == "a" else "redundant",
                    "supply": "ac",
                    "phase": "three-phase",
                    "voltage": FEED_VOLTAGE_V,
                    "amperage": amperage,
                    "max_utilization": FEED_MAX_UTILIZATION_PCT,
                }
            )
        rows["devices.csv"].extend(
            _rack_devices(
                inv, site, units[site_index], rack, int(starts[rack]), int(starts[rack + 1]), location
            )
        )


def _rack_devices(
    inv: Inventory, site: SiteDesign, units: int, rack: int, first: int, end: int, location: str
) -> list[Row]:
    """Devices of one rack, bottom up: power shelves, compute, NVLink trays, compute, power shelves."""
    name = inv.rack_names[rack]
    node_model = _node_model(site)
    height = node_u_height(site, units)
    shelves = power_shelves_per_rack(site)
    trays = nvlink_trays_per_rack(site) if end > first else 0
    nodes = list(range(first, end))
    half = len(nodes) // 2
    layout: list[tuple[str, str, str, int]] = []  # (name, role, model, height)
    layout += [(f"{name}-ps{i}", "power-shelf", "Power shelf 33 kW", 1) for i in range(shelves // 2)]
    layout += [(inv.node_names[n], "compute-node", node_model, height) for n in nodes[half:]]
    layout += [(f"{name}-nvsw{i}", "nvlink-switch", "NVLink Switch tray", 1) for i in range(trays)]
    layout += [(inv.node_names[n], "compute-node", node_model, height) for n in nodes[:half]]
    layout += [(f"{name}-ps{i}", "power-shelf", "Power shelf 33 kW", 1) for i in range(shelves // 2, shelves)]
    rows, position = [], 1
    fits = sum(h for *_, h in layout) <= units
    for device, role, model, u in layout:
        rows.append(
            _device(
                device,
                role,
                MANUFACTURER,
                model,
                site.name,
                location,
                name,
                position if fits else "",
                "front" if fits else "",
            )
        )
        position += u
    return rows


def _switch_devices(inv: Inventory, site_index: int, site: SiteDesign, hall_location: list[str]) -> list[Row]:
    fleet = inv.fleet
    site_halls = np.flatnonzero(fleet.hall_site == site_index)
    su_hall = fleet.su_hall[np.isin(fleet.su_hall, site_halls)]
    per_su = site.fabric.tiers[0].switches // site.fabric.scalable_units
    rows = []
    model = _switch_model(site)
    for tier in site.fabric.tiers:
        for i in range(tier.switches):
            location = (
                hall_location[int(su_hall[min(i // per_su, su_hall.shape[0] - 1)])] if tier.tier == 1 else ""
            )
            rows.append(
                _device(
                    switch_name(site_index, tier.name, i),
                    f"{tier.name}-switch",
                    MANUFACTURER,
                    model,
                    site.name,
                    location,
                )
            )
    return rows


CABLE_HEADER = (
    "side_a_device",
    "side_a_type",
    "side_a_name",
    "side_b_device",
    "side_b_type",
    "side_b_name",
    "type",
    "status",
)


def cable_chunks(inv: Inventory) -> Iterator[str]:
    """cables.csv as text chunks: the header, then one chunk per site and tier (links built lazily)."""
    yield ",".join(CABLE_HEADER) + "\n"
    for site_index, site in enumerate(inv.design.sites):
        for lines in _cable_lines(inv, site_index, site, inventory_site_links(inv, site_index)):
            yield "\n".join(lines) + "\n"


def _cable_lines(inv: Inventory, site_index: int, site: SiteDesign, tiers) -> Iterator[list[str]]:
    """cables.csv lines (without header) of one site, one list per tier: one line per fabric link.

    Written with f-strings rather than the csv module (about 1.2M lines for 1 GW): every field is a name
    of this module's making (letters, digits, '-', '.') and needs no quoting.
    """
    end = ",mmf-om4,planned"
    prefixes = [switch_name(site_index, t.name, 0)[:-4] for t in site.fabric.tiers]  # "s0-leaf-"
    node_names = inv.node_names
    for links in tiers:
        upper_names = [
            f"{prefixes[links.tier]}{b:04d}" for b in range(site.fabric.tiers[links.tier].switches)
        ]
        lower, lower_port = links.lower.tolist(), links.lower_port.tolist()
        upper, upper_port = links.upper.tolist(), (links.upper_port + 1).tolist()
        if links.tier == 0:
            yield [
                f"{node_names[a]},dcim.interface,nic{pa},{upper_names[b]},dcim.interface,p{pb}{end}"
                for a, pa, b, pb in zip(lower, lower_port, upper, upper_port, strict=True)
            ]
        else:
            lower_names = [
                f"{prefixes[links.tier - 1]}{a:04d}"
                for a in range(site.fabric.tiers[links.tier - 1].switches)
            ]
            yield [
                f"{lower_names[a]},dcim.interface,p{pa + 1},{upper_names[b]},dcim.interface,p{pb}{end}"
                for a, pa, b, pb in zip(lower, lower_port, upper, upper_port, strict=True)
            ]


def export_netbox(design: Design, *, stream: bool = False) -> dict[str, str | Iterator[str]]:
    """Every NetBox file: ``device-types/<slug>.yaml`` plus the CSV files, file name → text.

    `stream` makes ``cables.csv`` an iterator of chunks (see `netbox_csvs`), for writers that write as
    they go; the CLI uses it.
    """
    inv = inventory(design)
    files: dict[str, str | Iterator[str]] = {
        f"device-types/{t['slug']}.yaml": device_type_yaml(t) for t in device_types(design)
    }
    files.update(netbox_csvs(inv, stream=stream))
    return files
