"""Tenant rules: GPU quotas, residency pinning (sites/halls) and NVLink-domain exclusivity.

Quotas count GPU-equivalents in milli-GPU (a fractional request of share f counts ``1000 f``), so
``used + asked ≤ quota`` is exact integer arithmetic. Residency and exclusivity are masks over NVLink
domains, computed with numpy and cached per distinct (sites, halls) pair.
"""

from __future__ import annotations

import math

import numpy as np

from tokenfab.fleet import NO_TENANT
from tokenfab.units import MILLI_PER_GPU


class Quotas:
    """GPUs used per tenant against optional per-tenant quotas."""

    def __init__(self, quotas_gpus: dict[str, int] | None = None) -> None:
        self.quotas_gpus = dict(quotas_gpus or {})
        self.used_milli: dict[str, int] = {}

    def refusal(self, tenant: str, asked_milli: int) -> str | None:
        """Why ``tenant`` may not take ``asked_milli`` more milli-GPU, or None if it may."""
        quota = self.quotas_gpus.get(tenant)
        if quota is None:
            return None
        used = self.used_milli.get(tenant, 0)
        if used + asked_milli <= quota * MILLI_PER_GPU:
            return None
        return f"tenant {tenant} over quota: {_gpus_text(used)} + {_gpus_text(asked_milli)} > {quota} GPUs"

    def add(self, tenant: str, milli: int) -> None:
        self.used_milli[tenant] = self.used_milli.get(tenant, 0) + milli

    def used_gpus(self) -> dict[str, int]:
        """Whole GPUs used per tenant, a partly used GPU counting as one (``⌈milli / 1000⌉``)."""
        return {t: math.ceil(m / MILLI_PER_GPU) for t, m in sorted(self.used_milli.items()) if m > 0}


def _gpus_text(milli: int) -> str:
    return str(milli // MILLI_PER_GPU) if milli % MILLI_PER_GPU == 0 else f"{milli / MILLI_PER_GPU:g}"


class Residency:
    """Which NVLink domains a request may use, from the tenant's pinning and the request's own."""

    def __init__(
        self,
        domain_site: np.ndarray,
        domain_hall: np.ndarray,
        tenant_residency: dict[str, tuple[tuple[int, ...] | None, tuple[int, ...] | None]] | None = None,
    ):
        self.domain_site = domain_site
        self.domain_hall = domain_hall
        self.tenant_residency = dict(tenant_residency or {})
        self._cache: dict[tuple[tuple[int, ...] | None, tuple[int, ...] | None], np.ndarray | None] = {}

    def allowed(
        self, tenant: str, sites: tuple[int, ...] | None, halls: tuple[int, ...] | None
    ) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
        """The intersection of the tenant's pinning with the request's (None: unrestricted)."""
        pinned_sites, pinned_halls = self.tenant_residency.get(tenant, (None, None))
        return _intersect(pinned_sites, sites), _intersect(pinned_halls, halls)

    def domain_mask(self, sites: tuple[int, ...] | None, halls: tuple[int, ...] | None) -> np.ndarray | None:
        """Boolean mask of allowed domains, or None when every domain is allowed."""
        key = (sites, halls)
        if key not in self._cache:
            mask = None
            if sites is not None:
                mask = np.isin(self.domain_site, np.asarray(sites, dtype=np.int64))
            if halls is not None:
                in_halls = np.isin(self.domain_hall, np.asarray(halls, dtype=np.int64))
                mask = in_halls if mask is None else mask & in_halls
            self._cache[key] = mask
        return self._cache[key]


def _intersect(a: tuple[int, ...] | None, b: tuple[int, ...] | None) -> tuple[int, ...] | None:
    if a is None:
        return None if b is None else tuple(sorted(set(b)))
    if b is None:
        return tuple(sorted(set(a)))
    return tuple(sorted(set(a) & set(b)))


def exclusivity_mask(
    domain_owner: np.ndarray, domain_pieces: np.ndarray, tenant_code: int, exclusive: bool
) -> np.ndarray | None:
    """Domains a request may use under NVLink-domain isolation, or None when all may be used.

    ``domain_owner[d]`` is the exclusive tenant holding domain d (NO_TENANT if none) and
    ``domain_pieces[d]`` the number of allocations on it. An exclusive request may use an empty domain or
    one its own tenant owns; any other request may use a domain that no *other* exclusive tenant owns.
    """
    allowed: np.ndarray
    if exclusive:
        allowed = (domain_pieces == 0) | (domain_owner == tenant_code)
        return allowed
    if not (domain_owner != NO_TENANT).any():
        return None
    allowed = (domain_owner == NO_TENANT) | (domain_owner == tenant_code)
    return allowed
