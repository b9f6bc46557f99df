#!/usr/bin/env bash
# Instructions per request: `subnet` (default and lazy negotiation) against
# raw rust-libp2p `request_response`, counted by valgrind's callgrind. Unlike
# wall time on a shared 2-core VM, counts repeat from run to run.
#
# Each stack runs `examples/compare.rs --profile N` twice, with N calls and
# with M > N calls; (count(M) - count(N)) / (M - N) is the cost of one
# request without the setup. Takes about 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example compare
bin=target/release/examples/compare

count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$@" 2>&1 |
    awk '/Collected/ { gsub(",", "", $4); print $4 }'
}

# per_request SMALL BIG [compare flags...]
per_request() {
  local small=$1 big=$2
  shift 2
  local a b
  a=$(count --profile "$small" "$@")
  b=$(count --profile "$big" "$@")
  echo $(((b - a) / (big - small)))
}

echo "| scenario | subnet | subnet lazy | request_response | subnet / request_response |"
echo "|---|---|---|---|---|"
for scenario in "64 B sequential:300:1200:" \
  "64 B, 64 in flight:1000:4000:--in-flight 64" \
  "1 MiB sequential:30:90:--payload 1048576"; do
  IFS=: read -r name small big flags <<<"$scenario"
  # shellcheck disable=SC2086 # flags split on purpose
  subnet=$(per_request "$small" "$big" $flags)
  # shellcheck disable=SC2086
  lazy=$(per_request "$small" "$big" $flags --lazy)
  # shellcheck disable=SC2086
  raw=$(per_request "$small" "$big" $flags --raw)
  ratio=$(awk -v s="$subnet" -v r="$raw" 'BEGIN { printf "%.2f", s / r }')
  echo "| $name | $subnet | $lazy | $raw | ${ratio}× |"
done
