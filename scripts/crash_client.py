#!/usr/bin/env python3
"""The client of scripts/test-crash (standard library only).

    crash_client.py setup  --url URL --state FILE
    crash_client.py load   --url URL --state FILE [--kill-pid PID --kill-after N]
    crash_client.py verify --url URL --state FILE

`setup` creates, through the API, the people, project CRASH (a final approver
for prod), VERSIONS versions of model `m`, the prevent infrastructure
`crash-api` admitting CRASH and a deploy grant; it writes tokens and the audit
head into the state file. `load` runs the operations not yet attempted (five
per version, the versions spread over WORKERS concurrent clients, each on its
own keep-alive connection) and records every answer in the state file; with
--kill-pid it sends SIGKILL to the server once N operations were answered in
this run, and stops. `verify` checks, against the restarted server, that every
operation answered 2xx left its effect, that an operation answered with an
error left nothing but its documented refusal event, and that the audit chain
verifies; it prints the counts and exits 1 on any loss.

Only 127.0.0.1 is ever contacted.
"""

import argparse
import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.parse
from collections import Counter

PROJECT = "CRASH"
MODEL = "m"
INFRA = "crash-api"
VERSIONS = 200
WORKERS = 16
# Per version, in order: a deployment before the sign-off (refused, audited),
# the review request, a decision by someone who holds no slot (refused,
# audited), the approval, and the deployment.
KINDS = ("blocked", "request", "intrude", "decide", "deploy")
PASSWORD = "crash-test-password"
PEOPLE = ("olga", "paul", "dora", "mallory")  # owner, approver, deployer, intruder
REQUEST_TIMEOUT = 30  # seconds, per request
LOAD_DEADLINE = 600  # seconds, per load run


def fail(msg):
    print(f"crash_client: {msg}", file=sys.stderr)
    sys.exit(1)


class Client:
    """One keep-alive connection to the server on 127.0.0.1."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        if u.hostname != "127.0.0.1":
            fail(f"refusing to talk to {u.hostname}: only 127.0.0.1")
        self.port = u.port
        self.conn = None

    def call(self, method, path, token=None, body=None):
        """(status, JSON body); raises OSError/HTTPException without an answer."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        headers = {"Accept": "application/json"}
        data = None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, "/api/v1" + path, body=data, headers=headers)
            res = self.conn.getresponse()
            raw = res.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return res.status, parsed

    def ok(self, method, path, token=None, body=None, expect=(200, 201, 204)):
        status, parsed = self.call(method, path, token, body)
        if status not in expect:
            fail(f"{method} {path}: {status} {parsed}")
        return parsed

    def pages(self, path, token):
        """Every item of a paginated list."""
        items, cursor = [], None
        for _ in range(10_000):
            sep = "&" if "?" in path else "?"
            page = path + f"{sep}limit=500"
            if cursor:
                page += "&cursor=" + urllib.parse.quote(cursor, safe="")
            body = self.ok("GET", page, token)
            items.extend(body["items"])
            cursor = body.get("next_cursor")
            if not cursor:
                return items
        fail(f"GET {path}: too many pages")


def subject(n):
    return f"version:{PROJECT}/{MODEL}/{n}"


def version_path(n):
    return f"/projects/{PROJECT}/models/{MODEL}/versions/{n}"


def load_state(path):
    with open(path) as f:
        return json.load(f)


def save_state(path, state):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, path)


# --- setup ------------------------------------------------------------------


def setup(args):
    c = Client(args.url)
    admin = c.ok("POST", "/tokens", body={"name": "crash", "username": "admin",
                                          "password": args.admin_password})["token"]
    tokens = {}
    for name in PEOPLE:
        c.ok("POST", "/users", admin, {"username": name, "password": PASSWORD})
        tokens[name] = c.ok("POST", "/tokens",
                            body={"name": "crash", "username": name, "password": PASSWORD})["token"]
    olga = tokens["olga"]
    c.ok("POST", "/projects", admin,
         {"key": PROJECT, "name": "Crash test", "risk_tier": 2, "owners": ["olga"]})
    c.ok("PUT", f"/projects/{PROJECT}/signoff-config", admin,
         {"stages": [{"stage": "prod", "slots": [{"kind": "final_approval", "user": "paul"}]}]})
    c.ok("POST", f"/projects/{PROJECT}/models", olga, {"name": MODEL})
    for n in range(1, VERSIONS + 1):
        v = c.ok("POST", f"/projects/{PROJECT}/models/{MODEL}/versions", olga,
                 {"artifact_uri": f"s3://crash/{MODEL}/{n}/model.bin"})
        if v["version"] != n:
            fail(f"version {v['version']} registered, {n} expected")
    c.ok("POST", "/infrastructures", admin,
         {"name": INFRA, "kind": "api_node", "stage": "prod", "policy": "prevent",
          "admitted_projects": [PROJECT]})
    c.ok("POST", f"/projects/{PROJECT}/deploy-grants", olga, {"infrastructure": INFRA, "user": "dora"})
    head = c.ok("GET", "/audit/events?order=desc&limit=1", admin)["items"][0]["seq"]
    ops = {f"{n}:{k}": {"attempted": False, "status": None, "body": None}
           for n in range(1, VERSIONS + 1) for k in KINDS}
    save_state(args.state, {"admin": admin, "tokens": tokens, "setup_seq": head, "ops": ops})
    print(f"setup: {VERSIONS} versions, audit head at seq {head}")


