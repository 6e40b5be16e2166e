"""Running a plan: the missing points fanned out over a local process pool or a Ray cluster."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tokenfab.sweep.evaluate import run_point, warm_up
from tokenfab.sweep.spec import SweepPlan, SweepPoint
from tokenfab.sweep.store import PointStore


@dataclass
class SweepOutcome:
    """What a run did: rows in plan order, and how many were computed now or found from before."""

    plan: SweepPlan
    rows: list[dict]
    computed: int
    resumed: int
    executor: str
    wall_s: float

    @property
    def failed(self) -> int:
        return sum(1 for r in self.rows if r.get("error"))


def run_sweep(
    plan: SweepPlan,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    ray_address: str | None = None,
    use_ray: bool = False,
    on_start: Callable[[int, int], None] | None = None,
    on_row: Callable[[dict], None] | None = None,
    max_points: int | None = None,
    catalog_dirs: Iterable[str | Path] = (),
) -> SweepOutcome:
    """Compute the plan's missing points and return every row.

    Parameters
    ----------
    plan : SweepPlan
    out_dir : path
        Where ``points.jsonl`` lives; rows already there (same key) are not recomputed.
    workers : int, optional
        Processes of the local pool, or CPUs of a local Ray instance; default the machine's cores.
    ray_address, use_ray
        Run on Ray: ``ray.init(address=ray_address)``, or a local instance bound to 127.0.0.1 when None.
    on_start, on_row
        Called with (points to compute, points already done), and with each new row (progress bars).
    max_points : int, optional
        Stop after this many new points (a deliberate partial run; the rest resumes later).
    catalog_dirs : paths
        User catalog directories laid over the bundled catalog (must be readable by every worker).
    """
    from tokenfab.catalog.load import load_catalog

    started = time.perf_counter()
    store = PointStore(out_dir)
    done = store.rows()
    todo = [p for p in plan.points if p.key not in done]
    if max_points is not None:
        todo = todo[:max_points]
    resumed = len(plan.points) - len([p for p in plan.points if p.key not in done])
    workers = max(1, workers or os.cpu_count() or 1)
    if on_start:
        on_start(len(todo), resumed)
    computed = 0
    with store.writer() as append:
        if todo:
            execute = _execute_on_ray if use_ray else _execute_locally
            dirs = tuple(str(Path(d).resolve()) for d in catalog_dirs)
            load_catalog(dirs)  # a bad catalog is the user's input error, raised here once, not per point
            for row in execute(todo, workers, ray_address, dirs):
                append(row)
                done[row["point_key"]] = row
                computed += 1
                if on_row:
                    on_row(row)
    rows = [done[p.key] for p in plan.points if p.key in done]
    return SweepOutcome(
        plan=plan,
        rows=rows,
        computed=computed,
        resumed=resumed,
        executor="ray" if use_ray else "local",
        wall_s=time.perf_counter() - started,
    )


def _init_pool_worker(catalog_dirs: tuple[str, ...]) -> None:
    """Pool worker start: leave Ctrl-C to the parent (which stops the sweep), then warm up."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warm_up(catalog_dirs)


def _execute_locally(
    points: list[SweepPoint], workers: int, _address: str | None, catalog_dirs: tuple[str, ...]
) -> Iterator[dict]:
    """Rows as they finish on a local process pool; workers are forked after the parent warmed up."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    warm_up(catalog_dirs)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    context = multiprocessing.get_context(method)
    workers = min(workers, len(points))
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_pool_worker, initargs=(catalog_dirs,)
    ) as pool:
        pending = set()
        queue = iter(points)
        try:
            for point in itertools.islice(queue, 4 * workers):
                pending.add(pool.submit(run_point, point, catalog_dirs))
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    following = next(queue, None)
                    if following is not None:
                        pending.add(pool.submit(run_point, following, catalog_dirs))
                    yield future.result()
        except BaseException:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise


RAY_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray reads this (into ``ray_constants.ENABLE_RAY_CLUSTER``) to decide whether 127.0.0.1 is resolved to the
machine's reachable address; off, a local instance listens on loopback only."""


def _execute_on_ray(
    points: list[SweepPoint], workers: int, address: str | None, catalog_dirs: tuple[str, ...]
) -> Iterator[dict]:
    """Rows as they finish on Ray: a local instance (127.0.0.1, no dashboard) or the cluster at `address`."""
    local = address is None
    saved_env = os.environ.get(RAY_CLUSTER_ENV)
    if local:
        os.environ[RAY_CLUSTER_ENV] = "0"
    try:
        import ray
        from ray._private import ray_constants
    except ImportError:
        raise RuntimeError("--ray needs Ray: pip install 'tokenfab[ray]'") from None
    saved_constant = ray_constants.ENABLE_RAY_CLUSTER
    started_here = not ray.is_initialized()
    try:
        if started_here and local:
            # Ray 2.60 turns _node_ip_address="127.0.0.1" into the machine's address while clusters are enabled.
            ray_constants.ENABLE_RAY_CLUSTER = False
            ray.init(
                address=None,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                num_cpus=workers,
                log_to_driver=False,
                configure_logging=False,
            )
        elif started_here:
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise RuntimeError(
                    f"cannot connect to Ray at {address!r}: {' '.join(str(exc).split())}"
                ) from None
        remote_point = ray.remote(num_cpus=1)(run_point)
        in_flight_max = 4 * max(1, int(ray.cluster_resources().get("CPU", workers)))
        queue = iter(points)
        pending = [remote_point.remote(p, catalog_dirs) for p in itertools.islice(queue, in_flight_max)]
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            point = next(queue, None)
            if point is not None:
                pending.append(remote_point.remote(point, catalog_dirs))
            yield ray.get(finished[0])
    finally:
        if started_here and ray.is_initialized():
            ray.shutdown()
        ray_constants.ENABLE_RAY_CLUSTER = saved_constant
        if local:
            if saved_env is None:
                os.environ.pop(RAY_CLUSTER_ENV, None)
            else:
                os.environ[RAY_CLUSTER_ENV] = saved_env
