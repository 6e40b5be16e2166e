"""Readers for the Alibaba GPU cluster trace v2023 ("openb") node and pod lists.

The format is the one published in github.com/alibaba/clusterdata, ``cluster-trace-gpu-v2023/csv``
and used by the FGD experiment (Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing
Workloads with Fragmentation Gradient Descent", USENIX ATC'23):

* node list: ``sn,cpu_milli,memory_mib,gpu,model`` (one row per node; ``gpu`` whole GPUs of ``model``)
* pod list: ``name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,...]``; ``gpu_milli`` is the
  share of one GPU (of 1000) for a GPU-sharing pod (``num_gpu == 1``); ``gpu_spec`` (optional column)
  is an ``|``-separated list of the GPU models the pod accepts, empty for any model. Other columns
  (qos, phase, times) are accepted and ignored.

The readers validate every row and raise :class:`TraceFormatError` (a ``ValueError``) with a one-line
message naming the file, the line and the field. They do no scheduling; see
:mod:`tokenfab.fgd` for the placement engine.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tokenfab.units import MILLI_PER_GPU

NODE_COLUMNS: tuple[str, ...] = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
POD_COLUMNS: tuple[str, ...] = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
POD_OPTIONAL_COLUMNS: tuple[str, ...] = ("gpu_spec",)


class TraceFormatError(ValueError):
    """A trace file that does not follow the expected format (message names file, line and field)."""


@dataclass(frozen=True)
class NodeList:
    """The nodes of a cluster, as parallel arrays (one entry per node).

    Attributes
    ----------
    names : node serial numbers (``sn``)
    cpu_milli : CPU capacity in milli-cores
    memory_mib : main memory capacity in MiB
    gpu_count : number of whole GPUs
    gpu_model : GPU model name ("" for a node without GPUs)
    """

    names: tuple[str, ...]
    cpu_milli: np.ndarray
    memory_mib: np.ndarray
    gpu_count: np.ndarray
    gpu_model: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)

    @property
    def total_gpu_milli(self) -> int:
        """Cluster GPU capacity in milli-GPU (1000 per GPU)."""
        return int(self.gpu_count.sum()) * MILLI_PER_GPU


@dataclass(frozen=True)
class PodList:
    """The pods of a workload, as parallel arrays (one entry per pod), in file order.

    Attributes
    ----------
    names : pod names
    cpu_milli : CPU request in milli-cores
    memory_mib : memory request in MiB
    num_gpu : number of GPUs requested (0 for a CPU-only pod)
    gpu_milli : per-GPU share requested, in milli-GPU (as written in the file)
    gpu_spec : accepted GPU models, ``|``-separated ("" = any model)
    """

    names: tuple[str, ...]
    cpu_milli: np.ndarray
    memory_mib: np.ndarray
    num_gpu: np.ndarray
    gpu_milli: np.ndarray
    gpu_spec: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)


def _fail(path: Path, line: int, field: str, message: str) -> TraceFormatError:
    return TraceFormatError(f"{path}:{line}: field '{field}': {message}")


def _parse_nonnegative_int(path: Path, line: int, field: str, text: str) -> int:
    value_text = (text or "").strip()
    try:
        value = int(value_text)
    except ValueError:
        try:
            as_float = float(value_text)
        except ValueError:
            raise _fail(path, line, field, f"expected a non-negative integer, got {text!r}") from None
        if not as_float.is_integer():
            raise _fail(path, line, field, f"expected a non-negative integer, got {text!r}") from None
        value = int(as_float)
    if value < 0:
        raise _fail(path, line, field, f"expected a non-negative integer, got {text!r}")
    return value


def _read_rows(path: Path, required: tuple[str, ...]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    path = Path(path)
    if not path.is_file():
        raise TraceFormatError(f"{path}: no such file")
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise TraceFormatError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise TraceFormatError(
                f"{path}:1: empty file, expected a header with {', '.join(required)}"
            ) from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise TraceFormatError(f"{path}:1: not a CSV file: {exc}") from None
        header = [column.strip() for column in header]
        missing = [column for column in required if column not in header]
        if missing:
            raise TraceFormatError(
                f"{path}:1: field '{missing[0]}': missing column (expected columns {', '.join(required)})"
            )
        rows: list[tuple[int, dict[str, str]]] = []
        try:
            for record in reader:
                line = reader.line_num
                if not record or all(not cell.strip() for cell in record):
                    continue
                if len(record) > len(header):
                    raise TraceFormatError(
                        f"{path}:{line}: {len(record)} fields, the header has {len(header)}"
                    )
                record = record + [""] * (len(header) - len(record))
                rows.append((line, dict(zip(header, record, strict=True))))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise TraceFormatError(f"{path}:{reader.line_num}: not a valid CSV row: {exc}") from None
    if not rows:
        raise TraceFormatError(f"{path}:2: no rows after the header")
    return header, rows


def read_node_list(path: str | Path) -> NodeList:
    """Read an openb node list (``sn,cpu_milli,memory_mib,gpu,model``).

    Raises
    ------
    TraceFormatError
        on a missing column, an empty name, a value that is not a non-negative integer, a node with
        GPUs but no model, or a duplicate node name.
    """
    path = Path(path)
    _, rows = _read_rows(path, NODE_COLUMNS)
    names: list[str] = []
    cpu, mem, gpus, models = [], [], [], []
    seen: set[str] = set()
    for line, row in rows:
        name = row["sn"].strip()
        if not name:
            raise _fail(path, line, "sn", "empty node name")
        if name in seen:
            raise _fail(path, line, "sn", f"duplicate node name {name!r}")
        seen.add(name)
        cpu.append(_parse_nonnegative_int(path, line, "cpu_milli", row["cpu_milli"]))
        mem.append(_parse_nonnegative_int(path, line, "memory_mib", row["memory_mib"]))
        gpu = _parse_nonnegative_int(path, line, "gpu", row["gpu"])
        model = row["model"].strip()
        if model.lower() == "nan":
            model = ""
        if gpu > 0 and not model:
            raise _fail(path, line, "model", f"node {name!r} has {gpu} GPUs but no GPU model")
        names.append(name)
        gpus.append(gpu)
        models.append(model)
    return NodeList(
        names=tuple(names),
        cpu_milli=np.asarray(cpu, dtype=np.int64),
        memory_mib=np.asarray(mem, dtype=np.int64),
        gpu_count=np.asarray(gpus, dtype=np.int64),
        gpu_model=tuple(models),
    )


def read_pod_list(path: str | Path) -> PodList:
    """Read an openb pod list (``name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,...]``).

    Raises
    ------
    TraceFormatError
        on a missing column, an empty name, a value that is not a non-negative integer, or a GPU pod
        (``num_gpu > 0``) whose ``gpu_milli`` is 0 or above 1000.
    """
    path = Path(path)
    header, rows = _read_rows(path, POD_COLUMNS)
    has_spec = "gpu_spec" in header
    names: list[str] = []
    cpu, mem, num, milli, specs = [], [], [], [], []
    for line, row in rows:
        name = row["name"].strip()
        if not name:
            raise _fail(path, line, "name", "empty pod name")
        n_gpu = _parse_nonnegative_int(path, line, "num_gpu", row["num_gpu"])
        g_milli = _parse_nonnegative_int(path, line, "gpu_milli", row["gpu_milli"])
        if n_gpu > 0 and not 0 < g_milli <= MILLI_PER_GPU:
            raise _fail(path, line, "gpu_milli", f"a GPU pod needs 1..1000 milli-GPU, got {g_milli}")
        if n_gpu > 1 and g_milli != MILLI_PER_GPU:
            raise _fail(
                path, line, "gpu_milli", f"a {n_gpu}-GPU pod must ask for whole GPUs (1000), got {g_milli}"
            )
        spec = row["gpu_spec"].strip() if has_spec else ""
        if spec.lower() == "nan":
            spec = ""
        names.append(name)
        cpu.append(_parse_nonnegative_int(path, line, "cpu_milli", row["cpu_milli"]))
        mem.append(_parse_nonnegative_int(path, line, "memory_mib", row["memory_mib"]))
        num.append(n_gpu)
        milli.append(g_milli)
        specs.append(spec)
    return PodList(
        names=tuple(names),
        cpu_milli=np.asarray(cpu, dtype=np.int64),
        memory_mib=np.asarray(mem, dtype=np.int64),
        num_gpu=np.asarray(num, dtype=np.int64),
        gpu_milli=np.asarray(milli, dtype=np.int64),
        gpu_spec=tuple(specs),
    )
