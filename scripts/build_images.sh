#!/usr/bin/env bash
# Build quantum-mind's images without any image registry (`make images`):
#   quantum-mind/base:bookworm   a Debian bookworm root file system made with debootstrap from the Debian archive
#                                this machine's apt uses, loaded with `docker import`; it trusts the same CA
#                                certificates as this machine (builds reach the package registries as it does)
#   quantum-mind/redis, quantum-mind/postgres   Redis and PostgreSQL from Debian's packages on that base
#   quantum-mind/cpu-worker      deploy/Dockerfile.cpu-worker on that base (also runs migrate, Flower, discover)
#   quantum-mind/gpu-worker      only with --gpu (`make images GPU=1`): deploy/Dockerfile.gpu-worker on the same base
#                                (vLLM, CUDA torch and its nvidia-* wheels from PyPI; 11 GB, ~19 min); it builds and
#                                imports here, but needs an NVIDIA GPU and driver to generate
# The same Python dependencies as `make install` (constraints.txt). Existing images are kept (a rebuild of an
# unchanged Dockerfile is cached); --rebuild-base makes a fresh root file system.
# With normal registry access, plain `docker-compose -f deploy/docker-compose.yml build` uses the public
# python/redis/postgres images instead (docs/deploy.md, "Images").
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=${QMIND_IMAGE_PREFIX:-quantum-mind}
TAG=${QMIND_IMAGE_TAG:-latest}
BASE=${QMIND_BASE_IMAGE:-$PREFIX/base:bookworm}
SUITE=bookworm
gpu=0
rebuild_base=0
for arg in "$@"; do
  case "$arg" in
    --gpu) gpu=1 ;;
    --rebuild-base) rebuild_base=1 ;;
    *) echo "usage: $0 [--gpu] [--rebuild-base]" >&2; exit 2 ;;
  esac
done

need() { command -v "$1" >/dev/null || { echo "error: $1 is needed ($2)" >&2; exit 1; }; }
need docker "apt-get install docker.io, then start dockerd"
docker info >/dev/null 2>&1 || { echo "error: the Docker engine does not answer (start dockerd)" >&2; exit 1; }

# The Debian mirror this machine's apt uses (deb822 or one-line sources).
mirror() {
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$uri" ] || { echo "error: no Debian mirror in /etc/apt/sources.list(.d); set QMIND_DEBIAN_MIRROR" >&2; exit 1; }
  echo "$uri"
}

build_base() {
  need debootstrap "apt-get install debootstrap"
  local root mirror_uri
  mirror_uri=${QMIND_DEBIAN_MIRROR:-$(mirror)}
  root=$(mktemp -d /tmp/qmind-rootfs.XXXXXX)
  trap 'rm -rf "$root"' RETURN
  echo "base: debootstrap $SUITE from the Debian archive into $root"
  debootstrap --variant=minbase --include=ca-certificates,python3,python3-venv,bubblewrap,tini \
    "$SUITE" "$root" "$mirror_uri" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
  # trust what this machine trusts (a site's TLS-inspecting proxy CA included), so apt and pip work in builds
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null
  fi
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root.log"
  tar -C "$root" -c . | docker import \
    -c 'ENV LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/ca-certificates.crt REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
    -c 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
  echo "base: $BASE"
}

if [ "$rebuild_base" = 1 ] || ! docker image inspect "$BASE" >/dev/null 2>&1; then
  build_base
else
  echo "base: $BASE (kept; --rebuild-base for a fresh one)"
fi

# BuildKit needs the buildx plugin; Debian's docker.io has the classic builder, which is enough here.
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0
build() {  # build NAME DOCKERFILE [ARGS...]
  local name=$1 file=$2
  shift 2
  local start=$SECONDS
  docker build --network host --build-arg "BASE_IMAGE=$BASE" -f "$file" -t "$PREFIX/$name:$TAG" "$@" . \
    >"/tmp/qmind-build-$name.log" 2>&1 || { tail -30 "/tmp/qmind-build-$name.log" >&2; exit 1; }
  echo "$name: $PREFIX/$name:$TAG ($((SECONDS - start)) s; log /tmp/qmind-build-$name.log)"
}
build redis deploy/Dockerfile.redis
build postgres deploy/Dockerfile.postgres
build cpu-worker deploy/Dockerfile.cpu-worker
if [ "$gpu" = 1 ]; then
  build gpu-worker deploy/Dockerfile.gpu-worker
  # The image as it runs (its own user, read-only root, no network); no GPU is needed for imports and the CLI.
  docker run --rm --network none --read-only --tmpfs /tmp "$PREFIX/gpu-worker:$TAG" python -c \
    "import torch, transformers, peft, vllm, workers.generation, workers.app; print('gpu-worker: torch', torch.__version__, 'CUDA', torch.version.cuda, '| vllm', vllm.__version__, '| transformers', transformers.__version__, '| peft', peft.__version__, '| GPU visible:', torch.cuda.is_available())" \
    || { echo "error: the gpu-worker image does not import its generators" >&2; exit 1; }
  docker run --rm --network none --read-only --tmpfs /tmp "$PREFIX/gpu-worker:$TAG" qmind --help >/dev/null \
    || { echo "error: qmind --help fails in the gpu-worker image" >&2; exit 1; }
  echo "gpu-worker: $(docker image inspect -f '{{.Size}}' "$PREFIX/gpu-worker:$TAG" | awk '{printf "%.1f GB", $1 / 1e9}')"
fi
