#!/usr/bin/env bash
# The test files of one kind, one per line, sorted. Unit tests are src/**/*.test.ts without the
# tag line `// @slow` (those start real engines, registries or load balancers); slow tests are the
# tagged ones and everything under test/ (the CLI against the real world).
#   scripts/test-files.sh unit | slow | all
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-all}
src=$(find src -name '*.test.ts' | sort)
slow_src=$(grep -l '^// @slow' $src || true)
case "$kind" in
  unit) comm -23 <(printf '%s\n' $src) <(printf '%s\n' $slow_src) ;;
  slow) { printf '%s\n' $slow_src; find test -name '*.test.ts'; } | sed '/^$/d' | sort ;;
  all) { printf '%s\n' $src; find test -name '*.test.ts'; } | sort ;;
  *) echo "usage: $0 unit|slow|all" >&2; exit 2 ;;
esac
