#!/usr/bin/env bash
# perf_analyzer recipes against the compose `triton` service (run by the `perf` service, -py3-sdk image).
#   PERF_MODEL      model to measure (default: embed)
#   PERF_PROTOCOL   grpc (default) or http
#   PERF_RECIPE     latency | throughput | sweep (default: sweep)
#   PERF_DATA       perf_analyzer --input-data file (default: /perf/texts.json, TEXT only: options stay unset)
#   RESULTS_DIR     where the sweep writes its CSV (default: /results)
#   PERF_STABILITY  % of variation between windows accepted as stable (default 10; raise it on shared hosts)
set -euo pipefail
model="${PERF_MODEL:-embed}"
protocol="${PERF_PROTOCOL:-grpc}"
if [ "$protocol" = "grpc" ]; then url="${TRITON_GRPC_URL:-triton:8001}"; else url="${TRITON_HTTP_URL:-triton:8000}"; fi
common=(-m "$model" -u "$url" -i "$protocol" --input-data "${PERF_DATA:-/perf/texts.json}"
        --measurement-mode count_windows --measurement-request-count 200 --percentile 95
        --stability-percentage "${PERF_STABILITY:-10}")
case "${PERF_RECIPE:-sweep}" in
  latency)    perf_analyzer "${common[@]}" --concurrency-range 1 ;;        # one client: p95 latency
  throughput) perf_analyzer "${common[@]}" --concurrency-range 32 ;;       # saturate the dynamic batcher
  sweep)      perf_analyzer "${common[@]}" --concurrency-range 1:32:2 -f "${RESULTS_DIR:-/results}/perf_${model}.csv" ;;
  *) echo "PERF_RECIPE must be latency, throughput or sweep" >&2; exit 2 ;;
esac
