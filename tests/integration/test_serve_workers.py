"""``nerforge serve MODEL --workers N`` (issue 31, item 2): N processes answer on one port, each with its own model;
Ctrl-C stops them all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import build_tiny_token_model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return {int(p) for p in out}


def test_workers_share_the_port_and_stop_together(tmp_path: Path, tiny_encoder: Path) -> None:
    model = build_tiny_token_model(tiny_encoder, tmp_path / "model", max_length=16, stride=4)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nerforge", "serve", str(model), "--port", str(port), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        answering: set[int] = set()
        while time.monotonic() < deadline and len(answering) < 2:
            try:
                r = httpx.get(base + "/healthz", timeout=5)  # a new connection each time
                if r.status_code == 200:
                    answering.add(r.json()["process"])
            except httpx.TransportError:
                time.sleep(0.3)
            assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert len(answering) == 2, f"only {answering} answered"
        workers = _children(proc.pid)
        assert answering <= {p for w in workers for p in {w, *_children(w)}}  # the parent's worker processes
        found = httpx.post(base + "/v1/entities", json={"text": "Ann Smith works at Acme Corp in Zürich."},
                           timeout=30).json()  # fmt: skip
        assert found["entities"] and all(e["text"] for e in found["entities"])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode in (0, 130), err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    for pid in answering:  # no worker outlives the server
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_workers_must_be_at_least_one(tmp_path: Path, tiny_encoder: Path) -> None:
    model = build_tiny_token_model(tiny_encoder, tmp_path / "model", max_length=16, stride=4)
    proc = subprocess.run([sys.executable, "-m", "nerforge", "serve", str(model), "--workers", "0"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and "--workers" in proc.stderr and "Traceback" not in proc.stderr
