"""Benchmark ``simledger serve``: POST /turn latency and turns/s over real HTTP on loopback.

Starts the server as a separate process (uvicorn, ``python -m
simledger.cli.main serve``), drives the study policy through it the way the
study's driver did (GET /state, read the ``contracts`` table with sqlite3,
POST /turn), and times each POST /turn. For comparison it times the same turns
through ``Run.step`` in-process, so the HTTP layer's share is visible.

    python bench/http_api.py                     # 8 and 200 agents, 40 turns each
    python bench/http_api.py --agents 8 --turns 100
"""

from __future__ import annotations

import sys
from pathlib import Path

import argparse
import json
import math
import os
import socket
import sqlite3
import subprocess
import tempfile
import time

import httpx
import msgspec

from simledger.ledger.run import Run
from simledger.study.policy import TurnView
from simledger.study.study_policy import StudyPolicy
from simledger.study.regimes import engine_config, load_regimes
from simledger.study.runner import agent_ids

START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(db_path: Path) -> tuple[subprocess.Popen, str]:
    """Start the server on a free loopback port and wait (bounded) until /config answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "simledger.cli.main", "serve", "--db", str(db_path),
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()}")
        try:
            httpx.get(f"{base}/config", timeout=2)
            return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start in time")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def fetch_contracts(db_path: Path) -> list[dict]:
    """Read the contracts table as the study driver did."""
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT contract_id, status, data FROM contracts").fetchall()
    conn.close()
    return [{**json.loads(data), "status": status} for _, status, data in rows]


def percentile(values: list[float], q: float) -> float:
    """Return the nearest-rank ``q`` percentile (0 < q <= 100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def wire(agent_input) -> dict:
    item = msgspec.to_builtins(agent_input)
    item.pop("signature", None)
    return item


def bench_http(agents: int, turns: int, seed: int, workdir: Path) -> dict:
    """Return POST /turn latencies (s) and the loop's wall time for one run over HTTP."""
    regime = load_regimes()["baseline"]
    db_path = workdir / f"http_{agents}.db"
    proc, base = start_server(db_path)
    try:
        with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT) as client:
            out = client.post("/init", json={"config": engine_config(regime, agents), "agent_ids": agent_ids(agents),
                                             "seed": seed}).json()
            assert out["ok"], out
            policy = StudyPolicy(regime["policy"], seed)
            latencies, started = [], time.perf_counter()
            for turn in range(1, turns + 1):
                state = client.get("/state").json()
                view = TurnView(turn=turn, max_turns=turns, agents=state["agents"], contracts=fetch_contracts(db_path))
                body = {"inputs": [wire(i) for i in policy.decide(view)]}
                t0 = time.perf_counter()
                response = client.post("/turn", json=body)
                latencies.append(time.perf_counter() - t0)
                assert response.status_code == 200 and response.json()["ok"], response.text
            wall = time.perf_counter() - started
            events = client.get("/state").json()["events"]
    finally:
        stop_server(proc)
    return {"latencies": latencies, "wall": wall, "events": events}


def bench_in_process(agents: int, turns: int, seed: int, workdir: Path) -> list[float]:
    """Return Run.step times (s) for the same run without HTTP."""
    regime = load_regimes()["baseline"]
    run = Run.create(workdir / f"local_{agents}.db", agents=agent_ids(agents), seed=seed,
                     config=engine_config(regime, agents))
    policy, times = StudyPolicy(regime["policy"], seed), []
    try:
        for turn in range(1, turns + 1):
            inputs = policy.decide(TurnView.from_state(run.state, turn, turns))
            t0 = time.perf_counter()
            run.step(inputs)
            times.append(time.perf_counter() - t0)
    finally:
        run.close()
    return times


def report(agents: int, turns: int, http: dict, local: list[float]) -> str:
    lat = http["latencies"]
    ms = lambda s: f"{s * 1000:7.1f} ms"  # noqa: E731
    return (
        f"{agents:>4} agents, {turns} turns, {http['events']} events\n"
        f"     POST /turn  p50 {ms(percentile(lat, 50))}  p99 {ms(percentile(lat, 99))}  "
        f"mean {ms(sum(lat) / len(lat))}  -> {len(lat) / sum(lat):7.1f} turns/s (POST /turn only)\n"
        f"     driver loop (GET /state + sqlite contracts + policy + POST /turn): "
        f"{turns / http['wall']:7.1f} turns/s\n"
        f"     in-process Run.step  p50 {ms(percentile(local, 50))}  p99 {ms(percentile(local, 99))}  "
        f"-> {len(local) / sum(local):7.1f} turns/s"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", default="8,200", help="comma-separated agent counts (default 8,200)")
    parser.add_argument("--turns", type=int, default=40, help="turns per run (default 40)")
    parser.add_argument("--seed", type=int, default=101)
    args = parser.parse_args(argv)
    print(f"simledger serve benchmark: uvicorn on loopback, study policy (baseline), python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        for agents in (int(a) for a in args.agents.split(",")):
            http = bench_http(agents, args.turns, args.seed, Path(tmp))
            local = bench_in_process(agents, args.turns, args.seed, Path(tmp))
            print(report(agents, args.turns, http, local), flush=True)


if __name__ == "__main__":
    main()
