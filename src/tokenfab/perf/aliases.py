"""Resolving the model and GPU names of measured-performance files onto catalog entries.

A model name resolves, in order, through the ``perf_aliases`` table (``catalog/data/perf-aliases.yaml``),
the catalog models' ``hf_repo``, and the catalog name itself, each compared after normalising (case,
organisation prefix, ``-Instruct``/``-chat``/``-hf`` suffixes). A GPU name resolves through the alias table
onto a system, or onto any system built from a catalog GPU of that name. An alias whose target is not in
the catalog is skipped, so the row counts as unpredictable instead of failing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokenfab.catalog.models import Gpu, LlmModel, Precision, System
from tokenfab.catalog.perf_models import PerfAlias

if TYPE_CHECKING:
    from tokenfab.catalog.load import Catalog

_SUFFIXES = re.compile(r"(-instruct|-chat|-hf|-base|-v0\.1|-v0\.3)+$")


def normalise_model_name(name: str) -> str:
    """Lower case, without organisation prefix, ``meta-`` or checkpoint-flavour suffixes."""
    base = name.strip().lower().rsplit("/", 1)[-1]
    base = base.removeprefix("meta-")
    return _SUFFIXES.sub("", base)


@dataclass(frozen=True)
class Resolver:
    """Name tables built once per catalog."""

    models: dict[str, str]
    """normalised or exact lower-case name -> catalog model name"""
    systems: dict[str, str]
    """lower-case GPU name -> catalog system name"""
    blank_precision: dict[str, Precision]

    def model(self, name: str) -> str | None:
        key = name.strip().lower()
        return self.models.get(key) or self.models.get(normalise_model_name(name))

    def system(self, gpu: str) -> str | None:
        return self.systems.get(gpu.strip().lower())


def build_resolver(catalog: Catalog) -> Resolver:
    """The alias table plus the automatic rules, checked against what the catalog holds."""
    models: dict[str, str] = {}
    known_models = {m.name: m for m in catalog.all("models", LlmModel)}
    systems_by_name = {s.name: s for s in catalog.all("systems", System)}
    for m in known_models.values():
        for key in (m.name, m.hf_repo, *getattr(m, "aliases", ())):
            models.setdefault(key.lower(), m.name)
            models.setdefault(normalise_model_name(key), m.name)
    systems: dict[str, str] = {}
    gpus = {g.name: g for g in catalog.all("gpus", Gpu)}
    for s in sorted(systems_by_name.values(), key=lambda s: (s.kind != "node_scale", s.name)):
        gpu = gpus.get(s.gpu)
        for key in (s.gpu, *(getattr(gpu, "aliases", ()) if gpu else ())):
            systems.setdefault(key.lower(), s.name)
    blank: dict[str, Precision] = {}
    for alias in catalog.all("perf_aliases", PerfAlias):
        ok = alias.target in (known_models if alias.kind == "model" else systems_by_name)
        for name in alias.match:
            if not ok:
                continue
            if alias.kind == "model":
                models[name.lower()] = alias.target
            else:
                systems[name.lower()] = alias.target
                if alias.blank_precision:
                    blank[name.lower()] = alias.blank_precision
    return Resolver(models=models, systems=systems, blank_precision=blank)


_CACHE: dict[int, tuple[object, Resolver]] = {}


def resolver_for(catalog: Catalog) -> Resolver:
    """`build_resolver`, remembered per catalog object."""
    hit = _CACHE.get(id(catalog))
    if hit is None or hit[0] is not catalog:
        hit = (catalog, build_resolver(catalog))
        _CACHE[id(catalog)] = hit
    return hit[1]


PRECISION_NAMES = {
    "bf16": Precision.bf16,
    "fp16": Precision.bf16,
    "fp8": Precision.fp8,
    "nvfp4": Precision.fp4,
    "mxfp4": Precision.fp4,
    "fp4": Precision.fp4,
}
"""Precision labels of points files -> serving precision (FP16 and BF16 cost the same)."""


def serving_precision(label: str, gpu: Gpu, blank: Precision | None = None) -> Precision | None:
    """The serving precision of a row; a blank label means the lowest the GPU computes in natively
    (MLPerf v5.0 rows: FP4 on Blackwell, FP8 on Hopper). None when the label is not a known format."""
    label = label.strip().lower()
    if not label:
        if blank:
            return blank
        for p in (Precision.fp4, Precision.fp8):
            if p in gpu.dense_tflops:
                return p
        return Precision.bf16
    return PRECISION_NAMES.get(label)
