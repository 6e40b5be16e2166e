"""NetBox export: device types validate against the device-type library schema; CSVs round-trip."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import pytest
import yaml

from tokenfab.export.netbox import CSV_HEADERS, _csv, device_types, export_netbox

# Column names of NetBox's bulk-import forms (netbox/dcim/forms/bulk_import.py, Meta.fields).
IMPORT_FIELDS = {
    "sites.csv": {
        "name",
        "slug",
        "status",
        "region",
        "group",
        "tenant",
        "facility",
        "time_zone",
        "description",
    },
    "locations.csv": {"site", "parent", "name", "slug", "status", "tenant", "facility", "description"},
    "racks.csv": {
        "site",
        "location",
        "name",
        "facility_id",
        "tenant",
        "status",
        "role",
        "form_factor",
        "width",
        "u_height",
        "weight",
        "max_weight",
        "weight_unit",
        "description",
    },
    "power-panels.csv": {"site", "location", "name", "description"},
    "power-feeds.csv": {
        "site",
        "power_panel",
        "location",
        "rack",
        "name",
        "status",
        "type",
        "mark_connected",
        "supply",
        "phase",
        "voltage",
        "amperage",
        "max_utilization",
        "tenant",
        "description",
    },
    "devices.csv": {
        "name",
        "role",
        "tenant",
        "manufacturer",
        "device_type",
        "platform",
        "serial",
        "asset_tag",
        "status",
        "site",
        "location",
        "rack",
        "position",
        "face",
        "airflow",
        "description",
    },
    "cables.csv": {
        "side_a_device",
        "side_a_type",
        "side_a_name",
        "side_b_device",
        "side_b_type",
        "side_b_name",
        "type",
        "status",
        "label",
        "length",
        "length_unit",
        "description",
    },
    "manufacturers.csv": {"name", "slug", "description"},
    "device-roles.csv": {"name", "slug", "color", "description"},
}


def _rows(text):
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture(scope="module")
def netbox_files(full_su_design):
    return export_netbox(full_su_design)


@pytest.fixture(scope="module")
def validator():
    from tests.conftest import SHARED_DATA_DIR

    folder = SHARED_DATA_DIR / "schemas" / "netbox"
    if not folder.is_dir():
        pytest.skip(f"NetBox schemas not found at {folder}")
    import jsonschema
    from referencing import Registry, Resource

    resources = []
    for path in folder.glob("*.json"):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    registry = Registry().with_resources(resources)
    schema = json.loads((folder / "devicetype.json").read_text())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def test_library_examples_validate(validator, shared_data_dir):
    """The validator itself accepts NVIDIA's switch files from the device-type library.

    (The stored DGC-A100.yaml does not validate: it types a console port ``1000base-t``.)
    """
    for name in ("QM9700.yaml", "Q3400-RA.yaml", "SN5600.yaml", "NVLink-5-Switch.yaml"):
        validator.validate(
            yaml.safe_load((shared_data_dir / "schemas" / "netbox" / "examples-nvidia" / name).read_text())
        )


def test_device_types_validate(validator, full_su_design, hgx_design, netbox_files):
    for design in (full_su_design, hgx_design):
        for device_type in device_types(design):
            validator.validate(device_type)
    files = [name for name in netbox_files if name.startswith("device-types/")]
    assert files
    for name in files:
        validator.validate(yaml.safe_load(netbox_files[name]))
    with pytest.raises(Exception, match="u_height"):
        validator.validate({**device_types(full_su_design)[0], "u_height": 0.3})


def test_csv_columns_are_netbox_import_fields(netbox_files):
    for name, allowed in IMPORT_FIELDS.items():
        header = next(csv.reader(io.StringIO(netbox_files[name])))
        assert set(header) <= allowed, (name, set(header) - allowed)


def test_csv_rows_are_keyed_by_their_header(netbox_files):
    for name, header in CSV_HEADERS.items():
        assert tuple(next(csv.reader(io.StringIO(netbox_files[name])))) == header, name
    feeds = _rows(netbox_files["power-feeds.csv"])
    assert feeds and all(f["rack"] in f["name"] and f["power_panel"].startswith(f["location"]) for f in feeds)
    assert _csv(("a", "b"), [{"b": 2, "a": 1}]) == "a,b\n1,2\n", (
        "values land under their column, whatever the key order"
    )
    with pytest.raises(ValueError, match=r"missing \['b'\], unexpected \['c'\]"):
        _csv(("a", "b"), [{"a": 1, "c": 3}])


def test_round_trip_counts(full_su_design, netbox_files):
    site = full_su_design.sites[0]
    devices = _rows(netbox_files["devices.csv"])
    roles = Counter(d["role"] for d in devices)
    assert roles["compute-node"] == site.metrics.nodes
    for tier in site.fabric.tiers:
        assert roles[f"{tier.name}-switch"] == tier.switches
    assert roles["nvlink-switch"] == 9 * full_su_design.metrics.nvlink_domains
    assert len(_rows(netbox_files["racks.csv"])) == full_su_design.metrics.racks
    assert len(_rows(netbox_files["locations.csv"])) == len(site.halls)
    cables = _rows(netbox_files["cables.csv"])
    assert len(cables) == sum(site.fabric.links_by_tier)
    # every cable end is a distinct interface of a device that exists, and the interface is in its type
    ends = [(c["side_a_device"], c["side_a_name"]) for c in cables] + [
        (c["side_b_device"], c["side_b_name"]) for c in cables
    ]
    assert len(ends) == len(set(ends))
    by_name = {d["name"]: d for d in devices}
    interfaces = {
        t["model"]: {i["name"] for i in t.get("interfaces", [])} for t in device_types(full_su_design)
    }
    assert all(
        device in by_name and port in interfaces[by_name[device]["device_type"]] for device, port in ends
    )
    gpus_per_node = site.rack.gpus // site.rack.nodes
    assert roles["compute-node"] * gpus_per_node == full_su_design.metrics.gpus
    # rack positions never overlap and stay inside the rack
    heights = {t["model"]: t["u_height"] for t in device_types(full_su_design)}
    used = Counter()
    for d in devices:
        if d["position"]:
            for u in range(int(d["position"]), int(d["position"]) + heights[d["device_type"]]):
                used[(d["rack"], u)] += 1
    assert used and max(used.values()) == 1 and max(u for _, u in used) <= 48


def test_power_feeds(full_su_design, netbox_files):
    feeds = _rows(netbox_files["power-feeds.csv"])
    sides = 2 if full_su_design.sites[0].power.redundancy == "2N" else 1
    assert len(feeds) == sides * full_su_design.metrics.racks
    panels = {p["name"] for p in _rows(netbox_files["power-panels.csv"])}
    assert all(f["power_panel"] in panels for f in feeds)
    rack_kw = full_su_design.sites[0].rack.power_max_kw
    amps = int(feeds[0]["amperage"])
    assert 3**0.5 * 415 * amps * 0.95 * 0.8 >= rack_kw * 1000 > 3**0.5 * 415 * (amps - 1) * 0.95 * 0.8


# Choice values from NetBox's netbox/dcim/choices.py (SiteStatusChoices, LocationStatusChoices,
# RackStatusChoices, RackWidthChoices, DeviceStatusChoices, DeviceFaceChoices, PowerFeedStatusChoices,
# PowerFeedTypeChoices, PowerFeedSupplyChoices, PowerFeedPhaseChoices, CableTypeChoices, LinkStatusChoices).
CHOICES = {
    ("sites.csv", "status"): {"planned", "staging", "active", "decommissioning", "retired"},
    ("locations.csv", "status"): {"planned", "staging", "active", "decommissioning", "retired"},
    ("racks.csv", "status"): {"reserved", "available", "planned", "active", "deprecated"},
    ("racks.csv", "width"): {"10", "19", "21", "23"},
    ("devices.csv", "status"): {
        "offline",
        "active",
        "planned",
        "staged",
        "failed",
        "inventory",
        "decommissioning",
    },
    ("devices.csv", "face"): {"front", "rear", ""},
    ("power-feeds.csv", "status"): {"offline", "active", "planned", "failed"},
    ("power-feeds.csv", "type"): {"primary", "redundant"},
    ("power-feeds.csv", "supply"): {"ac", "dc"},
    ("power-feeds.csv", "phase"): {"single-phase", "three-phase"},
    ("cables.csv", "type"): {"mmf-om4", "smf", "aoc", "dac-active", "dac-passive"},
    ("cables.csv", "status"): {"connected", "planned", "decommissioning"},
    ("cables.csv", "side_a_type"): {"dcim.interface"},
    ("cables.csv", "side_b_type"): {"dcim.interface"},
}


def test_csv_values_are_netbox_choices(netbox_files):
    for (name, column), allowed in CHOICES.items():
        values = {row[column] for row in _rows(netbox_files[name])}
        assert values <= allowed, (name, column, values - allowed)


def test_same_node_names_in_every_export(full_su_design, netbox_files):
    from tokenfab.export.kueue import export_kueue
    from tokenfab.export.slurm import export_slurm, parse_conf
    from tokenfab.names import expand_hostlist, inventory

    slurm = [
        n
        for r in parse_conf(export_slurm(full_su_design)["slurm.conf"])
        if "nodename" in r
        for n in expand_hostlist(r["nodename"])
    ]
    kueue = [d["metadata"]["name"] for d in yaml.safe_load_all(export_kueue(full_su_design)["nodes.yaml"])]
    netbox = [d["name"] for d in _rows(netbox_files["devices.csv"]) if d["role"] == "compute-node"]
    fleet_order = inventory(full_su_design).node_names
    assert slurm == kueue == fleet_order
    assert sorted(netbox) == sorted(fleet_order)
