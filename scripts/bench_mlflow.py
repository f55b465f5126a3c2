"""Drivers of scripts/bench-mlflow, against each server in turn, at
concurrency 1 and 8.

usage: bench_mlflow.py rest ITERATIONS NAME=URL[,TOKEN] ...
       bench_mlflow.py client ITERATIONS NAME=URL[,TOKEN] ...

`rest` (the default of scripts/bench-mlflow) issues the registry's REST calls
themselves, as the MLflow client sends them, over one persistent HTTP/1.1
keep-alive connection per worker (`http.client`, TCP_NODELAY), each worker a
process of its own so that Python's GIL does not serialise them. Each worker
first makes its durable writes, ITERATIONS times on models of its own: create
a registered model, create a version, set a version tag, set an alias, update
the version's description (5 writes); then, after every worker is done
writing, its reads, ITERATIONS times: get the model, get the version, get the
version by alias, search versions by name, search models by name (the
client's filter, prompt clause included) (5 reads). Writes and reads are
timed apart: calls per second over the phase's wall time, p50/p99 per call.

`client` times whole `MlflowClient` calls (the client's own work and its
hidden extra requests included), a sequence of 10 calls per iteration, each
worker a thread of one process.
"""

import http.client
import json
import logging
import multiprocessing
import os
import socket
import statistics
import sys
import threading
import time
import urllib.parse
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


class Rest:
    """One keep-alive connection to a server's registry API."""

    def __init__(self, uri, token):
        u = urllib.parse.urlsplit(uri)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.retries = 0
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def call(self, method, path, args):
        path = "/api/2.0/mlflow/" + path
        body = None
        if method == "GET":
            path += "?" + urllib.parse.urlencode(args)
        else:
            body = json.dumps(args).encode()
        t0 = time.perf_counter()
        for attempt in range(5):
            self.conn.request(method, path, body=body, headers=self.headers)
            r = self.conn.getresponse()
            data = r.read()
            # As the MLflow client does, a transient failure (mlflow server
            # answers 500 "database is locked" under concurrent SQLite writes)
            # is retried; the retries count in the call's time, and are reported.
            if r.status in (500, 502, 503, 504) and attempt < 4:
                self.retries += 1
                continue
            break
        elapsed = time.perf_counter() - t0
        if r.status != 200:
            raise RuntimeError(f"{method} {path}: {r.status} {data[:300]!r}")
        return elapsed


def writes(rest, name):
    return [
        rest.call("POST", "registered-models/create", {"name": name, "tags": [{"key": "team", "value": "bench"}]}),
        rest.call("POST", "model-versions/create", {"name": name, "source": f"s3://bench/{name}/1", "run_id": "r1"}),
        rest.call("POST", "model-versions/set-tag", {"name": name, "version": "1", "key": "validated", "value": "true"}),
        rest.call("POST", "registered-models/alias", {"name": name, "alias": "champion", "version": "1"}),
        rest.call("PATCH", "model-versions/update", {"name": name, "version": "1", "description": "benchmarked"}),
    ]


def reads(rest, name):
    return [
        rest.call("GET", "registered-models/get", {"name": name}),
        rest.call("GET", "model-versions/get", {"name": name, "version": "1"}),
        rest.call("GET", "registered-models/alias", {"name": name, "alias": "champion"}),
        rest.call("GET", "model-versions/search", {"filter": f"name='{name}'", "max_results": 10000}),
        rest.call(
            "GET",
            "registered-models/search",
            {"filter": f"name = '{name}' AND tag.`mlflow.prompt.is_prompt` != 'true'", "max_results": 100},
        ),
    ]


def rest_worker(uri, token, prefix, iterations, barrier, out):
    try:
        rest = Rest(uri, token)
        names = [f"{prefix}-{i}" for i in range(iterations)]
        result = {}
        for phase, calls in (("writes", writes), ("reads", reads)):
            barrier.wait()
            t0 = time.perf_counter()
            timings = []
            for name in names:
                timings.extend(calls(rest, name))
            result[phase] = (t0, time.perf_counter(), timings)
        result["retries"] = rest.retries
        out.put(("ok", result))
    except Exception as e:  # reported, never hidden
        barrier.abort()
        out.put(("error", repr(e)))


def run_rest(uri, token, concurrency, iterations):
    ctx = multiprocessing.get_context("fork")
    # One warm-up pass (connections, server caches), not counted.
    warm = Rest(uri, token)
    for name in (f"warm-{uuid.uuid4().hex[:8]}",):
        writes(warm, name)
        reads(warm, name)
    barrier = ctx.Barrier(concurrency)
    out = ctx.Queue()
    run_id = uuid.uuid4().hex[:8]
    procs = [
        ctx.Process(target=rest_worker, args=(uri, token, f"rb-{run_id}-{w}", iterations, barrier, out))
        for w in range(concurrency)
    ]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    failed = [r for kind, r in results if kind == "error"]
    if failed:
        raise SystemExit(f"{uri}: {len(failed)} worker(s) failed: {failed[0]}")
    rows = {"retries": sum(r["retries"] for _, r in results)}
    for phase in ("writes", "reads"):
        start = min(r[phase][0] for _, r in results)
        end = max(r[phase][1] for _, r in results)
        flat = sorted(x for _, r in results for x in r[phase][2])
        p99 = flat[min(len(flat) - 1, int(len(flat) * 0.99))]
        rows[phase] = (len(flat), end - start, statistics.median(flat), p99)
    return rows


def main_rest(iterations, targets):
    print("| calls | concurrency | server | calls | calls/s | p50 ms | p99 ms | Gatehouse ÷ MLflow (calls/s) |")
    print("|---|---|---|---|---|---|---|---|")
    for concurrency in (1, 8):
        measured = [(name, run_rest(uri, token, concurrency, iterations)) for name, uri, token in targets]
        for name, rows in measured:
            if rows["retries"]:
                print(f"({name}, concurrency {concurrency}: {rows['retries']} calls retried after a 5xx)", flush=True)
        for phase, label in (("reads", "reads"), ("writes", "durable writes")):
            base = measured[-1][1][phase]
            for name, rows in measured:
                calls, elapsed, p50, p99 = rows[phase]
                ratio = (calls / elapsed) / (base[0] / base[1])
                print(
                    f"| {label} | {concurrency} | {name} | {calls} | {calls / elapsed:.0f} | "
                    f"{p50 * 1000:.2f} | {p99 * 1000:.2f} | {'' if name == measured[-1][0] else f'{ratio:.0f}×'} |",
                    flush=True,
                )


def main():
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    mode = sys.argv[1]
    iterations = int(sys.argv[2])
    targets = []
    for arg in sys.argv[3:]:
        name, rest = arg.split("=", 1)
        uri, _, token = rest.partition(",")
        targets.append((name, uri, token))
    if mode == "rest":
        main_rest(iterations, targets)
        return
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
