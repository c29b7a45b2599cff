"""``nerforge serve MODEL --ray`` with 1 and 2 replicas on a local two-node Ray cluster, under the same load, in
one run (issue 31, item 4).

Starts a cluster on 127.0.0.1 with ``ray start`` (a head and a second node, one CPU each, as the README shows), then
for each ``--replicas`` value serves MODEL with ``nerforge serve MODEL --ray --address ... --replicas N --threads 1``,
waits until every replica runs, and loads it for ``--duration`` seconds with ``--clients`` keep-alive clients
(``bench/load_test.py``'s own light client). As a reference, the same model is also served by one plain
``nerforge serve --threads 1`` process (no Ray) under the same load. Recorded per run: requests/s, texts/s,
latency percentiles, errors, and the machine's busy CPU-seconds during the load (from ``/proc/stat``: everything,
the clients and Ray's own processes included, so texts per machine CPU-second is the cost of the whole set-up).

Usage::

    python bench/ray_serve_replicas.py MODEL/onnx-int8 --backend onnx              # 32 clients, 20 s each
    python bench/ray_serve_replicas.py MODEL --replicas 1 2 --clients 32 --duration 30

Writes ``bench/results/ray_serve_replicas.json`` and the table between the ``ray_serve`` markers of
``docs/benchmarks.md``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HERE = REPO / "bench"
sys.path.insert(0, str(HERE))

from load_test import DEFAULT_TEXTS, free_port, percentile, run_raw_clients, wait_ready  # noqa: E402
from train_compare import machine, update_docs  # noqa: E402

logger = logging.getLogger("nerforge.bench.ray_serve")
RAY = str(Path(sys.executable).with_name("ray"))
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}  # a loopback cluster for this run only


def busy_cpu_seconds() -> float:
    """The machine's busy CPU-seconds so far (user, nice, system, irq, softirq, steal), from ``/proc/stat``."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def start_cluster(temp: str, spread: bool = False) -> str:
    """A head and a second node on 127.0.0.1, one CPU each; returns the head's address. ``spread``: the proxy
    spreads requests over the replicas of every node (Ray Serve's proxy prefers its own node's replicas while they
    take requests, ``RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING``; Ray's processes inherit the env of ``ray start``)."""
    port = free_port()
    env = {**os.environ, **RAY_ENV} | ({"RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING": "0"} if spread else {})
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    subprocess.run([RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                    "--include-dashboard", "false", "--temp-dir", temp, *common],
                   check=True, capture_output=True, timeout=180, env=env)  # fmt: skip
    subprocess.run([RAY, "start", "--address", f"127.0.0.1:{port}", "--node-ip-address", "127.0.0.1", *common],
                   check=True, capture_output=True, timeout=180, env=env)  # fmt: skip
    return f"127.0.0.1:{port}"


def stop_cluster() -> None:
    subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120, env={**os.environ, **RAY_ENV})


def replicas_running(address: str, expected: int, timeout_s: float) -> bool:
    """Wait until Ray Serve says ``expected`` replicas of nerforge's deployment run."""
    import ray
    from ray import serve

    ray.init(address=address, logging_level=logging.ERROR)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                states = serve.status().applications["nerforge"].deployments["nerforge"].replica_states
            except KeyError:
                states = {}
            if states.get("RUNNING") == expected:
                return True
            time.sleep(1)
        return False
    finally:
        ray.shutdown()


def serve_command(args: argparse.Namespace, port: int, replicas: int | None, address: str | None) -> list[str]:
    command = [sys.executable, "-m", "nerforge", "serve", str(args.model), "--port", str(port), "--backend",
               args.backend, "--threads", "1"]  # fmt: skip
    if replicas is not None:
        command += ["--ray", "--address", str(address), "--replicas", str(replicas)]
    return command