# --- load -------------------------------------------------------------------


def request_of(op, tokens):
    """(token, method, path, body) of an operation `N:kind`."""
    n, kind = op.split(":")
    n = int(n)
    signoff = f"{version_path(n)}/signoffs/prod"
    deploy = f"/infrastructures/{INFRA}/deployments"
    return {
        "blocked": (tokens["dora"], "POST", deploy, {"subject": subject(n), "comment": f"op {op}"}),
        "request": (tokens["olga"], "POST", f"{signoff}/request", {}),
        "intrude": (tokens["mallory"], "POST", f"{signoff}/decide",
                    {"decision": "approve", "comment": f"op {op}"}),
        "decide": (tokens["paul"], "POST", f"{signoff}/decide",
                   {"decision": "approve", "comment": f"op {op}"}),
        "deploy": (tokens["dora"], "POST", deploy, {"subject": subject(n), "comment": f"op {op}"}),
    }[kind]


def load(args):
    state = load_state(args.state)
    ops = state["ops"]
    todo = [[] for _ in range(WORKERS)]
    for n in range(1, VERSIONS + 1):
        for k in KINDS:
            op = f"{n}:{k}"
            if not ops[op]["attempted"]:
                todo[n % WORKERS].append(op)
    lock = threading.Lock()
    stop = threading.Event()
    answered = [0]
    deadline = time.monotonic() + LOAD_DEADLINE

    def worker(queue):
        c = Client(args.url)
        for op in queue:
            if stop.is_set() or time.monotonic() > deadline:
                return
            token, method, path, body = request_of(op, state["tokens"])
            with lock:
                ops[op]["attempted"] = True
            try:
                status, parsed = c.call(method, path, token, body)
            except (OSError, http.client.HTTPException):
                # No answer: the server died with the request in flight (or
                # before it arrived). Its effect is unknown.
                if args.kill_pid:
                    return
                continue
            keep = {"code": parsed.get("code"), "id": parsed.get("id")} if isinstance(parsed, dict) else None
            with lock:
                ops[op]["status"] = status
                ops[op]["body"] = keep
                answered[0] += 1
                if args.kill_pid and answered[0] == args.kill_after:
                    os.kill(args.kill_pid, signal.SIGKILL)
                    stop.set()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(q,)) for q in todo]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    save_state(args.state, state)
    attempted = sum(1 for o in ops.values() if o["attempted"])
    unanswered = sum(1 for o in ops.values() if o["attempted"] and o["status"] is None)
    print(f"load: {answered[0]} answered in {time.monotonic() - started:.1f} s; "
          f"{attempted} of {len(ops)} attempted so far, {unanswered} without an answer")
    if args.kill_pid and not stop.is_set():
        fail(f"the load ended before {args.kill_after} answers: the server was not killed")
    if time.monotonic() > deadline:
        fail(f"the load did not finish within {LOAD_DEADLINE} s")


# --- verify -----------------------------------------------------------------

# What an answered operation must have left: (actor, action) of its event.
SUCCESS = {
    "blocked": ("dora", "deployment.deploy"),
    "request": ("olga", "signoff.request_review"),
    "intrude": ("mallory", "signoff.decide"),
    "decide": ("paul", "signoff.decide"),
    "deploy": ("dora", "deployment.deploy"),
}
# The refusals that are audited (docs/api.md): status, code -> (actor, action).
REFUSAL = {
    "blocked": {(409, "deployment_blocked"): ("dora", "deployment.refused"),
                (403, "forbidden"): ("dora", "deployment.refused")},
    "request": {(403, "forbidden"): ("olga", "signoff.refused")},
    "intrude": {(403, "forbidden"): ("mallory", "signoff.refused")},
    "decide": {(403, "forbidden"): ("paul", "signoff.refused")},
    "deploy": {(409, "deployment_blocked"): ("dora", "deployment.refused"),
               (403, "forbidden"): ("dora", "deployment.refused")},
}


