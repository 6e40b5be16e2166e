"""What a tenant environment is made of, as pure functions: templates, pools, names and request bodies.

- templates: the k0rdent cluster template of each kind (``remote-cluster`` for bare-metal GPU nodes,
  ``kubevirt-*`` for VMs, ``openstack-standalone-cp`` on OpenStack sites); Slurm and bare-metal
  environments have no cluster template;
- pools: InfiniBand partition keys (15-bit, IBTA vol. 1 §10.9: 0x0000 is invalid and 0x7FFF is the
  default partition) and front-end VLAN ids (IEEE 802.1Q: 1 is the default VLAN, 4095 reserved), each
  handed to one environment at a time (the store's primary keys hold that);
- the front-end plan: one VLAN and one VRF per environment with its own /24;
- the Redfish plan (DMTF Redfish, DSP0266/DSP2046): per node, PATCH the ComputerSystem's ``Boot`` to a
  one-time PXE override, then POST ``ComputerSystem.Reset`` with ``PowerCycle``; at deletion ``ForceOff``;
- the Slurm partition and reservation names.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

TEMPLATES: dict[str, tuple[str, ...]] = {
    "kubernetes": ("remote-cluster", "openstack-standalone-cp"),
    "vm": ("kubevirt-standalone-cp", "kubevirt-hosted-cp"),
    "slurm": ("slurm-partition",),
    "baremetal": ("bare-metal",),
}
"""Templates each kind may use; the first is the default."""

PKEY_FIRST, PKEY_LAST = 0x0002, 0x7FFE
"""Partition keys handed to environments (0x0001 is left to the fabric's management partition)."""
VLAN_FIRST, VLAN_LAST = 100, 3999
"""Front-end VLAN ids handed to environments (below 100 and above 3999 are left to the site)."""
FRONTEND_SUPERNET = ipaddress.ip_network("10.128.0.0/10")
"""Front-end addresses of tenant environments: one /24 per VLAN."""
REDFISH_SYSTEMS = "/redfish/v1/Systems"


def template_for(kind: str, template: str | None) -> str | None:
    """The template an environment of ``kind`` uses (the kind's default when None); None if unknown."""
    allowed = TEMPLATES[kind]
    if template is None:
        return allowed[0]
    return template if template in allowed else None


def first_free(used: set[int], first: int, last: int) -> int | None:
    """The smallest id in [first, last] not in ``used``; None when the pool is exhausted."""
    for candidate in range(first, last + 1):
        if candidate not in used:
            return candidate
    return None


def vrf_name(env_id: str) -> str:
    return f"vrf-{env_id}"


def frontend_subnet(vlan: int) -> str:
    """The /24 of VLAN ``vlan``: the ``vlan``-th /24 of the front-end supernet."""
    return str(ipaddress.ip_network((int(FRONTEND_SUPERNET.network_address) + vlan * 256, 24)))


def network_plan(env_id: str, tenant: str, pkey: int, vlan: int, node_names: list[str]) -> dict[str, Any]:
    """The environment's isolation: its InfiniBand partition, its front-end VLAN and VRF."""
    return {
        "tenant": tenant,
        "infiniband": {"pkey": f"0x{pkey:04x}", "members": node_names, "membership": "full"},
        "frontend": {
            "vlan": vlan,
            "vrf": vrf_name(env_id),
            "subnet": frontend_subnet(vlan),
            "route_distinguisher": f"65000:{vlan}",
            "access_ports": [f"{name}:eth0" for name in node_names],
        },
    }


def storage_plan(tenant: str, env_name: str, storage_tb: float) -> dict[str, Any]:
    """The environment's share of the site's storage: a project directory with a hard quota."""
    return {
        "path": f"/tenants/{tenant}/{env_name}",
        "quota_tb": storage_tb,
        "quota_bytes": int(storage_tb * 1e12),
    }


def bmc_system_url(node_name: str) -> str:
    """The Redfish ComputerSystem of a node, addressed by its BMC's name (``<node>-bmc``, by convention)."""
    return f"https://{node_name}-bmc{REDFISH_SYSTEMS}/1"


def redfish_provision(node_name: str) -> list[dict[str, Any]]:
    """The ordered Redfish requests that reinstall a node from the network: one-time PXE boot, power cycle."""
    system = bmc_system_url(node_name)
    return [
        {
            "method": "PATCH",
            "url": system,
            "body": {
                "Boot": {
                    "BootSourceOverrideEnabled": "Once",
                    "BootSourceOverrideTarget": "Pxe",
                    "BootSourceOverrideMode": "UEFI",
                }
            },
        },
        {
            "method": "POST",
            "url": f"{system}/Actions/ComputerSystem.Reset",
            "body": {"ResetType": "PowerCycle"},
        },
    ]


def redfish_release(node_name: str) -> list[dict[str, Any]]:
    """The Redfish request that powers a node off when its environment is deleted (wiped on next use)."""
    system = bmc_system_url(node_name)
    return [
        {"method": "POST", "url": f"{system}/Actions/ComputerSystem.Reset", "body": {"ResetType": "ForceOff"}}
    ]


def slurm_partition_name(tenant: str, env_name: str) -> str:
    """A Slurm partition name for the environment (letters, digits, '-' and '_')."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{tenant}-{env_name}")[:60]


def slurm_reservation_name(tenant: str, env_name: str) -> str:
    return f"{slurm_partition_name(tenant, env_name)}-res"
