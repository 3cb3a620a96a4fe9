#!/usr/bin/env bash
# perf_analyzer recipes against the compose `triton` service (run by the `perf` service, -py3-sdk image).
#   PERF_MODEL      model to measure (default: embed)
#   PERF_PROTOCOL   grpc (default) or http
#   PERF_RECIPE     latency | throughput | sweep (default: sweep)
set -euo pipefail
model="${PERF_MODEL:-embed}"
protocol="${PERF_PROTOCOL:-grpc}"
if [ "$protocol" = "grpc" ]; then url="${TRITON_GRPC_URL:-triton:8001}"; else url="${TRITON_HTTP_URL:-triton:8000}"; fi
common=(-m "$model" -u "$url" -i "$protocol" --input-data /perf/texts.json
        --measurement-mode count_windows --measurement-request-count 200 --percentile 95)
case "${PERF_RECIPE:-sweep}" in
  latency)    perf_analyzer "${common[@]}" --concurrency-range 1 ;;        # one client: p95 latency
  throughput) perf_analyzer "${common[@]}" --concurrency-range 32 ;;       # saturate the dynamic batcher
  sweep)      perf_analyzer "${common[@]}" --concurrency-range 1:32:2 -f /results/perf_${model}.csv ;;
  *) echo "PERF_RECIPE must be latency, throughput or sweep" >&2; exit 2 ;;
esac
