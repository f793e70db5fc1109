#!/usr/bin/env bash
# Measures the normal courtbak binary on a repository made by bench/scale:
#   COURTBAK_PASSWORD=pw bash bench/scale/measure.sh REPO [NEW_DATA_SIZE]
# See bench/README.md. Prints one line per operation: wall seconds, peak RSS.
set -euo pipefail
repo=$1
size=${2:-1G}
: "${COURTBAK_PASSWORD:?set COURTBAK_PASSWORD}"
here=$(cd "$(dirname "$0")/../.." && pwd)
work=${WORK:-$(mktemp -d /var/tmp/courtbak-scale.XXXXXX)}
bin=${COURTBAK:-$work/courtbak}
[ -x "$bin" ] || (cd "$here" && go build -o "$bin" ./cmd/courtbak)
export COURTBAK_CACHE_DIR=${COURTBAK_CACHE_DIR:-$work/cache}
src=$work/src # new data for every run
rm -rf "$src" && mkdir -p "$src"
head -c "$size" /dev/urandom >"$src/hearing.mp4"

# measure NAME CMD...: wall time and peak RSS of one run of the binary,
# and the seconds from its start to the first new pack in the repository
# (start-up: open, load the index, read, upload), if it uploads one.
measure() {
  local name=$1; shift
  local marker=$work/marker start first=-
  touch "$marker"
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$work/time.txt" "$@" >"$work/out.txt" 2>"$work/err.txt" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$first" = - ] && [ -n "$(find "$repo/data" -type f -newer "$marker" -print -quit)" ]; then
      first=$(echo "$(date +%s.%N) - $start" | bc)
    fi
    sleep 0.05
  done
  wait "$pid" || { echo "$name failed:"; cat "$work/err.txt"; return 1; }
  local wall rss cpu
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.1f", s}' "$work/time.txt")
  printf '%-32s wall %-9s cpu %7s s  peak RSS %6d MB  first pack %s s\n' "$name" "$wall" "$cpu" $((rss / 1024)) "$first"
}

echo "repository $repo: $(ls "$repo/index" | wc -l) index files, $(find "$repo/data" -type f | wc -l) packs"
rm -rf "$COURTBAK_CACHE_DIR"
measure "ls latest, cold cache" "$bin" -r "$repo" ls latest
measure "ls latest, warm cache" "$bin" -r "$repo" ls latest
measure "backup of $size new data" "$bin" -r "$repo" backup --host bench "$src"
measure "unchanged re-backup" "$bin" -r "$repo" backup --host bench "$src"
first=$("$bin" -r "$repo" snapshots --host scale --json | grep -o '"id":"[0-9a-f]*"' | awk -F'"' 'NR == 1 {print $4}')
sample=$("$bin" -r "$repo" ls "$first" --json | awk -F'"' '/"type":"file"/ && !done {print $4; done = 1}')
rm -rf "$work/restore"
measure "restore of one file" "$bin" -r "$repo" restore "$first" --target "$work/restore" --include "$sample"
measure "verify" "$bin" -r "$repo" verify
if [ "${PRUNE:-1}" = 1 ]; then
  n=$("$bin" -r "$repo" snapshots --host scale --json | grep -o '"id":"[0-9a-f]*"' | wc -l)
  "$bin" -r "$repo" forget --host scale --keep-last $((n / 2)) >/dev/null
  measure "prune --grace 0 (half forgotten)" "$bin" -r "$repo" prune --grace 0
fi
echo "work directory: $work (remove it when done)"
