#!/usr/bin/env bash
# Build the nerforge image with podman on this machine and check it serves: /healthz, then one POST /v1/entities.
#
#   bash deploy/test-image.sh              (root; a few minutes the first time: base image, torch, dependencies)
#   bash deploy/test-image.sh --build-only (make image: build localhost/nerforge:test, run nothing)
#
# Steps: install podman, mmdebstrap and runc where missing; build a Debian bookworm base image from the apt sources
# this machine already uses (once; kept as localhost/nerforge-base); train the quickstart model if runs/quickstart
# has none; build localhost/nerforge:test with that model baked in (the CPU torch wheel and the machine's CA
# certificates go into the build context); run it publishing on 127.0.0.1 only; check; stop and remove what it
# started. Exit 0 only if every check passed. Writes deploy/results/image.json (size, start-up time, check times).
set -euo pipefail
BUILD_ONLY=""
case "${1:-}" in
  --build-only) BUILD_ONLY=yes ;;
  "") ;;
  *) echo "usage: bash deploy/test-image.sh [--build-only]" >&2; exit 2 ;;
esac

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export CONTAINERS_CONF="$REPO/deploy/containers.conf"
BASE=localhost/nerforge-base
IMAGE="${NERFORGE_IMAGE_TAG:-localhost/nerforge:test}"
EXTRAS="${NERFORGE_IMAGE_EXTRAS:-serve,onnx}"   # serve,onnx,ray: an image that can join a Ray cluster (test-ray-replica.sh)
RAY_VERSION="${NERFORGE_IMAGE_RAY_VERSION:-}"
NAME="nerforge-test-$$"
PORT="${NERFORGE_TEST_PORT:-18080}"
MODEL="${NERFORGE_IMAGE_MODEL:-runs/quickstart/model}"
RESULTS="$REPO/deploy/results"
WORK="$(mktemp -d)"

