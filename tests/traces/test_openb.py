"""Readers of the openb (Alibaba GPU trace v2023) node and pod lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tokenfab.traces.llm import shared_data_dir
from tokenfab.traces.openb import TraceFormatError, read_node_list, read_pod_list

OPENB_DIR = shared_data_dir() / "alibaba-openb"

NODES = "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,P100\nn1,96000,393216,8,G2\nn2,32000,65536,0,\n"
PODS = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos\n"
    "p0,12000,16384,1,1000,,LS\n"
    "p1,6000,12288,1,460,G2|T4,BE\n"
    "p2,88000,327680,8,1000,,LS\n"
    "p3,4000,0,0,0,,BE\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_node_list(tmp_path):
    nodes = read_node_list(write(tmp_path, "nodes.csv", NODES))
    assert nodes.names == ("n0", "n1", "n2")
    assert nodes.cpu_milli.tolist() == [64000, 96000, 32000]
    assert nodes.gpu_count.tolist() == [2, 8, 0]
    assert nodes.gpu_model == ("P100", "G2", "")
    assert nodes.total_gpu_milli == 10_000


def test_read_pod_list(tmp_path):
    pods = read_pod_list(write(tmp_path, "pods.csv", PODS))
    assert len(pods) == 4
    assert pods.num_gpu.tolist() == [1, 1, 8, 0]
    assert pods.gpu_milli.tolist() == [1000, 460, 1000, 0]
    assert pods.gpu_spec == ("", "G2|T4", "", "")
    assert pods.memory_mib.dtype == np.int64


def test_pod_list_without_gpu_spec_column(tmp_path):
    pods = read_pod_list(
        write(tmp_path, "pods.csv", "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1000,10,1,500\n")
    )
    assert pods.gpu_spec == ("",)


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("sn,cpu_milli,memory_mib,gpu\nn0,1,1,1\n", 1, "model"),
        (NODES.replace("n1,96000", "n1,96k"), 3, "cpu_milli"),
        (NODES.replace("393216,8", "393216,-8"), 3, "gpu"),
        (NODES.replace("n1,", ",", 1), 3, "sn"),
        (NODES.replace("8,G2", "8,"), 3, "model"),
        (NODES + "n0,1,1,0,\n", 5, "sn"),
    ],
)
def test_node_list_errors_name_file_line_field(tmp_path, text, line, field):
    path = write(tmp_path, "bad_nodes.csv", text)
    with pytest.raises(TraceFormatError) as err:
        read_node_list(path)
    message = str(err.value)
    assert f"{path}:{line}:" in message and f"'{field}'" in message
    assert "\n" not in message
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("name,cpu_milli,memory_mib,num_gpu\np,1,1,1\n", 1, "gpu_milli"),
        (PODS.replace("p1,6000", "p1,six"), 3, "cpu_milli"),
        (PODS.replace("1,460,", "1,0,"), 3, "gpu_milli"),
        (PODS.replace("1,460,", "1,1460,"), 3, "gpu_milli"),
        (PODS.replace("8,1000", "8,500"), 4, "gpu_milli"),
        (PODS.replace("p3,", ",", 1), 5, "name"),
        (PODS.replace("0,0,,BE", "x,0,,BE"), 5, "num_gpu"),
    ],
)
def test_pod_list_errors_name_file_line_field(tmp_path, text, line, field):
    path = write(tmp_path, "bad_pods.csv", text)
    with pytest.raises(TraceFormatError) as err:
        read_pod_list(path)
    message = str(err.value)
    assert f"{path}:{line}:" in message and f"'{field}'" in message


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(TraceFormatError, match="no such file"):
        read_node_list(tmp_path / "nope.csv")
    with pytest.raises(TraceFormatError, match="empty file"):
        read_pod_list(write(tmp_path, "empty.csv", ""))
    with pytest.raises(TraceFormatError, match="no rows"):
        read_pod_list(write(tmp_path, "header.csv", "name,cpu_milli,memory_mib,num_gpu,gpu_milli\n"))
    with pytest.raises(TraceFormatError, match="fields"):
        read_pod_list(
            write(tmp_path, "wide.csv", "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,0,0,9\n")
        )


def test_shipped_openb_files():
    if not OPENB_DIR.is_dir():
        pytest.skip(f"shared data not found at {OPENB_DIR} (the openb trace is needed for this test)")
    nodes = read_node_list(OPENB_DIR / "openb_node_list_gpu_node.csv")
    assert len(nodes) == 1213 and int(nodes.gpu_count.sum()) == 6212
    for path in sorted(OPENB_DIR.glob("openb_pod_list_*.csv")):
        pods = read_pod_list(path)
        assert len(pods) > 8000, path
    assert len(read_pod_list(OPENB_DIR / "openb_pod_list_default.csv")) == 8152
