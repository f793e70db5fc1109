#!/usr/bin/env bash
# The main job end to end on a local default: generate sample court
# recordings, back them up, back up again after a hearing grows and an
# exhibit is filed, restore, and compare byte for byte.
#
#   bash testdata/demo.sh            # work in a fresh temporary directory
#   DEMO_DIR=/path SIZE=2G bash testdata/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

work=${DEMO_DIR:-$(mktemp -d -t courtbak-demo-XXXXXX)}
size=${SIZE:-512M}
mkdir -p "$work"
bin=$work/courtbak
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "build courtbak"
go build -o "$bin" ./cmd/courtbak
"$bin" version

step "generate $size of sample recordings in $work/recordings"
go run ./testdata/cmd/genrecordings -out "$work/recordings" -size "$size"

export COURTBAK_REPOSITORY=$work/city-repo
export COURTBAK_PASSWORD_FILE=$work/password
export COURTBAK_CACHE_DIR=$work/cache
head -c 24 /dev/urandom | base64 >"$COURTBAK_PASSWORD_FILE"

step "init the city court's repository"
"$bin" init

step "first backup"
"$bin" backup --tag nightly "$work/recordings"

step "a hearing runs on and an exhibit is filed; second backup"
live=$(find "$work/recordings" -name 'live-recording.mp4' | head -n 1)
go run ./testdata/cmd/genrecordings -append "$live" -bytes 32M
first=$(find "$work/recordings" -name '*.mp4' ! -name 'live-recording.mp4' | head -n 1)
cp -p "$first" "$work/recordings/exhibit-copy.mp4"
"$bin" backup --tag nightly "$work/recordings"

step "snapshots"
"$bin" snapshots

step "what changed"
first_id=$("$bin" snapshots --json | grep -o '"id":"[0-9a-f]*"' | head -n 1 | cut -d'"' -f4)
"$bin" diff "$first_id" latest

step "restore the latest snapshot (every file is checked against its BLAKE3)"
"$bin" restore latest --target "$work/restore"

step "compare the restore with the originals, byte for byte"
diff -r "$work/recordings" "$work/restore$work/recordings"
echo "restored tree is identical to the source"

step "repository statistics"
"$bin" stats

echo
echo "demo finished; everything is in $work (remove it with: rm -rf $work)"
