"""What a tenant may read of texts written for operators: no other tenant, no figure of theirs, no
facility figure.

The store keeps the whole truth (operators see it): a queue reason names the free capacity the search
found and the facility power cap; an audit entry names the caller whose action caused it, which may be
another tenant (its cancel let this tenant's queued work start). A tenant reads these with the other
tenants' share and the facility's figures taken out:

- a queue reason's clauses that count free GPUs or domains (they are the other tenants' use, seen from
  the outside) become "no room for it now"; the power cap's value is dropped;
- an audit entry's actor that is neither the tenant itself nor an operator or the system reads
  ``system/queue``, and the queue reasons in its before/after are read as above.
"""

from __future__ import annotations

import re
from typing import Any

from tokenfab.control.auth import Principal

NO_ROOM = "no room for it now"
POWER_CAP = "facility power cap: placing it would draw more than the cap"
_FREE = re.compile(r"\bfree\b")
_WAITING = re.compile(r"^(waiting: needs \d+ GPUs), \d+ free$")


def reason_for_tenant(reason: str) -> str:
    """A queue reason without the figures of other tenants' use or of the facility (see the module)."""
    if not reason:
        return reason
    clauses: list[str] = []
    for clause in reason.split("; "):
        waiting = _WAITING.match(clause)
        if "power cap" in clause:
            clause = "evicted: facility power cap" if clause.startswith("evicted") else POWER_CAP
        elif waiting:
            clause = waiting.group(1)
        elif _FREE.search(clause):
            clause = NO_ROOM
        if clause not in clauses:
            clauses.append(clause)
    return "; ".join(clauses)


def actor_for(principal: Principal, actor: str) -> str:
    """The audit actor as ``principal`` may read it: itself, an operator or the system; else the queue."""
    if principal.is_operator or not actor.startswith("tenant:"):
        return actor
    return actor if actor.startswith(f"tenant:{principal.tenant_name}/") else "system/queue"


def facts_for(principal: Principal, facts: dict[str, Any] | None) -> dict[str, Any] | None:
    """An audit entry's before/after as ``principal`` may read it (queue reasons redacted)."""
    if principal.is_operator or not facts or not isinstance(facts.get("queue_reason"), str):
        return facts
    return {**facts, "queue_reason": reason_for_tenant(facts["queue_reason"])}
