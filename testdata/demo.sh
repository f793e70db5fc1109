#!/usr/bin/env bash
# The main job end to end on a local default: generate sample court
# recordings, back them up, back up again after a hearing grows and an
# exhibit is filed, replicate to the provincial center and the DR pool
# (local directories here), lose the city's copy, restore from the
# replicas and compare byte for byte, then verify every copy and write a
# report for the auditors, and apply a retention policy.
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

step "replicate to the provincial center and the DR pool (no password needed)"
center=$work/provincial-center
dr=$work/dr-pool
env -u COURTBAK_PASSWORD_FILE "$bin" replicate --to "$center" --to "$dr"

step "verify the city repository and both replicas, read all data, write a report"
labels=(--court "City court A" --label "City court server" --replica-label "Provincial center" --replica-label "DR pool")
"$bin" verify --read-data --replica "$center" --replica "$dr" "${labels[@]}" --title "Demo audit" \
	--report "$work/verification-report.html" --report "$work/verification-report.json"
echo "report for the clerk: $work/verification-report.html"

step "the provincial center's morning check: is the court protected? (no password needed)"
env -u COURTBAK_PASSWORD_FILE "$bin" status --replica "$center" --replica "$dr" "${labels[@]}" --max-age 26h --report "$work/status.html"
echo "dashboard: $work/status.html"

step "what changed"
first_id=$("$bin" snapshots --json | grep -o '"id":"[0-9a-f]*"' | head -n 1 | cut -d'"' -f4)
"$bin" diff "$first_id" latest

step "the city's server fails: restore the latest snapshot from the replicas"
mv "$COURTBAK_REPOSITORY" "$work/city-repo-lost"
"$bin" restore latest --replica "$center" --replica "$dr" --target "$work/restore"
mv "$work/city-repo-lost" "$COURTBAK_REPOSITORY"

step "compare the restore with the originals, byte for byte"
diff -r "$work/recordings" "$work/restore$work/recordings"
echo "restored tree is identical to the source"

step "repository statistics"
"$bin" stats

step "retention: keep the newest snapshot and prune (the two share almost all their data, so little is unused; prune deletes marked data 48 h after marking it)"
"$bin" forget --keep-last 1 --prune

echo
echo "demo finished; everything is in $work (remove it with: rm -rf $work)"
