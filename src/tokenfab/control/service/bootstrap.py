"""Opening a store for a design: migrate it, write the inventory once, and mint the bootstrap token.

A store serves one design (checked by fingerprint). A new store gets the design's sites, halls, racks
and nodes, and one operator token named ``bootstrap`` (returned once; ``TOKENFAB_BOOTSTRAP_TOKEN`` may
supply it, e.g. for a benchmark that starts the server itself).
"""

from __future__ import annotations

import hashlib

from sqlalchemy.orm import Session

from tokenfab.blueprint.design import Design
from tokenfab.control.auth import format_token, hash_secret, new_secret, new_token_id, parse_token
from tokenfab.control.service.memory import FactoryMemory
from tokenfab.control.store import (
    ApiTokenRow,
    AuditRow,
    HallRow,
    Meta,
    NodeRow,
    RackRow,
    Role,
    SiteRow,
)
from tokenfab.fleet import Health
from tokenfab.io.yamlfile import InputError
from tokenfab.settings import env_name, load_settings

BOOTSTRAP_TOKEN_ENV = env_name("bootstrap_token")


def design_fingerprint(design: Design) -> str:
    """SHA-256 of the design's JSON: which design a store serves."""
    return hashlib.sha256(design.model_dump_json().encode()).hexdigest()


def initialise_store(session: Session, design: Design, memory: FactoryMemory) -> str | None:
    """Check the store serves ``design``; a new store gets the inventory and a bootstrap operator token
    (returned, the only time it is shown). Raises `InputError` for a store of another design."""
    fingerprint = design_fingerprint(design)
    stored = session.get(Meta, "design_fingerprint")
    if stored is not None:
        if stored.value != fingerprint:
            name = session.get(Meta, "design_name")
            raise InputError(
                f"the database holds the control plane of design {name.value if name else '?'}; "
                f"it cannot serve design {design.name} (use another --db)"
            )
        return None
    write_inventory(session, memory)
    session.add_all(
        [Meta(key="design_fingerprint", value=fingerprint), Meta(key="design_name", value=design.name)]
    )
    token = load_settings().bootstrap_token
    parsed = parse_token(token) if token else None
    if parsed is None:
        parsed = (new_token_id(), new_secret())
    token_id, secret = parsed
    session.add(
        ApiTokenRow(id=token_id, name="bootstrap", role=Role.operator, secret_sha256=hash_secret(secret))
    )
    session.add(
        AuditRow(
            actor="system",
            action="bootstrap",
            target=f"design/{design.name}",
            after={"gpus": memory.fleet.n_gpus, "token": token_id},
        )
    )
    return format_token(token_id, secret)


def write_inventory(session: Session, memory: FactoryMemory) -> None:
    """Sites, halls, racks and nodes of the fleet as rows (every node healthy)."""
    fleet = memory.fleet
    session.add_all(SiteRow(id=i, name=name) for i, name in enumerate(fleet.site_names))
    session.flush()
    session.add_all(HallRow(id=i, site_id=int(site)) for i, site in enumerate(fleet.hall_site))
    session.flush()
    session.add_all(
        RackRow(id=i, hall_id=int(memory.rack_hall[i]), su=int(su)) for i, su in enumerate(fleet.rack_su)
    )
    session.flush()
    session.add_all(
        NodeRow(
            id=i,
            rack_id=int(memory.node_rack[i]),
            domain=int(fleet.node_domain[i]),
            gpus=int(fleet.node_gpus[i]),
            health=Health.ok.name,
            health_reason="",
        )
        for i in range(fleet.n_nodes)
    )
