"""The GPU-sharing placement engine and the FGD experiment replay (tokenfab.fgd)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tokenfab import fgd as g
from tokenfab.cli import app
from tokenfab.traces.llm import shared_data_dir
from tokenfab.traces.openb import NodeList, PodList, read_node_list, read_pod_list

DATA_DIR = shared_data_dir()
OPENB_DIR = DATA_DIR / "alibaba-openb"
EXPECTED_CSV = DATA_DIR / "fgd-expected" / "analysis_allo_discrete.csv"


def node_list(rows: list[tuple[int, int, int, str]]) -> NodeList:
    return NodeList(
        names=tuple(f"n{i}" for i in range(len(rows))),
        cpu_milli=np.array([r[0] for r in rows], dtype=np.int64),
        memory_mib=np.array([r[1] for r in rows], dtype=np.int64),
        gpu_count=np.array([r[2] for r in rows], dtype=np.int64),
        gpu_model=tuple(r[3] for r in rows),
    )


def pod_list(rows: list[tuple[int, int, int, int, str]]) -> PodList:
    return PodList(
        names=tuple(f"p{i:03d}" for i in range(len(rows))),
        cpu_milli=np.array([r[0] for r in rows], dtype=np.int64),
        memory_mib=np.array([r[1] for r in rows], dtype=np.int64),
        num_gpu=np.array([r[2] for r in rows], dtype=np.int64),
        gpu_milli=np.array([r[3] for r in rows], dtype=np.int64),
        gpu_spec=tuple(r[4] for r in rows),
    )


def request(cpu=1000, mem=0, num=1, milli=1000, spec=0, shape=0) -> g.PodRequest:
    return g.PodRequest(
        cpu_milli=cpu, memory_mib=mem, num_gpu=num, gpu_milli=milli, spec_code=spec, shape_code=shape
    )


# ------------------------------------------------------------------------------------------
# Scores of each policy on hand-made states, checked by hand
# ------------------------------------------------------------------------------------------


def test_best_fit_score_by_hand():
    # left = 0.5·(64000−32000)/128000 + 0.5·(2000−1000)/8000 = 0.125 + 0.0625 → ⌊100·0.8125⌋ = 81
    scores = g.best_fit_scores(np.array([64000, 32000]), np.array([2000, 1000]), request(cpu=32000))
    assert scores.tolist() == [81, 100]


def test_dot_product_score_by_hand():
    # dot = (64000/128000)(32000/128000) + (2000/8000)(1000/8000) = 0.125 + 0.03125; 1 − dot/2 = 0.921875
    scores = g.dot_product_scores(np.array([64000, 128000]), np.array([2000, 8000]), request(cpu=32000))
    assert scores.tolist() == [92, 81]


def test_gpu_packing_score_by_hand():
    gpu_free = np.array([[1000, 1000], [500, 1000], [0, 1000]])
    count = np.array([2, 2, 2])
    assert g.gpu_packing_scores(gpu_free, count, request(milli=300)).tolist() == [31, 95, 49]
    assert g.gpu_packing_scores(gpu_free, count, request(milli=600)).tolist() == [31, 49, 49]
    assert g.gpu_packing_scores(gpu_free, count, request(milli=1000)).tolist() == [31, 49, 49]
    assert g.gpu_packing_scores(gpu_free, count, request(num=0, milli=0)).tolist() == [0, 0, 0]


def test_gpu_clustering_score_by_hand():
    affinity = np.zeros((4, 6), dtype=np.int64)
    affinity[1, 0] = 2  # share-gpu only
    affinity[2, 1] = 1  # 1-gpu only
    affinity[3, [0, 1]] = 1  # both
    free = np.array([8000, 4000, 7000, 6000])
    share = request(milli=500)
    assert share.affinity_tag == 0
    assert g.gpu_clustering_scores(affinity, free, share).tolist() == [25, 12 + 75, 3 + 0, 6 + 50]
    assert g.gpu_clustering_scores(affinity, free, request(num=0, milli=0)).tolist() == [0, 0, 0, 0]


def small_fgd_setup():
    """Two typical pods, equally likely: A = (1 CPU, 500 milli), B = (1 CPU, 1 whole GPU)."""
    nodes = node_list([(8000, 10**6, 2, "T4")] * 3)
    cluster = g.Cluster.from_node_list(nodes)
    pods = pod_list([(1000, 1, 1, 500, ""), (1000, 1, 1, 1000, "")])
    workload = g.PodSet.from_pod_list(pods, cluster)
    frag = g.fragmentation_model(g.typical_pods(workload), workload)
    return cluster, workload, frag


def test_fgd_fragment_by_hand():
    _, _, frag = small_fgd_setup()
    states = np.array([[1000, 1000], [300, 1000], [300, 400], [1000, 1000]])
    cpu = np.array([8000, 8000, 8000, 500])
    # [300,1000]: A and B fit, the 300 sliver is a fragment for both → 300
    # [300, 400]: neither fits → all 700 free is a fragment; 500 CPU left: neither fits → 2000
    expected = [0, 300, 700, 2000]
    got = g.fragment_scaled(frag, states, cpu, np.zeros(4, dtype=np.int64)) / frag.total_weight
    assert got.tolist() == expected


def test_fgd_score_and_gpu_choice_by_hand():
    cluster, workload, frag = small_fgd_setup()
    state = g.ClusterState.empty(cluster)
    state.gpu_free[1] = [700, 1000]
    state.gpu_free[2] = [0, 0]
    for arrays in (state.gpu_free_total, state.gpu_full_count, state.gpu_free_max):
        arrays[:] = [
            state.gpu_free[i].sum()
            if arrays is state.gpu_free_total
            else (state.gpu_free[i] == 1000).sum()
            if arrays is state.gpu_full_count
            else state.gpu_free[i].max()
            for i in range(3)
        ]
    scorer = g.FgdScorer(frag, cluster)
    nodes = np.array([0, 1])
    scores, gpus = scorer.score(state, request(milli=700, shape=99), nodes, np.random.default_rng(0))
    # node 0 [1000,1000] → [300,1000]: F 0 → 300, ⌊100 σ(−0.3)⌋ = 42 (first GPU on the tie)
    # node 1 [700,1000]: F = (0 + 700)/2 = 350; GPU0 → [0,1000]: F 0, Δ = +350 → ⌊100 σ(0.35)⌋ = 58
    assert scores.tolist() == [42, 58]
    assert gpus.tolist() == [0, 0]
    assert g.sigmoid_score(np.array([0]), 1).tolist() == [50]


# ------------------------------------------------------------------------------------------
# Filter: property test against a per-node brute force
# ------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    n_nodes=st.integers(1, 6),
    cpu=st.integers(0, 20000),
    mem=st.integers(0, 2000),
    kind=st.sampled_from(["cpu", "share", "whole1", "whole2", "whole4"]),
    milli=st.integers(1, 999),
    spec=st.sampled_from(["", "T4", "G2|P100"]),
)
def test_filter_matches_brute_force(data, n_nodes, cpu, mem, kind, milli, spec):
    models = data.draw(st.lists(st.sampled_from(["T4", "G2", "P100"]), min_size=n_nodes, max_size=n_nodes))
    counts = data.draw(st.lists(st.sampled_from([1, 2, 4]), min_size=n_nodes, max_size=n_nodes))
    nodes = node_list([(16000, 1000, c, m) for c, m in zip(counts, models, strict=True)])
    num, gm = {
        "cpu": (0, 0),
        "share": (1, milli),
        "whole1": (1, 1000),
        "whole2": (2, 1000),
        "whole4": (4, 1000),
    }[kind]
    pods = pod_list([(cpu, mem, num, gm, spec)])
    cluster = g.Cluster.from_node_list(nodes)
    workload = g.PodSet.from_pod_list(pods, cluster)
    state = g.ClusterState.empty(cluster)
    for i in range(n_nodes):
        free = data.draw(
            st.lists(st.sampled_from([0, 150, 500, 999, 1000]), min_size=counts[i], max_size=counts[i])
        )
        state.gpu_free[i, : counts[i]] = free
        state.cpu_free[i] = data.draw(st.integers(0, 16000))
        state.mem_free[i] = data.draw(st.integers(0, 1000))
    state.gpu_free_total[:] = state.gpu_free.sum(axis=1)
    state.gpu_full_count[:] = (state.gpu_free == 1000).sum(axis=1)
    state.gpu_free_max[:] = state.gpu_free.max(axis=1)
    pod = g.pod_request(workload, 0)
    got = g.feasible_nodes(state, pod, workload.spec_allowed).tolist()
    expected = []
    for i in range(n_nodes):
        fits = state.cpu_free[i] >= cpu and state.mem_free[i] >= mem
        if num > 0:
            wanted = [s for s in spec.split("|") if s]
            fits = fits and (not wanted or models[i] in wanted)
            fits = fits and sum(1 for f in state.gpu_free[i, : counts[i]] if f >= gm) >= num
        if fits:
            expected.append(i)
    assert got == expected


# ------------------------------------------------------------------------------------------
# Replay invariants on a small random cluster
# ------------------------------------------------------------------------------------------


def small_random_case(seed: int = 7):
    rng = np.random.default_rng(seed)
    node_rows = []
    for i in range(30):
        kind = i % 3
        node_rows.append(
            [(96000, 393216, 8, "G2"), (104000, 524288, 2, "T4"), (64000, 262144, 4, "V100M16")][kind]
        )
    shapes = [
        (12000, 40000, 1, 1000, ""),
        (6000, 12288, 1, 460, ""),
        (3152, 20000, 1, 810, "G2"),
        (4000, 8000, 1, 320, ""),
        (32000, 60000, 0, 0, ""),
        (48000, 200000, 4, 1000, "V100M16|G2"),
        (88000, 300000, 8, 1000, ""),
    ]
    weights = np.array([30, 25, 20, 10, 8, 4, 1], dtype=float)
    picks = rng.choice(len(shapes), size=140, p=weights / weights.sum())
    return g.Cluster.from_node_list(node_list(node_rows)), pod_list([shapes[k] for k in picks])


@pytest.mark.parametrize("policy", list(g.REPLAY_POLICIES))
def test_replay_invariants_and_determinism(policy):
    cluster, pods = small_random_case()
    workload = g.PodSet.from_pod_list(pods, cluster)
    result = g.replay(cluster, workload, policy, seed=3)
    again = g.replay(cluster, workload, policy, seed=3)
    assert np.array_equal(result.node_index, again.node_index)
    assert np.array_equal(result.gpu_index, again.gpu_index)
    assert np.array_equal(result.pod_index, again.pod_index)
    # rebuild the usage from the placements: nothing over-committed
    cpu = np.zeros(cluster.n_nodes, dtype=np.int64)
    mem = np.zeros(cluster.n_nodes, dtype=np.int64)
    gpu_used = np.zeros((cluster.n_nodes, cluster.gpu_slots), dtype=np.int64)
    state = g.ClusterState.empty(cluster)
    for pod_idx, node, gpu in zip(result.pod_index, result.node_index, result.gpu_index, strict=True):
        if node < 0:
            continue
        pod = g.pod_request(workload, int(pod_idx))
        cpu[node] += pod.cpu_milli
        mem[node] += pod.memory_mib
        if pod.is_gpu_share:
            gpu_used[node, gpu] += pod.gpu_milli
        g.allocate(state, int(node), pod, int(gpu))
    assert (cpu <= cluster.cpu_milli).all() and (mem <= cluster.memory_mib).all()
    assert (gpu_used <= 1000).all()
    assert (state.gpu_free >= 0).all() and (state.gpu_free <= 1000).all()
    slots = np.arange(cluster.gpu_slots)[None, :]
    assert (state.gpu_free[slots >= cluster.gpu_count[:, None]] == 0).all()
    assert state.allocated_gpu_milli == result.allocated_gpu_milli[-1]
    assert (np.diff(result.allocated_gpu_milli) >= 0).all()
    assert (result.allocated_gpu_milli <= result.arrived_gpu_milli).all()
    placed = result.node_index >= 0
    assert placed.sum() > 0
    # GPU-model constraints respected
    for pod_idx, node in zip(result.pod_index[placed], result.node_index[placed], strict=True):
        if workload.num_gpu[pod_idx] > 0:
            assert workload.spec_allowed[workload.spec_code[pod_idx], cluster.model_code[node]]


def test_arrival_order_tops_up_to_ratio():
    cluster, pods = small_random_case()
    workload = g.PodSet.from_pod_list(pods, cluster)
    order = g.arrival_order(workload, cluster.total_gpu_milli, 1.3, np.random.default_rng(1))
    assert sorted(order[: workload.n_pods].tolist()) == list(range(workload.n_pods))
    total = workload.gpu_milli_total[order].sum()
    assert total <= 1.3 * cluster.total_gpu_milli + 8000
    assert total >= 1.3 * cluster.total_gpu_milli - 1000


def test_allocation_curve_buckets_by_rounded_arrived_pct():
    result = g.ReplayResult(
        policy="x",
        seed=0,
        pod_index=np.arange(4),
        node_index=np.zeros(4, dtype=np.int64),
        gpu_index=np.zeros(4, dtype=np.int64),
        arrived_gpu_milli=np.array([4, 6, 10, 10]),
        allocated_gpu_milli=np.array([4, 6, 8, 8]),
        cluster_gpu_milli=100,
    )
    curve = g.allocation_curve(result, levels_pct=[4, 6, 10, 5, 8, 50])
    assert curve[:3].tolist() == [4.0, 6.0, 8.0]
    assert curve[3] == 5.0  # no event at 5 %: the mean of the events at 4–6 %
    assert math.isnan(curve[4]) and math.isnan(curve[5])


def test_unknown_policy():
    with pytest.raises(KeyError):
        g.replay_policy("nope")


def test_tie_break_modes():
    cluster, pods = small_random_case()
    workload = g.PodSet.from_pod_list(pods, cluster)
    ordered = g.replay(cluster, workload, "gpupacking", seed=5)
    shuffled = g.replay(cluster, workload, "gpupacking", seed=5, tie_break="random")
    assert np.array_equal(ordered.pod_index, shuffled.pod_index)
    assert not np.array_equal(ordered.node_index, shuffled.node_index)
    with pytest.raises(ValueError):
        g.replay(cluster, workload, "fgd", seed=5, tie_break="first")


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------


def write_small_trace(tmp_path: Path) -> tuple[Path, Path]:
    cluster_rows = ["sn,cpu_milli,memory_mib,gpu,model"]
    for i in range(12):
        cluster_rows.append(f"n{i},96000,393216,{[8, 2, 4][i % 3]},{['G2', 'T4', 'V100M16'][i % 3]}")
    pod_rows = ["name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec"]
    rng = np.random.default_rng(0)
    for i in range(60):
        k = int(rng.integers(4))
        pod_rows.append(
            [
                f"p{i},12000,40000,1,1000,",
                f"p{i},6000,12288,1,460,",
                f"p{i},4000,8000,0,0,",
                f"p{i},3000,8000,1,810,G2",
            ][k]
        )
    nodes, pods = tmp_path / "nodes.csv", tmp_path / "pods.csv"
    nodes.write_text("\n".join(cluster_rows) + "\n")
    pods.write_text("\n".join(pod_rows) + "\n")
    return nodes, pods


def test_cli_json_on_a_small_trace(tmp_path):
    nodes, pods = write_small_trace(tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "replay-openb",
            "--nodes",
            str(nodes),
            "--pods",
            str(pods),
            "--policy",
            "fgd",
            "--seeds",
            "1-2,5",
            "--json",
            "--jobs",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["policy"] == "fgd" and payload["seeds"] == [1, 2, 5]
    assert payload["curve"][0]["arrived_pct"] == 0 and len(payload["curve"]) == 131
    assert 0 <= payload["unallocated_pct_at_100"] <= 100


def test_cli_table_and_all_policies(tmp_path):
    nodes, pods = write_small_trace(tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "replay-openb",
            "--nodes",
            str(nodes),
            "--pods",
            str(pods),
            "--policy",
            "all",
            "--seeds",
            "7",
            "--jobs",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "unalloc@100" in result.output and "fgd" in result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--policy", "worstfit"], "unknown policy"),
        (["--seeds", "51-42"], "--seeds"),
        (["--seeds", "a"], "--seeds"),
        (["--tie-break", "first"], "--tie-break"),
    ],
)
def test_cli_bad_input_exits_2(tmp_path, args, needle):
    nodes, pods = write_small_trace(tmp_path)
    result = CliRunner().invoke(app, ["replay-openb", "--nodes", str(nodes), "--pods", str(pods), *args])
    assert result.exit_code == 2
    assert needle in result.output


def test_cli_bad_file_exits_2_naming_line(tmp_path):
    nodes, pods = write_small_trace(tmp_path)
    pods.write_text(pods.read_text().replace("p3,", "p3,lots", 1))
    result = CliRunner().invoke(app, ["replay-openb", "--nodes", str(nodes), "--pods", str(pods)])
    assert result.exit_code == 2
    assert "pods.csv:5" in result.output and "cpu_milli" in result.output


# ------------------------------------------------------------------------------------------
# Reproduction of the published experiment (one seed)
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openb_default():
    if not OPENB_DIR.is_dir() or not EXPECTED_CSV.is_file():
        pytest.skip(f"shared data not found at {DATA_DIR} (needs alibaba-openb/ and fgd-expected/)")
    cluster = g.Cluster.from_node_list(read_node_list(OPENB_DIR / "openb_node_list_gpu_node.csv"))
    workload = g.PodSet.from_pod_list(read_pod_list(OPENB_DIR / "openb_pod_list_default.csv"), cluster)
    expected = pd.read_csv(EXPECTED_CSV)
    expected = expected[expected.workload == "openb_pod_list_default"]
    return cluster, workload, expected


@pytest.mark.parametrize("policy", ["bestfit", "gpupacking", "fgd"])
def test_reproduces_published_seed_42(openb_default, policy):
    cluster, workload, expected = openb_default
    label = g.replay_policy(policy).published_label
    published = float(expected[(expected.sc_policy == label) & (expected.seed == 42)]["100"].iloc[0])
    ours = g.allocation_curve(g.replay(cluster, workload, policy, seed=42))[100]
    assert abs(ours - published) <= 2.5, (policy, ours, published)
