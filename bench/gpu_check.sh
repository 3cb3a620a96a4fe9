#!/usr/bin/env bash
# The GPU check, in one run of under 10 minutes on a lent GPU machine whose image has torch + CUDA, transformers,
# sentence-transformers, onnxruntime, grpcio and protobuf but nothing of this project (docs/performance.md "GPU").
#
#   bash bench/gpu_check.sh --prepare   # here: the project + tritonclient + pytriton, unpacked and trimmed, as
#                                       # .whl/site.tar.gz (~45 MB: pytriton's wheel alone is 55 MB, over the limit)
#   bash bench/gpu_check.sh             # there, from the repository root, with .whl carried: prints the table
#
# Device tool: run(command="bash bench/gpu_check.sh", carry=[".whl"], timeout_s=600); the table also lands in
# $OUT/gpu_check.md when OUT is set.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=.whl
PY=${PYTHON:-python3}

prepare() {
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    rm -rf "$WHEELS" && mkdir -p "$WHEELS/wheels" "$WHEELS/stage"
    local pip=(.venv/bin/python -m pip)
    local sources
    sources=$(mktemp -d)  # build from a copy: setuptools leaves build/ folders beside the sources
    for package in contract client python_backend server; do
        cp -r "./$package" "$sources/"
        rm -rf "$sources/$package/build" "$sources/$package"/*.egg-info
        "${pip[@]}" wheel -q --no-deps --no-build-isolation -w "$WHEELS/wheels" "$sources/$package"
    done
    rm -rf "$sources"
    # What the GPU image (Python 3.12) lacks. pytriton bundles its own libcudart 12.
    "${pip[@]}" download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_35_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux1_x86_64 -d "$WHEELS/wheels" tritonclient==2.51.0 nvidia-pytriton==0.7.0 orjson==3.11.4
    for wheel in "$WHEELS"/wheels/*.whl; do
        .venv/bin/python -m zipfile -e "$wheel" "$WHEELS/stage"
    done
    # Unpacked wheels keep their data files under NAME.data/{purelib,platlib,scripts,data}: lay them out as pip would.
    for data in "$WHEELS"/stage/*.data; do
        for kind in purelib platlib; do
            [ -d "$data/$kind" ] && cp -a "$data/$kind/." "$WHEELS/stage/"
        done
        rm -rf "$data"
    done
    # Not needed there, and over the carry limit with them: perf_analyzer (the check drives its own gRPC load),
    # the stubs and libpython of other Python versions.
    local stubs=$WHEELS/stage/pytriton/tritonserver/python_backend_stubs
    find "$stubs" -mindepth 1 -maxdepth 1 ! -name 3.12 -exec rm -rf {} +
    rm -f "$WHEELS"/stage/nvidia_pytriton.libs/libpython3-*.13.so.*
    tar -czf "$WHEELS/site.tar.gz" -C "$WHEELS/stage" .
    rm -rf "$WHEELS/stage" "$WHEELS/wheels"
    du -sh "$WHEELS"
    local bytes
    bytes=$(du -sb "$WHEELS" | cut -f1)
    if [ "$bytes" -gt $((56 * 1024 * 1024)) ]; then
        echo "error: $WHEELS is $bytes bytes; with the tree the device tool carries at most 64 MiB" >&2
        exit 1
    fi
}

check() {
    [ -f "$WHEELS/site.tar.gz" ] || { echo "error: no $WHEELS/site.tar.gz: run bash bench/gpu_check.sh --prepare here first" >&2; exit 1; }
    mkdir -p /tmp/site && tar -xzf "$WHEELS/site.tar.gz" -C /tmp/site
    export PYTHONPATH=/tmp/site:$PWD
    export PYTHONUNBUFFERED=1
    local out=${OUT:-/tmp}
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
    timeout 540 "$PY" -m bench.gpu_check --work /tmp/gpu-check --seconds 8 | tee "$out/gpu_check.md"
}

case "${1:-}" in
    --prepare) prepare ;;
    "") check ;;
    *) echo "usage: bash bench/gpu_check.sh [--prepare]" >&2; exit 2 ;;
esac
