"""The deployment files hold what issue 19 asks of them (the image itself is built and run by deploy/test-image.sh,
``make image-test``: minutes and root, so not here)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONTAINERFILE = (REPO / "deploy" / "Containerfile").read_text(encoding="utf-8")
SCRIPT = REPO / "deploy" / "test-image.sh"
RAY_SCRIPT = REPO / "deploy" / "test-ray-replica.sh"


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", CONTAINERFILE)
    return [
        (line.split()[0].upper(), line.split(None, 1)[1] if len(line.split()) > 1 else "")
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_containerfile_builds_a_non_root_cpu_image_with_a_health_check() -> None:
    steps = _instructions()
    kinds = [k for k, _ in steps]
    assert kinds[0] == "ARG" and steps[0][1].startswith("BASE_IMAGE=") and kinds[1] == "FROM"
    assert any(k == "ARG" and v.startswith("MODEL_DIR=") for k, v in steps)
    user = [v for k, v in steps if k == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert kinds.index("USER") > max(i for i, k in enumerate(kinds) if k == "RUN")  # every RUN as root, then dropped
    health = next(v for k, v in steps if k == "HEALTHCHECK")
    assert "/healthz" in health
    cmd = next(v for k, v in reversed(steps) if k == "CMD")
    assert '"serve"' in cmd and '"0.0.0.0"' in cmd  # inside the container only; serve's own default stays loopback
    installs = " ".join(v for k, v in steps if k == "RUN")
    assert "torch==" in installs and "whl/cpu" in CONTAINERFILE  # the CPU build, never CUDA packages
    assert any(k == "ARG" and v == "EXTRAS=serve,onnx" for k, v in steps) and "/src[${EXTRAS}]" in installs
    assert "${RAY_VERSION:+" in installs  # Ray pinned to the cluster's version only when asked for
    for folder in ("deploy/no-model", "deploy/wheels", "deploy/extra-ca"):  # COPY sources that must exist
        assert (REPO / folder).is_dir(), folder


def test_the_check_script_parses_and_publishes_on_loopback_only() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    text = SCRIPT.read_text(encoding="utf-8")
    publishes = re.findall(r"--publish\s+\"?([^\s\"]+)", text)
    assert publishes and all(p.startswith("127.0.0.1:") for p in publishes)
    assert "trap cleanup EXIT" in text and 'podman rm -f "$NAME"' in text  # what it started is removed
    assert "/v1/entities" in text and "/healthz" in text
    conf = (REPO / "deploy" / "containers.conf").read_text(encoding="utf-8")
    assert 'runtime = "runc"' in conf and "nofile=" in conf


def test_make_targets_run_the_script() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^image:.*\n\tbash deploy/test-image.sh --build-only$", makefile, re.M)
    assert re.search(r"^image-test:.*\n\tbash deploy/test-image.sh$", makefile, re.M)


def test_the_ray_replica_script_parses_stays_on_loopback_and_cleans_up() -> None:
    assert subprocess.run(["bash", "-n", str(RAY_SCRIPT)], capture_output=True).returncode == 0
    text = RAY_SCRIPT.read_text(encoding="utf-8")
    assert text.count("--node-ip-address 127.0.0.1") == 2  # the head and the container node, on loopback
    assert "--publish" not in text and "0.0.0.0" not in text
    assert "trap cleanup EXIT" in text and 'podman rm -f "$NAME"' in text and "stop --force" in text
    assert "NERFORGE_IMAGE_EXTRAS=serve,onnx,ray" in text and "NERFORGE_IMAGE_RAY_VERSION=" in text
    assert "ServeReplica" in text and "/v1/entities" in text  # a replica in the container, answering
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^ray-replica-test:.*\n\t.*bash deploy/test-ray-replica.sh$", makefile, re.M)
