"""Serving-engine profiles: the batch, token, KV-cache and CUDA-graph limits an engine runs with.

Profiles are catalog data (``catalog/data/engine-profiles.yaml``, kind ``engine_profiles``); a measurement
picks the first profile whose engine names, source kinds and version range match it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tokenfab.catalog.perf_models import EngineProfile

if TYPE_CHECKING:
    from tokenfab.catalog.load import Catalog

_VERSION = re.compile(r"(?<![0-9.])v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> tuple[int, ...] | None:
    """First ``major.minor[.patch]`` in an engine-version text (image tags included), or None."""
    tag = text.rsplit(":", 1)[-1] if ":" in text else text
    m = _VERSION.search(tag)
    if not m:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)


def _bound(text: str) -> tuple[int, ...]:
    """An engine-version bound of a profile: its ``major.minor[.patch]``."""
    version = parse_version(text)
    if version is None:
        raise ValueError(f"engine version bound {text!r} has no major.minor")
    return version


def _in_range(version: tuple[int, ...] | None, lo: str, hi: str) -> bool:
    if not lo and not hi:
        return True
    if version is None:
        return not lo
    if lo and version < _bound(lo):
        return False
    if hi and version >= _bound(hi):
        return False
    return True


def engine_profile(
    profiles: list[EngineProfile], engine: str, version: str, source_kind: str = ""
) -> EngineProfile:
    """The first profile matching an engine name, engine version and source kind (``*`` matches any)."""
    name = engine.strip().lower()
    parsed = parse_version(version)
    for p in profiles:
        if "*" not in p.engines and name not in p.engines:
            continue
        if p.source_kinds and source_kind not in p.source_kinds:
            continue
        if _in_range(parsed, p.version_from, p.version_to):
            return p
    raise KeyError(f"no engine profile matches {engine!r} {version!r} and no catch-all '*' profile")


def profiles_from(catalog: Catalog) -> list[EngineProfile]:
    """Engine profiles in file order (the catalog keeps insertion order)."""
    return list(catalog.all("engine_profiles", EngineProfile))