def measure(args: argparse.Namespace, texts: list[str], name: str, command: list[str], wait) -> dict:
    """Start ``command`` (a server), wait until ``wait(base)`` says it is ready, load it, stop it."""
    port = int(command[command.index("--port") + 1])
    base = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkstemp(prefix="nerforge-ray-serve-", suffix=".log")[1])
    env = {**os.environ, **RAY_ENV, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    logger.info("%s: %s", name, shlex.join(command[2:]))
    with log.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_ready(base, server, args.start_timeout, log)
        if not wait(base):
            raise SystemExit(f"{name}: the replicas did not all start:\n{log.read_text()[-3000:]}")
        per = args.texts_per_request
        asyncio.run(run_raw_clients(base, texts, min(args.clients, 4), args.warmup, per))
        cpu0, started = busy_cpu_seconds(), time.perf_counter()
        samples = asyncio.run(run_raw_clients(base, texts, args.clients, args.duration, per))
        elapsed, cpu = time.perf_counter() - started, busy_cpu_seconds() - cpu0
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
    latencies = [s.latency_s * 1000 for s in samples] or [float("nan")]
    ok = sum(s.ok for s in samples)
    return {
        "name": name,
        "requests": len(samples),
        "errors": len(samples) - ok,
        "requests_per_s": round(len(samples) / elapsed, 1),
        "texts_per_s": round(ok * args.texts_per_request / elapsed, 1),
        "texts_per_machine_cpu_s": round(ok * args.texts_per_request / cpu, 1) if cpu > 0 else None,
        "machine_cpu_s": round(cpu, 1),
        "seconds": round(elapsed, 1),
        "latency_ms": {f"p{q}": round(percentile(latencies, q), 1) for q in (50, 95, 99)},
    }


def render(results: dict) -> str:
    rows = results["runs"]
    one = next((r for r in rows if r["name"] == "Ray Serve, 1 replica"), None)
    lines = [
        f"Command: `{results['command']}`. Machine: {results['machine']}. Model: `{results['model']}` "
        f"({results['backend']}); {results['clients']} clients × {results['duration']:g} s each, "
        f"{results.get('texts_per_request', 1)} text(s) per request; a two-node Ray cluster on 127.0.0.1 (one CPU each), every replica and the plain server with one "
        "thread"
        + (
            "; the proxy spreads requests over both nodes (`RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING=0`)."
            if results.get("spread")
            else "; the proxy prefers its own node's replica (Ray Serve's default)."
        ),
        "",
        "| server | requests/s | texts/s | × 1 replica | errors | p50 / p95 / p99 ms | machine CPU-s | texts per "
        "machine CPU-s |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        ratio = f"{r['requests_per_s'] / one['requests_per_s']:.2f}" if one and one["requests_per_s"] else "–"
        lat = r["latency_ms"]
        lines.append(
            f"| {r['name']} | {r['requests_per_s']:.1f} | {r['texts_per_s']:.1f} | {ratio} | {r['errors']} | "
            f"{lat['p50']:.0f} / {lat['p95']:.0f} / {lat['p99']:.0f} | {r['machine_cpu_s']:.1f} | "
            f"{r['texts_per_machine_cpu_s']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="nerforge model directory to serve")
    parser.add_argument("--backend", default="torch", choices=("torch", "onnx"))
    parser.add_argument("--replicas", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per run")
    parser.add_argument("--texts-per-request", type=int, default=1)
    parser.add_argument(
        "--spread", action="store_true", help="the proxy spreads requests over both nodes' replicas (not local first)"
    )
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--no-plain", action="store_true", help="leave out the plain one-process server")
    parser.add_argument("--start-timeout", type=float, default=300.0)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "ray_serve_replicas.json")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--marker", default="ray_serve", help="the docs/benchmarks.md section to write")
    args = parser.parse_args(argv)
    if not (args.model / "nerforge.json").is_file():
        parser.error(f"{args.model} is not a nerforge model directory (no nerforge.json)")
    texts = list(DEFAULT_TEXTS)
    runs = []
    if not args.no_plain:
        command = serve_command(args, free_port(), None, None)
        runs.append(measure(args, texts, "one process, no Ray", command, lambda base: True))
    temp = tempfile.mkdtemp(prefix="nfray")  # short: Ray's socket paths must fit in 107 characters
    address = start_cluster(temp, spread=args.spread)
    try:
        for n in args.replicas:
            command = serve_command(args, free_port(), n, address)
            name = f"Ray Serve, {n} replica{'s' if n > 1 else ''}"
            runs.append(measure(args, texts, name, command, lambda base, n=n: replicas_running(address, n, 300)))
    finally:
        stop_cluster()
    private = {"--output", "--docs", "--marker"}
    shown = [a for i, a in enumerate(sys.argv[1:]) if a not in private and sys.argv[i] not in private]
    results = {
        "command": shlex.join(["python", "bench/ray_serve_replicas.py", *shown]),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "model": str(args.model),
        "backend": args.backend,
        "clients": args.clients,
        "duration": args.duration,
        "texts_per_request": args.texts_per_request,
        "spread": args.spread,
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    table = render(results)
    print(table)
    update_docs(args.docs, table, marker=args.marker)
    return 0 if all(r["errors"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