say() { printf 'test-image: %s\n' "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }
cleanup() {
  podman rm -f "$NAME" >/dev/null 2>&1 || true
  rm -rf "$WORK" "$REPO/deploy/wheels/"*.whl "$REPO/deploy/extra-ca/"*.crt
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || fail "run as root (podman here is rootful)"
missing=()
for tool in podman mmdebstrap runc; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman mmdebstrap runc >/dev/null
fi

# 1. The base: Debian bookworm, minimal, with Python 3.11 and venv; from this machine's apt sources, built once.
if ! podman image exists "$BASE"; then
  sources=(/etc/apt/sources.list.d/*.sources /etc/apt/sources.list)
  mirror=""
  for f in "${sources[@]}"; do
    if [ -f "$f" ] && grep -q "debian" "$f"; then mirror="$f"; break; fi
  done
  [ -n "$mirror" ] || fail "no Debian apt source found in /etc/apt"
  say "building the base image from $mirror"
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$WORK/base.tar" "$mirror"
  podman import "$WORK/base.tar" "$BASE" >/dev/null
fi

# 2. A small model: the quickstart's.
if [ "$MODEL" != deploy/no-model ] && [ ! -f "$MODEL/nerforge.json" ]; then
  say "training the quickstart model into $MODEL"
  make quickstart >/dev/null
fi

# 3. The image, with this machine's CPU torch wheel and CA certificates in the context.
pip download --quiet --no-deps --dest "$REPO/deploy/wheels" torch==2.13.0 || say "no local torch wheel; the build downloads it"
cp /usr/local/share/ca-certificates/*.crt "$REPO/deploy/extra-ca/" 2>/dev/null || true
say "building $IMAGE"
start=$(date +%s)
podman build --quiet --format docker --file deploy/Containerfile --tag "$IMAGE" \
  --build-arg BASE_IMAGE="$BASE" --build-arg MODEL_DIR="$MODEL" --build-arg EXTRAS="$EXTRAS" \
  --build-arg RAY_VERSION="$RAY_VERSION" . >/dev/null
build_s=$(( $(date +%s) - start ))
size=$(podman image inspect "$IMAGE" --format '{{.Size}}')
if [ -n "$BUILD_ONLY" ]; then
  say "built $IMAGE ($(python3 -c "print(f'{$size / 1e9:.2f} GB')"), ${build_s} s); run it with:"
  say "  podman run --rm -p 127.0.0.1:8000:8000 $IMAGE"
  exit 0
fi

# 4. Run it, on 127.0.0.1 only, and check it.
say "running $IMAGE on 127.0.0.1:$PORT"
t0=$(date +%s.%N)
podman run --detach --name "$NAME" --publish "127.0.0.1:$PORT:8000" --health-interval=disable "$IMAGE" >/dev/null  # no systemd timers here; checked below with "podman healthcheck run"
healthy=""
for _ in $(seq 1 240); do
  if curl --silent --fail --max-time 2 "http://127.0.0.1:$PORT/healthz" >"$WORK/health.json"; then healthy=yes; break; fi
  if [ "$(podman inspect "$NAME" --format '{{.State.Running}}')" != "true" ]; then
    podman logs "$NAME" >&2 || true
    fail "the container stopped before it answered /healthz"
  fi
  sleep 0.5
done
[ -n "$healthy" ] || { podman logs "$NAME" >&2 || true; fail "no answer on /healthz within 120 s"; }
startup_s=$(python3 -c "import time; print(round(time.time() - $t0, 1))")
say "healthy after ${startup_s} s: $(cat "$WORK/health.json")"

text='Senior data engineer: Python, SQL and Power BI; strong communication skills.'
curl --silent --fail --max-time 30 -H 'Content-Type: application/json' \
  -d "{\"text\": \"$text\"}" "http://127.0.0.1:$PORT/v1/entities" >"$WORK/entities.json" \
  || fail "POST /v1/entities failed"
python3 - "$WORK/entities.json" "$text" <<'PY' || fail "POST /v1/entities returned a wrong answer"
import json, sys
doc = json.load(open(sys.argv[1]))
text = sys.argv[2]
entities = doc["entities"]
assert entities, f"no entity found in {text!r}: {doc}"
for e in entities:
    assert text[e["start"]:e["end"]] == e["text"], e
print("test-image: entities:", "; ".join(f"{e['text']} [{e['label']}]" for e in entities), file=sys.stderr)
PY
user=$(podman exec "$NAME" id -u)
[ "$user" != 0 ] || fail "the server runs as root in the container"
podman healthcheck run "$NAME" >/dev/null || fail "the image's HEALTHCHECK does not pass"
health=$(podman inspect "$NAME" --format '{{.Config.Healthcheck.Test}}' 2>/dev/null || echo "")
memory=$(podman stats --no-stream --format '{{.MemUsage}}' "$NAME" 2>/dev/null | cut -d/ -f1 | xargs || echo "")

mkdir -p "$RESULTS"
IMAGE_BYTES="$size" BUILD_S="$build_s" STARTUP_S="$startup_s" MEMORY="$memory" USER_ID="$user" HEALTH="$health" \
PODMAN_VERSION="$(podman --version | awk '{print $3}')" BASE="$BASE" IMAGE="$IMAGE" MODEL="$MODEL" \
python3 - "$RESULTS/image.json" <<'PY'
import json, os, platform, sys, time
e = os.environ
json.dump({
    "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores, podman {e['PODMAN_VERSION']}",
    "base_image": f"{e['BASE']} (Debian bookworm minbase, Python 3.11)", "image": e["IMAGE"], "model": e["MODEL"],
    "image_bytes": int(e["IMAGE_BYTES"]), "build_seconds": int(e["BUILD_S"]), "startup_seconds": float(e["STARTUP_S"]),
    "memory_after_one_request": e["MEMORY"], "user_id": int(e["USER_ID"]), "healthcheck": e["HEALTH"],
}, open(sys.argv[1], "w"), indent=2)
PY
say "image $(python3 -c "print(f'{$size / 1e9:.2f} GB')"), built in ${build_s} s, healthy ${startup_s} s after start, uid $user"
podman rm -f "$NAME" >/dev/null
say "passed"
