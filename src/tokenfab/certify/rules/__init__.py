"""Certification rules: one pure function per rule, `(design, catalog) -> Iterable[Finding]`, one module per domain.

Every rule re-derives what it checks from the numbers the design states (and the catalog's figures for the
parts it names), so a hand-edited `design.json` is judged on what it says. Ids are stable:

* ``PWR``  power: racks, power chain stages, grid, energy balance, PUE (`power.py`); busway, fault levels,
  800 V DC, grid quality, generators, block failures (`power_facility.py`)
* ``COOL`` cooling: CDUs, coolant temperatures and flows, heat rejection, air side, WUE (`cooling.py`)
* ``NET``  networking: NVLink domains, the scale-out fat tree, ports and links (`network.py`)
* ``LAY``  layout: scalable units, rows, halls, floor (`layout.py`)
* ``RED``  redundancy: N, N+1, 2N along the power and cooling paths (`redundancy.py`)
* ``SAFE`` safety margins: post-failure loading, return temperature, condensation, freezing (`safety.py`)
* ``COST`` bill of materials and cost roll-ups (`cost.py`)

Every rule is of one `kind`: an **engineering** rule holds the design to a limit from outside the compiler
(a vendor rating, a standard, the climate), with its `basis` naming where the limit comes from; a
**consistency** rule checks that the design's own numbers agree with each other or with the compiler's own
sizing rule, and its `basis` says so. A design can pass every consistency rule and still be unbuildable; only
the engineering rules speak to that.

Element paths look like ``site[0].hall[3].su[2]``, ``site[0].rack`` (every rack of a site is the same
rack), ``site[0].power.stage[ups]`` and ``site[0].fabric.tier[leaf]``. Equations and limits of every rule
are in docs/certify.md. Shared helpers are in `_common.py`.
"""

from tokenfab.certify.rules import cooling, cost, layout, network, power, power_facility, redundancy, safety  # noqa: F401

__all__ = ["cooling", "cost", "layout", "network", "power", "power_facility", "redundancy", "safety"]
