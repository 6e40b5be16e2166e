"""Readers for public LLM inference request traces: arrival time, prompt and output lengths.

* Azure LLM inference trace 2023 (Patel et al., "Splitwise", ISCA 2024; github.com/Azure/AzurePublicDataset):
  CSV ``TIMESTAMP,ContextTokens,GeneratedTokens`` with timestamps like ``2023-11-16 18:17:03.9799600``.
* Mooncake conversation trace (Qin et al., FAST 2025; github.com/kvcache-ai/Mooncake): JSON lines with
  ``timestamp`` [ms], ``input_length``, ``output_length``.

Both become a `RequestTrace`: arrays sorted by arrival, times in seconds from the first request.
Bad files raise `InputError` naming the file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tokenfab.io.yamlfile import InputError
from tokenfab.settings import load_settings

TRACE_FILES = {
    "azure-conv": "azure-llm/AzureLLMInferenceTrace_conv.csv",
    "azure-code": "azure-llm/AzureLLMInferenceTrace_code.csv",
    "mooncake": "mooncake/conversation_trace.jsonl",
}
"""Bundled names of the public traces, relative to the shared data folder."""


@dataclass(frozen=True)
class RequestTrace:
    """Requests of one trace as parallel arrays (sorted by arrival)."""

    name: str
    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray

    @property
    def duration_s(self) -> float:
        return float(self.arrival_s[-1] - self.arrival_s[0]) if len(self.arrival_s) > 1 else 1.0

    @property
    def mean_input_tokens(self) -> float:
        return float(self.input_tokens.mean())

    @property
    def mean_output_tokens(self) -> float:
        return float(self.output_tokens.mean())

    @property
    def requests_per_s(self) -> float:
        return len(self.arrival_s) / self.duration_s


def shared_data_dir() -> Path:
    """Where the public data lives: ``$TOKENFAB_DATA_DIR``, else ``<repo>/../shared/data``."""
    configured = load_settings().data_dir
    if configured is not None:
        return configured
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


def resolve_trace(name_or_path: str, base_dir: Path | None = None) -> Path:
    """A trace name from `TRACE_FILES` (under the shared data folder) or a file path."""
    if name_or_path in TRACE_FILES:
        return shared_data_dir() / TRACE_FILES[name_or_path]
    path = Path(name_or_path)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def read_trace(name_or_path: str, base_dir: Path | None = None) -> RequestTrace:
    """Read a request trace by bundled name or path (Azure CSV or Mooncake JSON lines by extension)."""
    path = resolve_trace(name_or_path, base_dir)
    if not path.is_file():
        raise InputError(f"{path}: trace file not found (known names: {', '.join(TRACE_FILES)})")
    if path.suffix == ".jsonl":
        return read_mooncake(path, name=name_or_path)
    return read_azure_llm(path, name=name_or_path)


def read_azure_llm(path: str | Path, name: str | None = None) -> RequestTrace:
    """Read an Azure LLM inference trace CSV (``TIMESTAMP,ContextTokens,GeneratedTokens``)."""
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read CSV: {exc}") from None
    for column in ("TIMESTAMP", "ContextTokens", "GeneratedTokens"):
        if column not in frame.columns:
            raise InputError(f"{path}:1: missing column {column!r}")
    try:
        stamps = pd.to_datetime(frame["TIMESTAMP"], format="mixed")
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: TIMESTAMP: {exc}") from None
    seconds = (stamps - stamps.min()).dt.total_seconds().to_numpy()
    return _trace(name or str(path), path, seconds, frame["ContextTokens"], frame["GeneratedTokens"])


def read_mooncake(path: str | Path, name: str | None = None) -> RequestTrace:
    """Read the Mooncake trace (JSON lines with ``timestamp`` [ms], ``input_length``, ``output_length``)."""
    stamps, inputs, outputs = [], [], []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                stamps.append(float(row["timestamp"]) / 1000.0)
                inputs.append(int(row["input_length"]))
                outputs.append(int(row["output_length"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"{path}:{line_no}: bad request record: {exc}") from None
    return _trace(name or str(path), path, np.asarray(stamps), inputs, outputs)


def _trace(name: str, path, seconds, inputs, outputs) -> RequestTrace:
    seconds = np.asarray(seconds, dtype=float)
    if not len(seconds):
        raise InputError(f"{path}: trace has no requests")
    order = np.argsort(seconds, kind="stable")
    inputs = np.maximum(np.asarray(inputs, dtype=np.int64)[order], 1)
    outputs = np.maximum(np.asarray(outputs, dtype=np.int64)[order], 1)
    arrival = seconds[order] - seconds[order][0]
    return RequestTrace(name=name, arrival_s=arrival, input_tokens=inputs, output_tokens=outputs)