def verify(args):
    state = load_state(args.state)
    ops, admin = state["ops"], state["admin"]
    c = Client(args.url)
    problems = []

    report = c.ok("GET", "/audit/verify", admin)
    if report.get("ok") is not True:
        problems.append(f"audit verify failed: {report}")

    events = [e for e in c.pages(f"/audit/events?project={PROJECT}&order=asc", admin)
              if e["seq"] > state["setup_seq"]]
    deployments = {d["id"]: d for d in c.pages(f"/infrastructures/{INFRA}/deployments", admin)}
    versions = {v["version"]: v for v in
                c.pages(f"/projects/{PROJECT}/models/{MODEL}/versions", admin)}

    # Events per (actor, action, subject); deployment events by their id.
    seen = Counter()
    deploy_events = {}
    for e in events:
        seen[(e["actor"], e["action"], e["subject"])] += 1
        if e["action"] == "deployment.deploy":
            deploy_events.setdefault(e["details"].get("deployment_id"), []).append(e)

    # How many events of each key the answers demand (low) and allow (high).
    low, high = Counter(), Counter()
    acknowledged = found = lost = refused = unanswered = 0
    for op, o in ops.items():
        n, kind = op.split(":")
        subj = subject(int(n))
        status = o["status"]
        code = (o["body"] or {}).get("code")
        success = SUCCESS[kind] + (subj,)
        if not o["attempted"]:
            continue
        if status is None:
            unanswered += 1
            high[success] += 1
            for key in set(REFUSAL[kind].values()):
                high[key + (subj,)] += 1
            continue
        if 200 <= status < 300:
            acknowledged += 1
            low[success] += 1
            high[success] += 1
            if kind in ("blocked", "intrude"):
                problems.append(f"{op} should have been refused but was answered {status}")
            present = seen[success] >= 1
            prod = [s["state"] for s in versions.get(int(n), {}).get("governance", [])
                    if s["stage"] == "prod"]
            if kind in ("blocked", "deploy"):
                dep_id = (o["body"] or {}).get("id")
                evs = deploy_events.get(dep_id, [])
                present = (present and dep_id in deployments and len(evs) == 1
                           and evs[0]["details"].get("comment") == f"op {op}")
            elif kind == "request":
                present = present and prod in (["in_review"], ["approved"])
            elif kind == "decide":
                present = present and prod == ["approved"]
            if present:
                found += 1
            else:
                lost += 1
                problems.append(f"lost: {op} was answered {status} but its effect is missing")
            continue
        refused += 1
        key = REFUSAL[kind].get((status, code))
        if key is not None:
            low[key + (subj,)] += 1
            high[key + (subj,)] += 1

    for key in set(seen) | set(low) | set(high):
        if not low[key] <= seen[key] <= high[key]:
            problems.append(f"{key}: {seen[key]} events, answers allow {low[key]}..{high[key]}")

    # Rows and events agree: no deployment without its event, and back.
    for dep_id in deployments:
        if len(deploy_events.get(dep_id, [])) != 1:
            problems.append(f"deployment {dep_id} has {len(deploy_events.get(dep_id, []))} events")
    for dep_id in deploy_events:
        if dep_id not in deployments:
            problems.append(f"an event names deployment {dep_id}, which does not exist")
    live = [d["id"] for d in deployments.values() if d["live"]]
    if len(live) > 1:
        problems.append(f"{len(live)} live deployments in one slot: {live}")

    statuses = Counter(str(o["status"]) for o in ops.values() if o["attempted"])
    print(f"verify: {sum(1 for o in ops.values() if o['attempted'])} operations sent, "
          f"answers {dict(sorted(statuses.items()))}")
    print(f"verify: acknowledged {acknowledged}, found {found}, lost {lost}; "
          f"refused {refused}; unanswered {unanswered}; "
          f"{len(events)} audit events, {len(deployments)} deployments; "
          f"audit chain {'ok' if report.get('ok') else 'BROKEN'} ({report.get('events')} events)")
    for p in problems[:50]:
        print(f"  PROBLEM: {p}", file=sys.stderr)
    if problems:
        fail(f"{len(problems)} problems")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["setup", "load", "verify"])
    p.add_argument("--url", required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--admin-password")
    p.add_argument("--kill-pid", type=int)
    p.add_argument("--kill-after", type=int, default=VERSIONS * len(KINDS) // 2)
    args = p.parse_args()
    {"setup": setup, "load": load, "verify": verify}[args.command](args)


if __name__ == "__main__":
    main()
