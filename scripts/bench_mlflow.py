"""Client-level driver of scripts/bench-mlflow (`--client`), against each
server in turn, at concurrency 1 and 8.

usage: bench_mlflow.py client ITERATIONS NAME=URL[,TOKEN] ...

It times whole `MlflowClient` calls (the client's own work and its hidden
extra requests included), a sequence of 10 calls per iteration, each worker a
thread of one process: calls per second over the run's wall time, p50/p99 per
call. The REST calls themselves are driven by mlflow-driver
(crates/gatehouse-bench), one keep-alive connection per worker of a
single-threaded Rust driver, which leaves the servers the machine's cores.
"""

import logging
import os
import statistics
import sys
import threading
import time
import uuid


def sequence(client, prefix, i, timings):
    name = f"{prefix}-{i}"

    def timed(call, *args, **kw):
        t0 = time.perf_counter()
        out = call(*args, **kw)
        timings.append(time.perf_counter() - t0)
        return out

    timed(client.create_registered_model, name, tags={"team": "bench"})
    mv = timed(client.create_model_version, name, f"s3://bench/{name}/1", run_id="r1")
    timed(client.get_registered_model, name)
    timed(client.get_model_version, name, mv.version)
    timed(client.set_model_version_tag, name, mv.version, "validated", "true")
    timed(client.set_registered_model_alias, name, "champion", mv.version)
    timed(client.get_model_version_by_alias, name, "champion")
    timed(client.search_model_versions, f"name = '{name}'")
    timed(client.search_registered_models, filter_string=f"name = '{name}'")
    timed(client.update_model_version, name, mv.version, description="benchmarked")


def run_client(uri, token, concurrency, iterations):
    from mlflow import MlflowClient

    os.environ["MLFLOW_TRACKING_URI"] = uri
    if token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    else:
        os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
    timings = [[] for _ in range(concurrency)]
    errors = []

    def worker(w):
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        prefix = f"bench-{uuid.uuid4().hex[:8]}-{w}"
        try:
            for i in range(iterations):
                sequence(client, prefix, i, timings[w])
        except Exception as e:  # reported, never hidden
            errors.append(repr(e))

    # One warm-up sequence (connections, server caches), not counted.
    sequence(MlflowClient(tracking_uri=uri, registry_uri=uri), f"warm-{uuid.uuid4().hex[:8]}", 0, [])
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{uri}: {len(errors)} worker(s) failed: {errors[0]}")
    flat = sorted(x for ts in timings for x in ts)
    p99 = flat[min(len(flat) - 1, int(len(flat) * 0.99))]
    return len(flat), elapsed, statistics.median(flat), p99


def main():
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    mode = sys.argv[1]
    iterations = int(sys.argv[2])
    targets = []
    for arg in sys.argv[3:]:
        name, rest = arg.split("=", 1)
        uri, _, token = rest.partition(",")
        targets.append((name, uri, token))
    if mode != "client":
        raise SystemExit(f"bench_mlflow.py: unknown mode {mode!r} (only client)")
    print("| server | concurrency | calls | calls/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for concurrency in (1, 8):
        for name, uri, token in targets:
            calls, elapsed, p50, p99 = run_client(uri, token, concurrency, iterations)
            print(
                f"| {name} | {concurrency} | {calls} | {calls / elapsed:.0f} | "
                f"{p50 * 1000:.1f} | {p99 * 1000:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
