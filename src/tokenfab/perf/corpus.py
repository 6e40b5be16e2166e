"""Reading measured (or to-be-predicted) performance points in the corpus's CSV format.

One row is one published number under its own conditions (engine, scenario, ISL/OSL, layout,
concurrency, precision, speculative decoding). The format and its columns are described in
``shared/data/perf-corpus/README.md``; `load_points` validates a file and reports the first problem as one
line ``file:line: field: problem``. Conditions the format keeps in free-text ``notes`` (disaggregated
worker layout, speculative decoding, Triton QPS, MLPerf latency limits) are parsed here, once.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REQUIRED_COLUMNS = (
    "id",
    "engine",
    "model",
    "precision",
    "gpu",
    "system_gpus",
    "tp",
    "pp",
    "ep",
    "dp_attention",
    "scenario",
    "isl",
    "osl",
    "concurrency",
    "metric",
)
"""Columns a points file must have; ``value`` is optional (without it nothing is scored)."""

SCENARIOS = ("offline_max_throughput", "server", "interactive", "static_batch")
THROUGHPUT_METRIC = "output_tok_s_per_gpu"


class PointsFileError(ValueError):
    """A points file the loader cannot use (one line: file, line, field, problem)."""


@dataclass(frozen=True)
class Disaggregation:
    """Worker layout of a disaggregated measurement, from its notes."""

    prefill_workers: int
    prefill_tp: int
    prefill_ep: int
    prefill_dp_attention: bool
    prefill_gpus: int
    decode_workers: int
    decode_gpus: int


@dataclass(frozen=True)
class PointRow:
    """One row of a points file, typed; blanks are None."""

    id: str
    line: int
    source_kind: str
    source: str
    engine: str
    engine_version: str
    model: str
    model_family: str
    precision: str
    gpu: str
    system_gpus: int | None
    tp: int | None
    pp: int | None
    ep: int | None
    dp_attention: bool | None
    scenario: str
    isl: float | None
    osl: float | None
    concurrency: float | None
    metric: str
    value: float | None
    notes: str
    tok_s_per_user: float | None = None
    """Measured output tokens per second per user where published (not an input of the prediction)."""
    flags: tuple[str, ...] = ()
    spec_decoding: str = "none"
    disaggregation: Disaggregation | None = None
    qps: float | None = None
    """Triton online serving: offered request rate [1/s] (``inf`` = all at once)."""
    tpot_limit_ms: float | None = None
    """MLPerf Server/Interactive p99 time-per-output-token limit [ms]."""
    ttft_limit_ms: float | None = None
    max_num_tokens: int | None = None
    """Engine build limit stated for this row (TRT-LLM v0.11 tables) [tok]."""
    max_batch: int | None = None
    extra: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def is_throughput(self) -> bool:
        return self.metric == THROUGHPUT_METRIC

    @property
    def regime(self) -> str:
        """offline, interactive or server (static batches count as offline)."""
        if self.scenario in ("offline_max_throughput", "static_batch"):
            return "offline"
        return self.scenario


_DISAGG = re.compile(
    r"prefill (\d+) worker\(s\) x TP(\d+)/EP(\d+)( dp-attn)? \((\d+) GPUs\), decode (\d+) worker\(s\) x "
    r"TP\d+/EP\d+(?: dp-attn)? \((\d+) GPUs\)"
)
_SPEC = re.compile(r"spec decoding: ([a-z0-9_-]+)")
_QPS = re.compile(r"QPS=(INF|[0-9.]+)")
_LIMITS = re.compile(r"TTFT<=([0-9.]+)ms,TPOT<=([0-9.]+)ms")
_ENGINE_BUILD = re.compile(r"max_num_tokens (\d+), max_batch_size (\d+)")


def parse_notes(notes: str) -> dict[str, Any]:
    """Conditions kept in the free-text notes: disaggregation, spec decoding, QPS, latency limits."""
    out: dict[str, Any] = {}
    m = _DISAGG.search(notes)
    if m:
        pw, ptp, pep, pdp, pg, dw, dg = m.groups()
        out["disaggregation"] = Disaggregation(
            int(pw), int(ptp), int(pep), bool(pdp), int(pg), int(dw), int(dg)
        )
    m = _SPEC.search(notes)
    if m:
        out["spec_decoding"] = m.group(1)
    m = _QPS.search(notes)
    if m:
        out["qps"] = float("inf") if m.group(1) == "INF" else float(m.group(1))
    m = _LIMITS.search(notes)
    if m:
        out["ttft_limit_ms"], out["tpot_limit_ms"] = float(m.group(1)), float(m.group(2))
    m = _ENGINE_BUILD.search(notes)
    if m:
        out["max_num_tokens"], out["max_batch"] = int(m.group(1)), int(m.group(2))
    return out


def _number(
    path: str | Path, line: int, name: str, text: str | None, integer: bool = False, positive: bool = True
) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        v = float(text)
    except ValueError:
        raise PointsFileError(f"{path}:{line}: {name}: not a number: {text!r}") from None
    if v != v or (positive and v <= 0) or (integer and v != int(v)):
        kind = "a positive whole number" if integer else "a positive number"
        raise PointsFileError(f"{path}:{line}: {name}: must be {kind}, got {text!r}")
    return int(v) if integer else v


def _whole_number(path: str | Path, line: int, name: str, text: str | None) -> int | None:
    """`_number` for a count: a positive whole number, or None when blank."""
    value = _number(path, line, name, text, integer=True)
    return None if value is None else int(value)


def _bool(path: str | Path, line: int, name: str, text: str | None) -> bool | None:
    text = (text or "").strip().lower()
    if not text:
        return None
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise PointsFileError(f"{path}:{line}: {name}: must be true or false, got {text!r}")


def _row(path: str | Path, line: int, raw: dict[str, str], has_value: bool) -> PointRow:
    get = {k: (v or "").strip() for k, v in raw.items() if k is not None}
    # Structure is checked here (file error); names the catalog or the model may not know (model, GPU,
    # scenario, metric, precision) make a row unpredictable instead, counted and named by the predictor.
    if not get.get("id"):
        raise PointsFileError(f"{path}:{line}: id: empty")
    ints = {n: _whole_number(path, line, n, get.get(n)) for n in ("system_gpus", "tp", "pp", "ep")}
    floats = {n: _number(path, line, n, get.get(n)) for n in ("isl", "osl", "concurrency", "tok_s_per_user")}
    value = _number(path, line, "value", get.get("value")) if has_value else None
    notes = get.get("notes", "")
    flags = tuple(f for f in re.split(r"[;, ]+", get.get("flags", "")) if f)
    known = set(REQUIRED_COLUMNS) | {
        "value",
        "notes",
        "flags",
        "source_kind",
        "source",
        "engine_version",
        "model_family",
    }
    return PointRow(
        id=get["id"],
        line=line,
        source_kind=get.get("source_kind", ""),
        source=get.get("source", ""),
        engine=get.get("engine", ""),
        engine_version=get.get("engine_version", ""),
        model=get.get("model", ""),
        model_family=get.get("model_family", ""),
        precision=get.get("precision", "").lower(),
        gpu=get.get("gpu", "").lower(),
        dp_attention=_bool(path, line, "dp_attention", get.get("dp_attention")),
        scenario=get.get("scenario", ""),
        metric=get.get("metric", ""),
        value=value,
        notes=notes,
        flags=flags,
        extra={k: v for k, v in get.items() if k not in known},
        system_gpus=ints["system_gpus"],
        tp=ints["tp"],
        pp=ints["pp"],
        ep=ints["ep"],
        isl=floats["isl"],
        osl=floats["osl"],
        concurrency=floats["concurrency"],
        tok_s_per_user=floats["tok_s_per_user"],
        **parse_notes(notes),
    )


def load_points(path: Path) -> list[PointRow]:
    """Read and validate a points CSV; raise `PointsFileError` naming file, line and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PointsFileError(f"{path}: cannot read: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise PointsFileError(f"{path}:1: header: missing column(s) {', '.join(missing)}")
    has_value = "value" in header
    rows, seen = [], set()
    for raw in reader:
        line = reader.line_num
        if None in raw:
            raise PointsFileError(f"{path}:{line}: row: more fields than the header has")
        row = _row(path, line, raw, has_value)
        if row.id in seen:
            raise PointsFileError(f"{path}:{line}: id: duplicate {row.id!r}")
        seen.add(row.id)
        rows.append(row)
    return rows


def corpus_fingerprint(path: Path) -> str:
    """SHA-256 (first 16 hex digits) of a points file, to tie fitted parameters to the data [-]."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
