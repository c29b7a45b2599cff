#!/usr/bin/env bash
# The container image as a Ray Serve replica: a node of a Ray cluster that runs in the image and serves the model.
#
#   bash deploy/test-ray-replica.sh        (root; builds localhost/nerforge:ray with Ray inside first, if missing)
#
# Steps: build the image with Ray (deploy/test-image.sh --build-only with EXTRAS=serve,onnx,ray and this machine's
# Ray version: every node of a cluster runs the same Ray); start a Ray head on 127.0.0.1 on this machine (one CPU);
# start the image as the cluster's second node (podman, host network, one CPU, the model mounted at the same path
# as on the head: a Ray Serve replica loads the path it is given); run `nerforge serve MODEL --ray --address HEAD
# --replicas 2 --threads 1` here; check that two replicas run, one of them inside the container (its processes),
# and that the API answers with the entities the model finds on its own. Stops everything it started; exit 0 only
# if every check passed. Needs nerforge with its ray extra in the Python that runs it (PYTHON, default .venv's).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export CONTAINERS_CONF="$REPO/deploy/containers.conf"
IMAGE="${NERFORGE_RAY_IMAGE:-localhost/nerforge:ray}"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
RAY="$(dirname "$PYTHON")/ray"
MODEL="$(cd "${NERFORGE_IMAGE_MODEL:-runs/quickstart/model}" 2>/dev/null && pwd)" \
  || { echo "test-ray-replica: no model at ${NERFORGE_IMAGE_MODEL:-runs/quickstart/model} (make quickstart)" >&2; exit 1; }
NAME="nerforge-ray-node-$$"
WORK="$(mktemp -d /tmp/nfrr.XXXX)"   # short: Ray's socket paths must fit in 107 characters
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL=minor HF_HUB_OFFLINE=1

say() { printf 'test-ray-replica: %s\n' "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }
SERVER_PID=""
cleanup() {
  [ -z "$SERVER_PID" ] || { kill -INT "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
  podman rm -f "$NAME" >/dev/null 2>&1 || true
  "$RAY" stop --force >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || fail "run as root (podman here is rootful)"
[ -f "$MODEL/nerforge.json" ] || fail "$MODEL is not a nerforge model directory"
ray_version="$("$PYTHON" -c 'import ray; print(ray.__version__)')" || fail "no Ray in $PYTHON (pip install 'nerforge[ray]')"

# 1. The image with Ray inside, the cluster's Ray version.
if ! podman image exists "$IMAGE" \
   || [ "$(podman run --rm "$IMAGE" python -c 'import ray; print(ray.__version__)' 2>/dev/null)" != "$ray_version" ]; then
  say "building $IMAGE with Ray $ray_version"
  NERFORGE_IMAGE_TAG="$IMAGE" NERFORGE_IMAGE_EXTRAS=serve,onnx,ray NERFORGE_IMAGE_RAY_VERSION="$ray_version" \
    NERFORGE_IMAGE_MODEL=deploy/no-model bash deploy/test-image.sh --build-only
fi

# 2. A head on this machine, one CPU.
port="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$RAY" start --head --node-ip-address 127.0.0.1 --port "$port" --include-dashboard false --num-cpus 1 \
  --temp-dir "$WORK" --disable-usage-stats >"$WORK/head.log" 2>&1 || { cat "$WORK/head.log" >&2; fail "ray start --head"; }
say "head at 127.0.0.1:$port (Ray $ray_version)"

# 3. The image as the second node: host network (the head listens on 127.0.0.1), one CPU, the model at its path.
podman run --detach --name "$NAME" --network host --shm-size 1g --health-interval=disable -v "$MODEL:$MODEL:ro" \
  -e RAY_USAGE_STATS_ENABLED=0 -e RAY_AUTH_MODE=disabled -e HF_HUB_OFFLINE=1 "$IMAGE" \
  ray start --address "127.0.0.1:$port" --node-ip-address 127.0.0.1 --num-cpus 1 --object-store-memory 100000000 \
  --disable-usage-stats --block >/dev/null
nodes=0
for _ in $(seq 1 120); do
  nodes="$("$PYTHON" - "$port" <<'PY' 2>/dev/null || echo 0
import logging, sys, ray
ray.init(address=f"127.0.0.1:{sys.argv[1]}", logging_level=logging.ERROR)
print(len([n for n in ray.nodes() if n["Alive"]]))
PY
)"
  [ "$nodes" = 2 ] && break
  [ "$(podman inspect "$NAME" --format '{{.State.Running}}')" = "true" ] || { podman logs "$NAME" >&2; fail "the container node stopped"; }
  sleep 1
done
[ "$nodes" = 2 ] || { podman logs "$NAME" >&2; fail "the container did not join the cluster"; }
say "the container joined: 2 nodes"

# 4. Two replicas behind Ray Serve's proxy on the head; one CPU each, so one on each node.
http_port="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$PYTHON" -m nerforge serve "$MODEL" --ray --address "127.0.0.1:$port" --replicas 2 --threads 1 --port "$http_port" \
  >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
"$PYTHON" - "$MODEL" "$port" "$http_port" "$NAME" <<'PY' || { tail -40 "$WORK/serve.log" >&2; fail "the checks above"; }
import logging, subprocess, sys, time

import httpx
import ray
from ray import serve

from nerforge.prediction.tagger import Tagger

model, port, http_port, name = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
base = f"http://127.0.0.1:{http_port}"
deadline = time.monotonic() + 600
while time.monotonic() < deadline:
    try:
        if httpx.get(base + "/healthz", timeout=5).status_code == 200:
            break
    except httpx.HTTPError:
        pass
    time.sleep(1)
else:
    sys.exit("test-ray-replica: the API did not answer within 600 s")
ray.init(address=f"127.0.0.1:{port}", logging_level=logging.ERROR)
states = {}
for _ in range(300):
    states = serve.status().applications["nerforge"].deployments["nerforge"].replica_states
    if states.get("RUNNING") == 2 and ray.available_resources().get("CPU", 0) == 0:
        break
    time.sleep(1)
assert states.get("RUNNING") == 2 and ray.available_resources().get("CPU", 0) == 0, states
ray.shutdown()
inside = subprocess.run(["podman", "exec", name, "sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"],
                        capture_output=True, text=True).stdout
assert "ServeReplica" in inside, "no Ray Serve replica runs in the container"
texts = ["Alice Smith joined Acme Corp in Paris last March.", "Shares of Globex rose after it opened in Toronto.",
         "Dr. Chen from Stanford University met colleagues at MIT in Boston."]
expected = [[e.to_dict() for e in found] for found in Tagger.load(model).predict(texts)]


def ask(_: int) -> list:
    return [r["entities"] for r in httpx.post(base + "/v1/entities", json={"texts": texts}, timeout=120).json()["results"]]


from concurrent.futures import ThreadPoolExecutor

with ThreadPoolExecutor(16) as pool:  # under load the proxy sends requests to the container's replica too
    answers = list(pool.map(ask, range(160)))
assert all(a == expected for a in answers), [a for a in answers if a != expected][:1]
# the replica's own log, in the container (under the cluster's temp dir)
logs = subprocess.run(["podman", "exec", name, "sh", "-c", "find /tmp -path '*/logs/serve/replica_*' -name '*.log' -exec cat {} +"],
                      capture_output=True, text=True).stdout
served = logs.count("/v1/entities")
assert served > 0, "the container's replica served no request"
print(f"test-ray-replica: 2 replicas running, one in the container, which served {served} of 160 requests; every "
      f"answer had the {sum(map(len, expected))} entities the model alone finds", file=sys.stderr)
PY
say "passed"
