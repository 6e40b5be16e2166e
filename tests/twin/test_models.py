"""Pure pieces of the twin: generators, failure draws, power, autoscaling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tokenfab.io.yamlfile import InputError
from tokenfab.twin import autoscale, power
from tokenfab.twin.failures import FAILURE_RATES, LLAMA3_GPU_HOURS, draw_failures
from tokenfab.twin.workload import (
    ACME_KALOS_FALLBACK,
    AcmeShape,
    TrainingSpec,
    daily_factor,
    demand_scale,
    generate_training_jobs,
    load_workload,
    lognormal_sigma,
    read_acme_shape,
    round_gang_gpus,
    trace_minute_profile,
)


def test_lognormal_sigma_reproduces_median_and_mean():
    sigma = lognormal_sigma(124.0, 1259.689)
    rng = np.random.default_rng(0)
    x = 124.0 * np.exp(sigma * rng.standard_normal(400_000))
    assert np.median(x) == pytest.approx(124.0, rel=0.02)
    assert math.exp(sigma**2 / 2) * 124.0 == pytest.approx(1259.689, rel=1e-9)


def test_acme_row_is_read(acme_rows):
    shape = read_acme_shape(acme_rows, "Kalos")
    assert shape == ACME_KALOS_FALLBACK


def test_gangs_are_whole_nodes_below_a_domain_and_whole_domains_above():
    gpus = round_gang_gpus(np.array([0.3, 5, 70, 73, 1000, 10_000]), 4, 72, 1500)
    assert gpus.tolist() == [4, 8, 72, 144, 1008, 1440]


def test_training_generator_offers_the_requested_load():
    # a light-tailed shape so one week's sample converges; Acme's own shapes are heavy-tailed
    spec = TrainingSpec(load=0.5, warm_start=True, gang_scale=1.0, runtime_scale=1.0)
    shape = AcmeShape("test", 64.0, 80.0, 3600.0, 4000.0)
    rng = np.random.default_rng(3)
    arrivals, initial = generate_training_jobs(spec, shape, 100_000, 4, 72, 7 * 86400.0, rng)
    offered = len(arrivals) / (7 * 86400.0) * float(np.mean(arrivals.gpus * arrivals.work_s))
    assert offered / 100_000 == pytest.approx(0.5, rel=0.05)
    assert np.all(np.diff(arrivals.arrival_s) >= 0)
    assert initial.gpus.sum() <= 100_000 and initial.gpus.sum() >= 0.4 * 100_000


def test_daily_factor_spans_trough_to_one():
    t = np.arange(0, 86400, 600.0)
    d = daily_factor(t, 0.4, 14.0)
    assert d.max() == pytest.approx(1.0) and d.min() == pytest.approx(0.4, abs=1e-3)
    assert t[np.argmax(d)] / 3600 == pytest.approx(14.0)


def test_demand_scale_puts_the_peak_at_the_requested_share():
    profile = np.array([1.0, 2.0, 4.0])
    scale = demand_scale(profile, 0.1, 1000, 500.0, 250.0)
    assert scale * 4.0 * 250.0 == pytest.approx(0.1 * 1000 * 500.0)


def test_minute_profile_counts_every_request():
    arrival = np.array([0.0, 10.0, 59.0, 61.0, 180.0])
    profile = trace_minute_profile(arrival)
    assert profile.sum() * 60 == pytest.approx(5)


def test_failure_rates_have_sources_and_llama3_magnitude():
    for rate in FAILURE_RATES.values():
        assert rate.source and rate.repair_source
    gpu = FAILURE_RATES["gpu"]
    assert gpu.per_unit_hour * LLAMA3_GPU_HOURS == pytest.approx(246, abs=1)
    all_per_gpu = sum(r.per_unit_hour for r in FAILURE_RATES.values() if r.per_gpu)
    assert all_per_gpu * LLAMA3_GPU_HOURS == pytest.approx(419, abs=1)


def test_failure_draw_matches_expected_count():
    rng = np.random.default_rng(1)
    counts = [
        len(draw_failures(FAILURE_RATES["gpu"], 16_384, 1.0, 54 * 86400.0, rng).time_s) for _ in range(200)
    ]
    assert np.mean(counts) == pytest.approx(246, rel=0.05)


def test_training_clock_under_cap():
    assert power.training_clock_fraction(1000, 1000, 100, 2.5) == 1.0
    f = power.training_clock_fraction(550, 1000, 100, 2.5)
    assert 100 + 900 * f**2.5 == pytest.approx(550)


def test_cdu_loss_beyond_redundancy_stops_racks():
    assert power.racks_stopped_by_cdu_loss(3, 3, 60) == 0
    assert power.racks_stopped_by_cdu_loss(3, 2, 60) == 20
    assert power.racks_stopped_by_cdu_loss(3, 0, 60) == 60


def test_energy_of_steps():
    assert power.energy_from_steps_kwh(
        np.array([0.0, 3600.0]), np.array([10.0, 20.0]), 7200.0
    ) == pytest.approx(30.0)


def test_autoscaler_covers_demand_with_headroom_and_waits_to_scale_down():
    n = autoscale.replicas_needed(10.0, 200.0, 500.0, 4, 0.1, 1)
    assert n == math.ceil(1.1 * 10 * 200 / (500 * 4))
    assert autoscale.replicas_needed(0.0, 200.0, 500.0, 4, 0.1, 2) == 2
    assert autoscale.scale_target(10, 12) == 12
    assert autoscale.scale_target(10, 9) == 10
    assert autoscale.scale_target(10, 5) == 5


def test_bad_workload_names_file_line_and_field(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("name: x\ntraining:\n  load: 0.5\n  gang_scale: -3\n")
    with pytest.raises(InputError, match=r"w.yaml:4: training.gang_scale: "):
        load_workload(path)
    path.write_text(
        "name: x\npower:\n  grid_events:\n    - {start_h: 1, duration_h: 2, cut_fraction: 0.25, typo: 1}\n"
    )
    with pytest.raises(InputError, match=r"w.yaml:4: power.grid_events\[0\].typo: unknown field"):
        load_workload(path)


def test_request_window_fits_the_budget():
    from tokenfab.twin.request_level import busiest_window

    expected = np.array([1.0, 5.0, 9.0, 4.0, 1.0, 1.0])
    assert busiest_window(expected, 100) == (0, 6)
    first, last = busiest_window(expected, 15)
    assert first <= 2 < last and expected[first:last].sum() <= 15
    assert busiest_window(expected, 6, start_tick=3) == (3, 6)
