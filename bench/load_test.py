"""Load test of ``nerforge serve``: N concurrent clients on loopback for a fixed time, against a real server.

Starts ``nerforge serve MODEL`` as a subprocess on 127.0.0.1 (a free port), waits until it answers, warms it up,
then runs ``--clients`` concurrent clients posting texts to ``/v1/entities`` for ``--duration`` seconds. Reports
requests, errors, requests/s, latency percentiles, the server's resident memory before and after (and its peak),
and what the server's batcher did; writes them to a JSON file and prints a Markdown table.

In the same run (``--offline``, the default) the same model tags the same texts offline, in a process of its own
with the same backend and threads, at the server's batch size: the server's texts/s against that engine's is the
ratio issue 31 asks about. The CPU time of the server (all its processes), of the clients and of the offline engine
is recorded too, so the texts per CPU-second of each can be compared.

Usage::

    python bench/load_test.py runs/quickstart/model                       # 32 clients, 30 s
    python bench/load_test.py MODEL --clients 8 --duration 5 --output runs/bench/load.json
    python bench/load_test.py MODEL/onnx-int8 --backend onnx --workers 2 --threads 1

Not part of the test suite: it takes as long as you ask it to.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

logger = logging.getLogger("nerforge.bench.load_test")

DEFAULT_TEXTS = (
    "Alice Smith joined Acme Corp in Paris last March as head of research.",
    "The meeting between Bob Jones and the mayor of Berlin was postponed to Friday.",
    "Shares of Globex rose 4% after the company opened a new office in Toronto.",
    "Maria Garcia, a software engineer at Initech, presented her work in Madrid.",
    "Heavy rain caused delays on the trains between Lyon and Geneva on Tuesday morning.",
    "The United Nations sent a delegation led by Kofi Mensah to Nairobi.",
    "After ten years in London, the author moved to a small village near Edinburgh.",
    "Dr. Chen from Stanford University published the results together with colleagues at MIT.",
)
SERVER_CODE = "import sys; from nerforge.cli import main; sys.exit(main(sys.argv[1:]))"


@dataclass
class Sample:
    latency_s: float
    ok: bool
    error: str = ""


@dataclass
class Report:
    config: dict
    requests: int
    errors: int
    error_kinds: dict[str, int]
    duration_s: float
    requests_per_s: float
    texts_per_s: float
    latency_ms: dict[str, float]
    server_rss_mb: dict[str, float | None]
    batching: dict
    machine: dict = field(default_factory=dict)
    cpu_s: dict[str, float | None] = field(default_factory=dict)  # server (all processes) and clients, under load
    offline: dict = field(default_factory=dict)  # the same engine on the same texts, no server


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def rss_mb(pid: int) -> tuple[float | None, float | None]:
    """(current, peak) resident memory of process ``pid`` in MiB, from /proc (Linux); ``None`` elsewhere."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
    except OSError:
        return None, None

    def mib(key: str) -> float | None:
        value = fields.get(key, "").strip().split()
        return round(int(value[0]) / 1024, 1) if value else None

    return mib("VmRSS"), mib("VmHWM")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` and of every process below it (a server's workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total, seen, todo = 0.0, set(), [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except (OSError, IndexError, ValueError):
            if p == pid:
                return None
            continue
        todo += [int(c) for c in children]
    return round(total, 2)


OFFLINE_CODE = """
import json, os, sys, time
from nerforge.serving.predictor import load_predictor
from nerforge.threads import set_torch_threads
model, backend, batch, threads, n, path = sys.argv[1:7]
threads = int(threads) or None
if threads:
    set_torch_threads(threads)
texts = json.loads(open(path, encoding="utf-8").read())
predictor = load_predictor(model, backend=backend, batch_size=int(batch), threads=threads)
batch = int(batch)
predictor.predict(texts[:batch])  # warm-up
order = [texts[i % len(texts)] for i in range(int(n))]
cpu0, t0 = time.process_time(), time.perf_counter()
found = 0
for i in range(0, len(order), batch):
    found += sum(len(e) for e in predictor.predict(order[i:i + batch]))
wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
print(json.dumps({"texts": len(order), "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                  "texts_per_s": round(len(order) / wall, 2), "texts_per_cpu_s": round(len(order) / cpu, 2),
                  "entities": found}))
"""


def offline(args: argparse.Namespace, texts: list[str]) -> dict:
    """The same model on the same texts with no server: ``predict`` in batches of the server's size, in a process
    of its own with the server's threads (the whole machine when the server has several workers)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as fh:
        json.dump(texts, fh)
    threads = args.threads or 0
    command = [sys.executable, "-c", OFFLINE_CODE, str(args.model), args.backend, str(args.batch_size),
               str(threads if args.workers == 1 else 0), str(args.offline_texts), fh.name]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    Path(fh.name).unlink(missing_ok=True)
    if done.returncode != 0:
        raise SystemExit(f"the offline run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: Path, port: int, args: argparse.Namespace, log_path: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-c",
        SERVER_CODE,
        "serve",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend",
        args.backend,
        "--batch-size",
        str(args.batch_size),
        "--batch-wait-ms",
        str(args.batch_wait_ms),
    ]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.workers > 1:
        command += ["--workers", str(args.workers)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    log = log_path.open("w")
    logger.info("starting: %s", " ".join(command[3:]))
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


def wait_ready(base: str, server: subprocess.Popen, timeout_s: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with code {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"the server did not answer within {timeout_s:g} s:\n{log_path.read_text()[-3000:]}")


async def run_clients(base: str, texts: list[str], clients: int, duration_s: float, per_request: int) -> list[Sample]:
    samples: list[Sample] = []
    deadline = time.monotonic() + duration_s
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def one_client(k: int) -> None:
            i = k
            while time.monotonic() < deadline:
                batch = [texts[(i + j) % len(texts)] for j in range(per_request)]
                body = {"text": batch[0]} if per_request == 1 else {"texts": batch}
                i += clients
                start = time.perf_counter()
                try:
                    response = await client.post("/v1/entities", json=body)
                    ok = response.status_code == 200
                    error = "" if ok else f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    ok, error = False, type(exc).__name__
                samples.append(Sample(time.perf_counter() - start, ok, error))

        await asyncio.gather(*(one_client(k) for k in range(clients)))
    return samples


async def run_raw_clients(base: str, texts: list[str], clients: int, duration_s: float,
                          per_request: int) -> list[Sample]:  # fmt: skip
    """:func:`run_clients` with a light HTTP/1.1 client of our own: one keep-alive connection per client, the request
    bytes built once, the reply read by its ``Content-Length``. httpx spends about 1.5 ms of CPU per request, so 32
    httpx clients on the server's two cores took a core of their own and the clients, not the server, set the pace
    (``docs/benchmarks.md``, *Serving under load*). Every reply's status is checked and its body must be the JSON of
    an entity list."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    requests = []
    for k in range(len(texts)):
        batch = [texts[(k + j) % len(texts)] for j in range(per_request)]
        body = json.dumps({"text": batch[0]} if per_request == 1 else {"texts": batch}).encode()
        head = (f"POST /v1/entities HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
        requests.append(head + body)
    expect = b'{"entities"' if per_request == 1 else b'{"results"'
    samples: list[Sample] = []
    deadline = time.monotonic() + duration_s

    async def one_client(k: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        i = k
        try:
            while time.monotonic() < deadline:
                request = requests[i % len(requests)]
                i += clients
                start = time.perf_counter()
                try:
                    writer.write(request)
                    head = await reader.readuntil(b"\r\n\r\n")
                    status = int(head[9:12])
                    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length:"))  # fmt: skip
                    body = await reader.readexactly(length)
                    ok = status == 200 and body.startswith(expect)
                    error = "" if ok else f"HTTP {status}"
                except (OSError, asyncio.IncompleteReadError, StopIteration, ValueError) as exc:
                    ok, error = False, type(exc).__name__
                samples.append(Sample(time.perf_counter() - start, ok, error))
                if error and not error.startswith("HTTP"):
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port))
        finally:
            writer.close()

    await asyncio.gather(*(one_client(k) for k in range(clients)))
    return samples


def markdown(report: Report) -> str:
    c, lat, rss = report.config, report.latency_ms, report.server_rss_mb
    rows = [
        ("Model", f"`{c['model_name']}` ({c['backend']})"),
        ("Clients × duration", f"{c['clients']} × {report.duration_s:.1f} s ({c['texts_per_request']} text/request)"),
        ("Requests (errors)", f"{report.requests} ({report.errors})"),
        ("Requests/s", f"{report.requests_per_s:.1f}"),
        ("Texts/s", f"{report.texts_per_s:.1f}"),
        ("Latency p50 / p95 / p99", f"{lat['p50']:.0f} / {lat['p95']:.0f} / {lat['p99']:.0f} ms"),
        ("Server RSS before → after (peak)", f"{rss['before']} → {rss['after']} MiB (peak {rss['peak']} MiB)"),
        (
            "Batches (largest, in requests)",
            f"{report.batching.get('batches')} ({report.batching.get('largest_batch_requests')})",
        ),
        ("Machine", f"{report.machine['cpus']} CPUs, {report.machine['platform']}"),
    ]
    cpu = report.cpu_s
    if cpu.get("server"):
        rows.insert(5, ("Server CPU-s (texts per CPU-s); clients' CPU-s",
                        f"{cpu['server']} ({report.texts_per_s * report.duration_s / cpu['server']:.1f}); "
                        f"{cpu.get('clients')}"))  # fmt: skip
    off = report.offline
    if off:
        rows.insert(
            5, ("Offline engine: texts/s (per CPU-s)", f"{off['texts_per_s']:.1f} ({off['texts_per_cpu_s']:.1f})")
        )
        rows.insert(6, ("Server texts/s ÷ offline texts/s", f"{report.texts_per_s / off['texts_per_s']:.2f}"))
    lines = ["| Measure | Value |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def load_texts(path: Path | None) -> list[str]:
    if path is None:
        return list(DEFAULT_TEXTS)
    texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not texts:
        raise SystemExit(f"{path}: no texts (one per line expected)")
    return texts


def run(args: argparse.Namespace) -> Report:
    texts = load_texts(args.texts)
    offline_result = {}
    if args.offline:
        logger.info("offline: %d texts at batch %d", args.offline_texts, args.batch_size)
        offline_result = offline(args, texts)
        logger.info("offline: %s", offline_result)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = Path(tempfile.mkstemp(prefix="nerforge-serve-", suffix=".log")[1])
    server = start_server(args.model, port, args, log_path)
    try:
        wait_ready(base, server, args.start_timeout, log_path)
        logger.info("server up; warming up for %g s", args.warmup)
        asyncio.run(run_clients(base, texts, min(args.clients, 4), args.warmup, args.texts_per_request))
        before, _ = rss_mb(server.pid)
        stats_before = httpx.get(base + "/healthz", timeout=10).json()["batching"]
        logger.info("load: %d clients for %g s", args.clients, args.duration)
        server_cpu0, client_cpu0 = cpu_seconds(server.pid), time.process_time()
        started = time.perf_counter()
        clients = run_raw_clients if args.client == "raw" else run_clients
        samples = asyncio.run(clients(base, texts, args.clients, args.duration, args.texts_per_request))
        elapsed = time.perf_counter() - started
        server_cpu1, client_cpu = cpu_seconds(server.pid), time.process_time() - client_cpu0
        after, peak = rss_mb(server.pid)
        stats_after = httpx.get(base + "/healthz", timeout=10).json()["batching"]
        model_info = httpx.get(base + "/v1/model", timeout=10).json()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    latencies = [s.latency_s * 1000 for s in samples] or [float("nan")]
    errors = [s.error for s in samples if not s.ok]
    kinds: dict[str, int] = {}
    for e in errors:
        kinds[e] = kinds.get(e, 0) + 1
    batches = stats_after["batches"] - stats_before["batches"]
    requests_batched = stats_after["requests"] - stats_before["requests"]
    return Report(
        config={
            "model": str(args.model),
            "model_name": model_info.get("name"),
            "backend": args.backend,
            "clients": args.clients,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "texts_per_request": args.texts_per_request,
            "batch_size": args.batch_size,
            "batch_wait_ms": args.batch_wait_ms,
            "threads": args.threads,
            "distinct_texts": len(texts),
            "workers": args.workers,
            "client": args.client,
        },
        cpu_s={
            "server": None if server_cpu0 is None or server_cpu1 is None else round(server_cpu1 - server_cpu0, 2),
            "clients": round(client_cpu, 2),
        },  # fmt: skip
        offline=offline_result,
        requests=len(samples),
        errors=len(errors),
        error_kinds=kinds,
        duration_s=round(elapsed, 3),
        requests_per_s=round(len(samples) / elapsed, 2),
        texts_per_s=round(len(samples) * args.texts_per_request / elapsed, 2),
        latency_ms={
            "p50": round(percentile(latencies, 50), 2),
            "p95": round(percentile(latencies, 95), 2),
            "p99": round(percentile(latencies, 99), 2),
            "mean": round(sum(latencies) / len(latencies), 2),
            "max": round(max(latencies), 2),
        },
        server_rss_mb={"before": before, "after": after, "peak": peak},
        batching={
            "batches": batches,
            "requests_per_batch": round(requests_batched / batches, 2) if batches else None,
            "largest_batch_requests": stats_after["largest_batch_requests"],
            "largest_batch_texts": stats_after["largest_batch_texts"],
        },
        machine={"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="nerforge model directory to serve")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load (default 30)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of light load before measuring")
    parser.add_argument("--texts", type=Path, default=None, help="file of texts, one per line (default: built-in)")
    parser.add_argument("--texts-per-request", type=int, default=1, help="texts in each request (default 1)")
    parser.add_argument("--backend", default="torch", choices=("torch", "onnx"))
    parser.add_argument("--batch-size", type=int, default=32, help="server's most texts per model call")
    parser.add_argument("--batch-wait-ms", type=float, default=1.0, help="server's batch gathering window")
    parser.add_argument(
        "--threads", type=int, default=None, help="server's CPU threads (default: all; with --workers, each worker's)"
    )
    parser.add_argument("--workers", type=int, default=1, help="server processes (nerforge serve --workers)")
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="raw: a light keep-alive HTTP/1.1 client of our own (default); httpx: httpx.AsyncClient",
    )
    parser.add_argument(
        "--offline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the same model on the same texts with no server (default: on)",
    )
    parser.add_argument("--offline-texts", type=int, default=2048, help="texts the offline run tags")
    parser.add_argument("--start-timeout", type=float, default=180.0, help="seconds to wait for the server")
    parser.add_argument(
        "--output", type=Path, default=Path("load_test.json"), help="JSON report (default ./load_test.json)"
    )
    args = parser.parse_args(argv)
    if args.clients < 1 or args.duration <= 0 or args.texts_per_request < 1:
        parser.error("--clients and --texts-per-request must be >= 1 and --duration > 0")
    if not (args.model / "nerforge.json").is_file():
        parser.error(f"{args.model} is not a nerforge model directory (no nerforge.json)")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    args = parse_args(argv)
    report = run(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    print(markdown(report))  # the script's output: a table to paste into docs/benchmarks.md
    logger.info("wrote %s", args.output)
    return 0 if report.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
