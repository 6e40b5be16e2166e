"""Loading the catalog: the bundled YAML data plus any directories a user adds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from tokenfab.catalog.models import (
    Busway,
    Cable,
    Cdu,
    Climate,
    Economics,
    FacilityLimits,
    Generator,
    Gpu,
    HeatRejection,
    LlmModel,
    Market,
    Region,
    SourcedEntry,
    Standards,
    Switch,
    System,
    Transceiver,
    Transformer,
    Ups,
)
from tokenfab.catalog.perf_models import (
    EngineProfile,
    PerfAlias,
    PerfCalibration,
    PerfFit,
    PerfGenerationParams,
    PerfMeasurement,
    PowerMeasurement,
    PowerModel,
)
from tokenfab.io.yamlfile import InputError, load_located_yaml

BUNDLED_DIR = Path(__file__).parent / "data"

# The catalog's kinds: the `kind:` of a YAML file -> the model its entries validate against.
KIND_MODELS: dict[str, type[SourcedEntry]] = {
    "gpus": Gpu,
    "systems": System,
    "switches": Switch,
    "transceivers": Transceiver,
    "cables": Cable,
    "cdus": Cdu,
    "heat_rejection": HeatRejection,
    "transformers": Transformer,
    "ups": Ups,
    "busways": Busway,
    "generators": Generator,
    "facility_limits": FacilityLimits,
    "markets": Market,
    "regions": Region,
    "climates": Climate,
    "economics": Economics,
    "standards": Standards,
    "models": LlmModel,
    "perf_calibrations": PerfCalibration,
    "perf_measurements": PerfMeasurement,
    "power_models": PowerModel,
    "power_measurements": PowerMeasurement,
    "perf_aliases": PerfAlias,
    "engine_profiles": EngineProfile,
    "perf_generation_params": PerfGenerationParams,
    "perf_fits": PerfFit,
}

T = TypeVar("T", bound=SourcedEntry)


@dataclass(frozen=True)
class Catalog:
    """Every catalog entry by kind and name."""

    entries: dict[str, dict[str, SourcedEntry]] = field(default_factory=dict)

    def kind(self, kind: str) -> dict[str, SourcedEntry]:
        return self.entries.get(kind, {})

    def get(self, kind: str, name: str) -> SourcedEntry:
        try:
            return self.entries[kind][name]
        except KeyError:
            known = ", ".join(sorted(self.kind(kind))) or "none"
            raise KeyError(
                f"unknown {kind[:-1] if kind.endswith('s') else kind} {name!r} (known: {known})"
            ) from None

    def typed(self, kind: str, name: str, model: type[T]) -> T:
        entry = self.get(kind, name)
        assert isinstance(entry, model)
        return entry

    def all(self, kind: str, model: type[T]) -> list[T]:
        return [e for e in self.kind(kind).values() if isinstance(e, model)]

    def resolve(self, kind: str, name: str) -> SourcedEntry:
        """The entry `name` names: its catalog name, one of its ``aliases`` or (models) its ``hf_repo``.

        Matching of aliases and repositories ignores case; a name nothing matches raises KeyError.
        """
        entries = self.kind(kind)
        if name in entries:
            return entries[name]
        wanted = name.strip().lower()
        for entry in entries.values():
            names = [*getattr(entry, "aliases", ()), getattr(entry, "hf_repo", "")]
            if any(n and n.lower() == wanted for n in names):
                return entry
        return self.get(kind, name)

    def systems_with_gpu(self, gpu: str) -> list[SourcedEntry]:
        """The systems built from the GPU `gpu` names (catalog name or alias), node-scale ones first."""
        wanted = self.resolve("gpus", gpu).name
        found = [s for s in self.kind("systems").values() if getattr(s, "gpu", None) == wanted]
        return sorted(found, key=lambda s: (getattr(s, "kind", "") != "node_scale", s.name))

    def find(self, name: str) -> tuple[str, SourcedEntry]:
        for kind, entries in self.entries.items():
            if name in entries:
                return kind, entries[name]
        raise KeyError(f"no catalog entry named {name!r}")


def read_catalog_file(path: Path) -> list[tuple[str, SourcedEntry]]:
    """Read one catalog YAML file: ``kind: <kind>`` and ``entries: [...]``."""
    doc = load_located_yaml(path)
    if not isinstance(doc.data, dict):
        raise doc.error([], "a catalog file is a mapping with `kind` and `entries`")
    kind = doc.data.get("kind")
    if kind not in KIND_MODELS:
        raise doc.error(["kind"], f"unknown kind {kind!r} (known: {', '.join(KIND_MODELS)})")
    extra = set(doc.data) - {"kind", "entries"}
    if extra:
        raise doc.error([sorted(extra)[0]], "unknown field")
    raw_entries = doc.data.get("entries")
    if not isinstance(raw_entries, list):
        raise doc.error(["entries"], "expected a list of entries")
    model = KIND_MODELS[kind]
    out = []
    for index, raw in enumerate(raw_entries):
        try:
            out.append((kind, model.model_validate(raw)))
        except ValidationError as exc:
            raise doc.validation_error(exc, prefix=["entries", index]) from None
    return out


def load_catalog(extra_dirs: Iterable[str | Path] = ()) -> Catalog:
    """The bundled catalog, overlaid by user directories (later entries replace earlier ones by name)."""
    extra = tuple(str(Path(d)) for d in extra_dirs)
    return _load_cached(extra)


@lru_cache(maxsize=8)
def _load_cached(extra_dirs: tuple[str, ...]) -> Catalog:
    entries: dict[str, dict[str, SourcedEntry]] = {kind: {} for kind in KIND_MODELS}
    directories = [BUNDLED_DIR, *(Path(d) for d in extra_dirs)]
    for directory in directories:
        if not directory.is_dir():
            raise InputError(f"{directory}: catalog directory not found")
        for path in sorted(directory.glob("*.yaml")):
            for kind, entry in read_catalog_file(path):
                entries.setdefault(kind, {})[entry.name] = entry
    _check_references(entries)
    return Catalog(entries=entries)


def _check_references(entries: dict[str, dict[str, SourcedEntry]]) -> None:
    for system in entries.get("systems", {}).values():
        gpu = getattr(system, "gpu", None)
        if gpu not in entries.get("gpus", {}):
            raise InputError(f"catalog: system {system.name!r} names unknown gpu {gpu!r}")
    for climate in entries.get("climates", {}).values():
        region = getattr(climate, "region", None)
        if region not in entries.get("regions", {}):
            raise InputError(f"catalog: climate {climate.name!r} names unknown region {region!r}")
