"""The aggregated factory map (site → hall → SU → rack): depths, sums, a tenant's "occupied" view without
other tenants' names, the cache per state version, and the search by rack, node and workload."""

from __future__ import annotations

import json

from control_helpers import open_api

from tokenfab.blueprint.compile import compile as compile_design
from tokenfab.catalog.load import load_catalog
from tokenfab.spec import parse_spec


def _map(api, headers, **params) -> dict:
    response = api.client.get("/api/v1/factory", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_depths_and_sums_agree(api):
    acme = api.tenant("acme")
    api.submit(acme, name="train", gpus=72)
    full = _map(api, api.op)
    assert full["depth"] == "rack" and full["gpus"] == api.service.fleet.n_gpus
    assert full["gpus"] - full["gpus_free"] == 72
    for site in full["sites"]:
        assert site["gpus"] == sum(h["gpus"] for h in site["halls"])
        for hall in site["halls"]:
            assert (
                hall["gpus"] == sum(su["gpus"] for su in hall["sus"]) == sum(r["gpus"] for r in hall["racks"])
            )
            assert hall["gpus_free"] == sum(r["gpus_free"] for r in hall["racks"])
            assert sum(su["racks"] for su in hall["sus"]) == len(hall["racks"])
    held = [r for s in full["sites"] for h in s["halls"] for r in h["racks"] if r["tenants"]]
    assert sum(r["tenants"]["acme"] for r in held) == 72
    sites_only = _map(api, api.op, depth="site")
    assert all(site["halls"] == [] for site in sites_only["sites"])
    sus = _map(api, api.op, depth="su")
    assert all(h["racks"] == [] and h["sus"] for s in sus["sites"] for h in s["halls"])
    one_hall = _map(api, api.op, hall=0)
    assert [h["id"] for s in one_hall["sites"] for h in s["halls"]] == [0]
    assert api.client.get("/api/v1/factory", headers=api.op, params={"hall": 999}).status_code == 404
    assert api.client.get("/api/v1/factory", headers=api.op, params={"depth": "galaxy"}).status_code == 422


def test_tenant_sees_other_tenants_use_as_occupied_without_names(api):
    acme, globex = api.tenant("acme"), api.tenant("globex")
    theirs = api.submit(globex, name="globex-secret-job", gpus=72)
    mine = api.submit(acme, name="mine", gpus=8)
    their_rack = theirs["placement"]["racks"][0]
    response = api.client.get("/api/v1/factory", headers=acme)
    assert "globex" not in response.text and theirs["id"] not in response.text
    view = response.json()
    racks = {r["id"]: r for s in view["sites"] for h in s["halls"] for r in h["racks"]}
    assert racks[their_rack]["gpus_occupied"] == 72 and racks[their_rack]["gpus_own"] == 0
    assert racks[their_rack]["tenants"] == {}
    assert view["gpus_own"] == 8 and view["gpus_occupied"] == 72
    my_rack = mine["placement"]["racks"][0]
    assert racks[my_rack]["tenants"] == {"acme": 8}
    operator = {r["id"]: r for s in _map(api, api.op)["sites"] for h in s["halls"] for r in h["racks"]}
    assert operator[their_rack]["tenants"] == {"globex": 72} and operator[their_rack]["gpus_occupied"] == 0
    detail = api.client.get(f"/api/v1/racks/{their_rack}", headers=acme).json()["rack"]
    assert detail["gpus_occupied"] == 72 and detail["tenants"] == {}


def test_map_is_cached_until_a_change(api):
    acme = api.tenant("acme")
    views, service = api.service.factory_views, api.service
    principal = service.authenticate(api.op["Authorization"].split()[1])
    first = views.map_json(service, principal, "su", None)
    assert views.map_json(service, principal, "su", None) is first  # no change: the same answer
    api.submit(acme, name="train", gpus=72)
    after = views.map_json(service, principal, "su", None)
    assert after is not first
    assert json.loads(after)["gpus_free"] == json.loads(first)["gpus_free"] - 72


def test_search_finds_racks_nodes_and_only_own_workloads(api):
    acme, globex = api.tenant("acme"), api.tenant("globex")
    mine = api.submit(acme, name="llama-pretrain", gpus=8)
    theirs = api.submit(globex, name="llama-secret", gpus=8)
    fleet = api.service.fleet

    def hits(headers, q):
        response = api.client.get("/api/v1/factory/search", headers=headers, params={"q": q})
        assert response.status_code == 200, response.text
        return response.json()["data"]

    rack = hits(acme, "rack 3")
    assert [(h["kind"], h["rack"]) for h in rack] == [("rack", 3)]
    node = hits(acme, "n10")
    assert node[0]["kind"] == "node" and node[0]["node"] == 10 and node[0]["rack"] == int(fleet.node_rack[10])
    both = {h["kind"] for h in hits(api.op, "2")}
    assert both == {"rack", "node"}
    found = hits(acme, "llama")
    assert [h["id"] for h in found] == [mine["id"]]
    assert found[0]["rack"] == mine["placement"]["racks"][0] and found[0]["hall"] is not None
    assert hits(acme, theirs["id"]) == [] and {h["id"] for h in hits(api.op, "llama")} == {
        mine["id"],
        theirs["id"],
    }
    assert api.client.get("/api/v1/factory/search", headers=acme, params={"q": ""}).status_code == 422


def test_map_at_one_gigawatt_aggregates(tmp_path):
    """At 1 GW (5,000+ racks) the SU-level map stays small: no rack listed, every SU summarised."""
    spec = parse_spec(
        {
            "name": "gw",
            "sites": [{"name": "s", "grid_mw": 1000, "climate": "ashburn-va", "system": "gb200-nvl72"}],
        }
    )
    design = compile_design(spec, load_catalog())
    api = open_api(design, f"sqlite:///{tmp_path / 'gw.db'}")
    try:
        view = _map(api, api.op, depth="su")
        halls = [h for s in view["sites"] for h in s["halls"]]
        assert sum(su["racks"] for h in halls for su in h["sus"]) == api.service.fleet.n_racks > 5000
        assert all(h["racks"] == [] for h in halls)
        assert len(json.dumps(view)) < 200_000
    finally:
        api.client.close()
        api.service.engine.dispose()
