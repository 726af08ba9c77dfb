"""Per-evaluation cost of the distributed objective against the in-process one.

For each number of rows, the data are generated on the workers of a LocalCluster
(2 worker processes of 1 thread each, on 127.0.0.1), validated and persisted once as
``DaskBackpropClassifier.fit`` does, and one cost-and-gradient evaluation (what L-BFGS-B
asks for about 1.1 times per iteration) is timed both ways:

* in-process: ``BackpropClassifier``'s objective on the same data, in numpy, on one
  thread (the estimator limits BLAS to one thread while it minimises);
* distributed: ``DaskBackpropClassifier``'s objective: send theta, partial sums on every
  block, gather and add, finish.

It prints medians and writes them as JSON. Run from the project's root::

    python benchmarks/dask_overhead.py                 # 1e4 to 1e6 rows, about 3 minutes
    python benchmarks/dask_overhead.py --rows 10000 100000 --repeat 5

Timings on a shared machine are noisy: compare medians and ratios, not single numbers.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

RESULTS = Path(__file__).resolve().parent / "results"


def _median_ms(evaluate, theta, repeat):
    evaluate(theta)  # warm up: buffers, imports, connections
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        evaluate(theta)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def measure(client, n_rows, n_features, hidden, blocks_per_thread, repeat, seed=0):
    import dask.array as da

    from sklearn_bp import BackpropClassifier, backprop
    from sklearn_bp.dask import DaskBackpropClassifier

    n_threads = sum(client.nthreads().values())
    n_blocks = max(1, blocks_per_thread * n_threads)
    rows_per_block = -(-n_rows // n_blocks)
    X = da.random.default_rng(seed).standard_normal(
        (n_rows, n_features), chunks=(rows_per_block, n_features)
    )
    y = ((X[:, 0] * X[:, 1] + X[:, 2]) > 0).astype(np.int64)

    model = DaskBackpropClassifier(client, hidden_layer_sizes=hidden)
    start = time.perf_counter()
    blocks = model._persist_blocks(client, X, y, None)
    setup_s = time.perf_counter() - start
    layer_sizes = (n_features, *hidden, 1)
    theta = np.random.default_rng(seed).uniform(-0.1, 0.1, backprop.n_params(layer_sizes))
    distributed = model._objective(blocks, None, layer_sizes, None)

    X_local, y_local = client.compute([X, y], sync=True)
    Y_local = y_local[:, None].astype(np.float64)
    in_process = BackpropClassifier(hidden_layer_sizes=hidden)._objective(
        X_local, Y_local, layer_sizes, None
    )
    with threadpool_limits(limits=1, user_api="blas"):
        local_ms = _median_ms(in_process, theta, repeat)
        dask_ms = _median_ms(distributed, theta, repeat)
        cost_local, grad_local = in_process(theta)
        cost_dask, grad_dask = distributed(theta)
    blocks.release()
    return {
        "n_rows": n_rows,
        "n_blocks": len(X.chunks[0]),
        "n_params": int(theta.size),
        "setup_s": setup_s,
        "in_process_ms": local_ms,
        "distributed_ms": dask_ms,
        "speedup": local_ms / dask_ms,
        # What the distributed path costs beyond a perfect split of the work.
        "overhead_ms": dask_ms - local_ms / n_threads,
        "cost_rel_diff": abs(cost_dask - cost_local) / abs(cost_local),
        "grad_rel_diff": float(np.linalg.norm(grad_dask - grad_local)
                               / np.linalg.norm(grad_local)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=float, nargs="+",
                        default=[1e4, 3e4, 1e5, 3e5, 1e6])
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--hidden", type=int, nargs="+", default=[25])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--blocks-per-thread", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--output", type=Path, default=RESULTS / "dask_overhead.json")
    args = parser.parse_args(argv)

    from distributed import Client, LocalCluster

    hidden = tuple(args.hidden)
    load_before = os.getloadavg()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        rows = []
        header = (f"{'rows':>9} {'blocks':>6} {'setup s':>8} {'in-proc ms':>10} "
                  f"{'dask ms':>9} {'speedup':>7} {'overhead ms':>11} {'grad diff':>9}")
        print(f"{args.features} features, hidden {hidden}, {args.workers} workers x 1 "
              f"thread, {args.blocks_per_thread} blocks per thread, median of "
              f"{args.repeat}")
        print(header)
        for n_rows in args.rows:
            row = measure(client, int(n_rows), args.features, hidden,
                          args.blocks_per_thread, args.repeat)
            rows.append(row)
            print(f"{row['n_rows']:>9} {row['n_blocks']:>6} {row['setup_s']:>8.2f} "
                  f"{row['in_process_ms']:>10.1f} {row['distributed_ms']:>9.1f} "
                  f"{row['speedup']:>7.2f} {row['overhead_ms']:>11.1f} "
                  f"{row['grad_rel_diff']:>9.1e}", flush=True)

    import dask
    import distributed

    report = {
        "benchmark": "dask_overhead",
        "settings": {"features": args.features, "hidden": list(hidden),
                     "workers": args.workers, "threads_per_worker": 1,
                     "blocks_per_thread": args.blocks_per_thread,
                     "repeat": args.repeat},
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "dask": dask.__version__, "distributed": distributed.__version__,
                        "cpus": os.cpu_count(), "machine": platform.machine(),
                        # Other work on the machine slows both paths: record how busy it was.
                        "load_average_before": load_before,
                        "load_average_after": os.getloadavg()},
        "results": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
