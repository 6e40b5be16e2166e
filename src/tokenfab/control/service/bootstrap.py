"""Opening a store for a design: migrate it, write the inventory once, and mint the bootstrap token.

A store serves one design (checked by fingerprint). A new store gets the design's sites, halls, racks
and nodes, and one operator token named ``bootstrap`` (returned once; ``TOKENFAB_BOOTSTRAP_TOKEN`` may
supply it, e.g. for a benchmark that starts the server itself; its secret must have at least 32
characters). `reset_operator_token` recovers operator access from the store alone.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import inspect, make_url
from sqlalchemy.orm import Session

from tokenfab.blueprint.design import Design
from tokenfab.control.auth import (
    format_token,
    hash_secret,
    new_secret,
    new_token_id,
    parse_token,
    supplied_token_problem,
)
from tokenfab.control.db import is_sqlite, make_engine, normalize_url, session_factory, upgrade_to_head
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
    token_id, secret = bootstrap_secret()
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


def bootstrap_secret() -> tuple[str, str]:
    """(id, secret) of the bootstrap token: ``TOKENFAB_BOOTSTRAP_TOKEN`` when set (`InputError` when it is
    malformed or its secret is shorter than `MIN_SECRET_CHARS`), else random."""
    token = load_settings().bootstrap_token
    if token is None:
        return new_token_id(), new_secret()
    problem = supplied_token_problem(token)
    if problem is not None:
        raise InputError(f"{BOOTSTRAP_TOKEN_ENV}: {problem}")
    parsed = parse_token(token)
    assert parsed is not None
    return parsed


def reset_operator_token(db_url: str, name: str = "recovery") -> str:
    """A new operator token in the control-plane store at ``db_url``, returned (the only time it is shown):
    how an operator who lost every operator token recovers access. `InputError` when ``db_url`` holds no
    tokenfab control plane. Needs no design: the store is the truth."""
    if is_sqlite(db_url):
        path = make_url(normalize_url(db_url)).database
        if not path or path == ":memory:" or not Path(path).is_file():
            raise InputError(f"--db {db_url}: no such database file")
    engine = make_engine(db_url)
    try:
        if not inspect(engine).has_table(Meta.__tablename__):
            raise InputError(f"--db {db_url}: not a tokenfab control plane database")
        upgrade_to_head(engine)
        with session_factory(engine).begin() as session:
            if session.get(Meta, "design_fingerprint") is None:
                raise InputError(f"--db {db_url}: not a tokenfab control plane database")
            token_id, secret = new_token_id(), new_secret()
            session.add(
                ApiTokenRow(id=token_id, name=name, role=Role.operator, secret_sha256=hash_secret(secret))
            )
            session.add(
                AuditRow(
                    actor="system/admin",
                    action="token.reset",
                    target=f"token/{token_id}",
                    after={"name": name, "role": Role.operator.value},
                )
            )
    finally:
        engine.dispose()
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
