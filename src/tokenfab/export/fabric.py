"""The cabling plan of a site's scale-out fabric: which node port meets which switch port, tier by tier.

The design holds counts (`FabricDesign`: switches per tier, downlinks and uplinks per switch, links per
tier). Exports need wires, so this module fixes one deterministic wiring that reproduces those counts
exactly (for whole scalable units) and never uses more ports than a switch has.

Rules (``k`` = switch radix, ``h = k / 2``, ``d`` leaf downlinks, ``u`` uplinks):

* **Nodes to leaves, rail-optimised.** Each SU owns ``L_SU = ceil(E_SU / d)`` leaves. Endpoint ``(n, r)``
  (node ``n`` of the SU, rail ``r``) is slot :math:`e = r N_{SU} + n`; it lands on the SU's leaf
  ``e // d``, port ``e mod d``. A leaf therefore serves one rail of a run of consecutive nodes.
* **Two tiers.** Uplink ``j`` of leaf ``s`` is global uplink :math:`g = s u + j`, wired round-robin to spine
  ``g mod S``: every leaf reaches every spine, ``u / S`` times.
* **Three tiers or more** (a k-ary n-tree). Between tier ``b`` and ``b + 1`` switches form blocks of
  :math:`h^b`; block position ``q`` is written as pod :math:`a = \\lfloor q / h^{b-1} \\rfloor` and plane
  :math:`p = q \\bmod h^{b-1}`. Uplink ``j`` goes to the same plane of pod :math:`(a + j) \\bmod P_p`,
  :math:`G h^b + ((a + j) \\bmod P_p)\\, h^{b-1} + p`, where :math:`P_p` is the number of pods of the block
  that have plane ``p`` (``h`` in a full block). Every upper switch receives exactly ``h`` links and
  reaches plane ``p`` of every pod. The top tier has ``k`` downlinks, so its switch is that virtual
  index divided by two.
* Ports: a switch's downlinks are its ports ``0 .. d-1`` in the order of the lower switches (then uplink
  index) that reach it; its uplinks are ports ``d .. d+u-1``. Ports are 0-based here; exports print them
  1-based (``p1`` …).

Only installed nodes get node-to-leaf links, so tier 0 holds ``nodes × rails`` links, which equals the
design's ``links_by_tier[0]`` when every SU is full (the design builds leaves for whole SUs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenfab.blueprint.design import FabricDesign


@dataclass(frozen=True)
class TierLinks:
    """Links from tier ``tier`` (0 = nodes) to tier ``tier + 1`` of one site, as parallel arrays.

    For tier 0, ``lower`` is the global fleet node id and ``lower_port`` the node's rail; otherwise
    ``lower`` is a switch index within the site's tier. ``upper`` is a switch index within the tier above.
    """

    tier: int
    lower: np.ndarray
    lower_port: np.ndarray
    upper: np.ndarray
    upper_port: np.ndarray

    @property
    def count(self) -> int:
        return int(self.lower.shape[0])


def nodes_per_scalable_unit(fabric: FabricDesign) -> int:
    return fabric.endpoints_per_scalable_unit // fabric.rails


def leaves_per_scalable_unit(fabric: FabricDesign) -> int:
    return fabric.tiers[0].switches // fabric.scalable_units


def _rank_within(keys: np.ndarray, order_keys: tuple[np.ndarray, ...]) -> np.ndarray:
    """0-based rank of each row among the rows with the same key, ordered by `order_keys` (then key)."""
    order = np.lexsort((*order_keys, keys))
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, sorted_keys.shape[0]]))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0]) - group_start
    return rank


def node_leaf_links(
    fabric: FabricDesign, node_ids: np.ndarray, node_in_su: np.ndarray, su_in_site: np.ndarray
) -> TierLinks:
    """Rail-optimised links from every installed node of the site to its SU's leaves."""
    rails = fabric.rails
    per_su = nodes_per_scalable_unit(fabric)
    leaves_su = leaves_per_scalable_unit(fabric)
    down = fabric.tiers[0].downlinks_per_switch
    rail = np.tile(np.arange(rails), node_ids.shape[0])
    node = np.repeat(node_ids, rails)
    slot = rail * per_su + np.repeat(node_in_su, rails)
    leaf = np.repeat(su_in_site, rails) * leaves_su + slot // down
    return TierLinks(0, node, rail, leaf, slot % down)


def _upper_of(lower: np.ndarray, uplink: np.ndarray, count: int, half: int, level: int) -> np.ndarray:
    """Virtual upper switch of a k-ary n-tree (see module notes), for `count` switches at level `level`."""
    block = half**level
    sub = half ** (level - 1)
    group, q = lower // block, lower % block
    members = np.minimum(block, count - group * block)
    pod, plane = q // sub, q % sub
    pods_with_plane = members // sub + (plane < members % sub)
    return group * block + ((pod + uplink) % pods_with_plane) * sub + plane


def switch_links(fabric: FabricDesign, tier: int) -> TierLinks:
    """Links from switch tier `tier` (1 = leaves) to the tier above."""
    below = fabric.tiers[tier - 1]
    above = fabric.tiers[tier]
    up = below.uplinks_per_switch
    lower = np.repeat(np.arange(below.switches), up)
    uplink = np.tile(np.arange(up), below.switches)
    half = fabric.switch_ports // 2
    top = tier == len(fabric.tiers) - 1
    if len(fabric.tiers) == 2:
        upper = (lower * up + uplink) % above.switches
    elif up != half:
        upper = (lower * up + uplink) % above.switches  # oversubscribed leaves: round-robin over the tier
    else:
        upper = _upper_of(lower, uplink, below.switches, half, tier)
        if top:
            upper = upper // 2
    upper_port = _rank_within(upper, (uplink, lower))
    return TierLinks(tier, lower, below.downlinks_per_switch + uplink, upper, upper_port)


def site_links(
    fabric: FabricDesign, node_ids: np.ndarray, node_in_su: np.ndarray, su_in_site: np.ndarray
) -> list[TierLinks]:
    """Every link of one site's fabric, tier by tier (index 0: node to leaf)."""
    links = [node_leaf_links(fabric, node_ids, node_in_su, su_in_site)]
    links.extend(switch_links(fabric, tier) for tier in range(1, len(fabric.tiers)))
    return links


def inventory_site_links(inv, site_index: int) -> list[TierLinks]:
    """`site_links` of one site of an `Inventory`."""
    fleet = inv.fleet
    node_ids = np.flatnonzero(fleet.node_site == site_index)
    su_in_site = inv.su_in_site[fleet.node_su[node_ids]]
    return site_links(inv.design.sites[site_index].fabric, node_ids, inv.node_in_su[node_ids], su_in_site)


def inventory_links(inv) -> list[list[TierLinks]]:
    """`site_links` for every site of an `Inventory` (one list of tiers per site)."""
    return [inventory_site_links(inv, site_index) for site_index in range(len(inv.design.sites))]
