#!/usr/bin/env bash
# The benchmark on a GPU machine in one call (bench/README.md, "On a real GPU").
#
#   bash bench/gpu-machine.sh prepare [--no-debs]   here: build the bundle and gather what the GPU machine lacks into
#                                                   bench/.tmp/gpu (git-ignored): the bundle, Dawn for linux-x64,
#                                                   this machine's node binary (xz) and Debian's Vulkan loader (.deb)
#   bash bench/gpu-machine.sh run [bench options]   there (or here, to test it): unpack those, find the NVIDIA Vulkan
#                                                   driver, run the suite (default: --profile gpu --require-hardware)
#                                                   and write results, log and environment to $OUT (else bench/results)
#
# The device call: command "bash bench/gpu-machine.sh run", carry ["bench/.tmp/gpu"], timeout_s 600. By default the gpu
# profile stops starting workloads after 5 minutes and the run is stopped after 550 s (MP_BENCH_TIMEOUT_S), keeping the
# results' last snapshot, so the call ends inside its 10-minute limit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARRY="$ROOT/bench/.tmp/gpu"
DAWN_DIR="node_modules/webgpu/dist/linux-x64"

die() {
  echo "gpu-machine.sh: $*" >&2
  exit 1
}

prepare() {
  local debs=1
  for arg in "$@"; do
    case "$arg" in
      --no-debs) debs=0 ;;
      *) die "prepare: unknown option $arg" ;;
    esac
  done
  cd "$ROOT"
  [ -f "$DAWN_DIR/dawn.node" ] || die "prepare: $DAWN_DIR/dawn.node is missing (run npm ci)"
  npx vite build --config bench/vite.bench.config.ts
  rm -rf "$CARRY"
  mkdir -p "$CARRY/$DAWN_DIR" "$CARRY/debs"
  cp dist-bench/bench.mjs dist-bench/bench.mjs.map "$CARRY/"
  cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$CARRY/node_modules/webgpu/"
  gzip -c "$DAWN_DIR/dawn.node" >"$CARRY/$DAWN_DIR/dawn.node.gz"
  # Node with its debug sections stripped, in xz (-1: fast, and 25% smaller than gzip): the carry limit is 64 MiB with
  # the working tree included.
  local node_copy
  node_copy="$(mktemp)"
  cp "$(command -v node)" "$node_copy"
  strip --strip-debug "$node_copy" 2>/dev/null || true
  if command -v xz >/dev/null; then
    xz -1 -T1 -c "$node_copy" >"$CARRY/node.xz"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(open(sys.argv[1], "rb"), lzma.open(sys.argv[2], "wb", preset=1))' "$node_copy" "$CARRY/node.xz"
  fi
  rm -f "$node_copy"
  if [ "$debs" = 1 ]; then
    # Debian's Vulkan loader for amd64, fetched the way /work/.library/device/README.md describes.
    local apt_opts=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
    mkdir -p /tmp/amd64/partial
    apt-get "${apt_opts[@]}" update >/dev/null
    (cd "$CARRY/debs" && apt-get "${apt_opts[@]}" download libvulkan1 libglvnd0 libglx0 libegl1 libgl1 libopengl0 libgles2)
  fi
  echo "gpu-machine.sh: bench/.tmp/gpu holds $(du -sh "$CARRY" | cut -f1) (the device call carries at most 64 MiB in all)"
}

# Decompresses an .xz file with xz, or with Python's lzma module where xz is not installed.
unxz_to() {
  if command -v xz >/dev/null; then
    xz -dc "$1" >"$2"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  fi
}

run() {
  cd "$ROOT"
  [ -f "$CARRY/bench.mjs" ] || die "run: $CARRY/bench.mjs is missing: run 'bash bench/gpu-machine.sh prepare' here and carry bench/.tmp/gpu"
  local out="${OUT:-$ROOT/bench/results}"
  mkdir -p "$out"
  app="$(mktemp -d)"
  trap 'rm -rf "$app"' EXIT
  cp "$CARRY/bench.mjs" "$CARRY/bench.mjs.map" "$app/"
  mkdir -p "$app/$DAWN_DIR"
  cp "$CARRY/node_modules/webgpu/package.json" "$CARRY/node_modules/webgpu/index.js" "$app/node_modules/webgpu/"
  gunzip -c "$CARRY/$DAWN_DIR/dawn.node.gz" >"$app/$DAWN_DIR/dawn.node"

  local node_bin
  node_bin="$(command -v node || true)"
  if [ -z "$node_bin" ] || [ "${MP_CARRIED_NODE:-0}" = 1 ]; then
    unxz_to "$CARRY/node.xz" "$app/node"
    chmod +x "$app/node"
    node_bin="$app/node"
  fi

  # Dawn needs the Vulkan loader, and NVIDIA's Vulkan driver (libGLX_nvidia) needs glvnd's libraries; the GPU image may
  # lack either (/work/.library/device/README.md, "Headless rendering"). A carried .deb is unpacked only when a library
  # it ships is missing here, so nothing installed is replaced. grep reads all of its input (grep -q would end the
  # pipe early and fail it under pipefail).
  local deb lib unpacked=0 have
  have="$(ldconfig -p)"
  for deb in "$CARRY"/debs/*.deb; do
    [ -f "$deb" ] || continue
    # The sonames it ships: its links named <lib>.so.<major> (dpkg-deb -c prints "... ./path/libX.so.1 -> target").
    for lib in $(dpkg-deb -c "$deb" | grep -o '/[^/ ]*\.so\.[0-9]* ->' | sed 's|^/||; s| ->$||' | sort -u); do
      if ! grep -F "$lib " <<<"$have" >/dev/null; then
        echo "gpu-machine.sh: unpacking $(basename "$deb") (no $lib here)"
        dpkg -x "$deb" /
        unpacked=1
        break
      fi
    done
  done
  [ "$unpacked" = 0 ] || ldconfig
  ldconfig -p | grep 'libvulkan\.so\.1' >/dev/null || die "run: no libvulkan.so.1 here and no loader .deb in bench/.tmp/gpu/debs"
  local icd
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$icd" ]; then
      export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
      break
    fi
  done
  if [ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ]; then
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  fi

  {
    echo "date: $(date -u +%FT%TZ)"
    echo "node: $node_bin $("$node_bin" --version)"
    echo "vulkan icd: ${VK_ICD_FILENAMES:-none found}"
    nvidia-smi -L 2>&1 || echo "nvidia-smi: not available"
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 || true
  } >"$out/gpu-machine-env.txt"

  local args=("$@")
  [ ${#args[@]} -gt 0 ] || args=(--profile gpu --require-hardware)
  set -o pipefail
  # The suite stops starting workloads at its budget, but one already running can overrun it; the timeout ends the run
  # inside the device call's 10 minutes, and the last snapshot of the results is kept.
  timeout -k 5 "${MP_BENCH_TIMEOUT_S:-550}" "$node_bin" --expose-gc "$app/bench.mjs" --out "$out" "${args[@]}" 2>&1 | tee "$out/bench-log.txt"
}

case "${1:-}" in
  prepare) shift && prepare "$@" ;;
  run) shift && run "$@" ;;
  *) die "usage: bash bench/gpu-machine.sh prepare [--no-debs] | run [bench options]" ;;
esac
