#!/usr/bin/env bash
# Compare courtbak with restic and borg on the same generated court
# recordings, in one run, and measure the single-core limit of each backup
# stage. See bench/README.md.
#
#   bash bench/run.sh                 # 3 GiB of recordings
#   SIZE=1G KEEP=1 bash bench/run.sh  # smaller, keep the data and repositories
#
# Environment: SIZE (default 3G), LARGE (one-file test, default 512M),
# CACHE=warm|cold (cold drops the page cache before every timed run; needs
# root), KEEP=1 (keep WORK), WORK (scratch dir), OUT (results file),
# INDEX_BENCH=0 (skip the 10-million-blob index benchmark), COURTBAK (a
# courtbak binary to use instead of building ./cmd/courtbak).
set -euo pipefail

SIZE=${SIZE:-3G}
LARGE=${LARGE:-512M}
CACHE=${CACHE:-warm}
KEEP=${KEEP:-0}
INDEX_BENCH=${INDEX_BENCH:-1}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/bench/results-$(date +%Y-%m-%d).txt}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/var/tmp}/courtbak-bench.XXXXXX")}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

log() { printf '== %s\n' "$*" >&2; }

cleanup() {
	if [ "$KEEP" = 1 ]; then
		log "kept $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

# --- tools -----------------------------------------------------------------
missing=()
command -v restic >/dev/null || missing+=(restic)
command -v borg >/dev/null || missing+=(borgbackup)
[ -x /usr/bin/time ] || missing+=(time)
command -v bc >/dev/null || missing+=(bc)
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

BIN=$WORK/bin
mkdir -p "$BIN"
log "building courtbak and genrecordings"
(cd "$ROOT" && go build -o "$BIN/genrecordings" ./testdata/cmd/genrecordings)
if [ -n "${COURTBAK:-}" ]; then
	cp "$COURTBAK" "$BIN/courtbak"
else
	(cd "$ROOT" && go build -o "$BIN/courtbak" ./cmd/courtbak)
fi
CB=$BIN/courtbak
GEN=$BIN/genrecordings

export RESTIC_PASSWORD=bench-password BORG_PASSPHRASE=bench-password COURTBAK_PASSWORD=bench-password
export BORG_DISPLAY_PASSPHRASE=no BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export BORG_BASE_DIR=$WORK/borg-home # keys, caches and security state of borg

TSV=$WORK/results.tsv
: >"$TSV"

# %.0f, not %d: mawk's %d stops at 2^31 - 1 bytes.
bytes_of() { find "$@" -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f\n", s}'; }

COLD_OK=unknown
drop_caches() {
	sync
	if (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
		COLD_OK=yes
	else
		COLD_OK=no
	fi
}

# measure TOOL PHASE SOURCE_BYTES REPO CMD...: run CMD under /usr/bin/time
# and append tool, phase, seconds, bytes, peak RSS (KiB) and repository
# bytes to the results.
measure() {
	local tool=$1 phase=$2 bytes=$3 repo=$4
	shift 4
	sync # no writeback of earlier phases during the timed run
	if [ "$CACHE" = cold ] || [ "${COLD_ONCE:-0}" = 1 ]; then drop_caches; fi
	local tf=$WORK/time.$tool.$phase lf=$WORK/log.$tool.$phase t0 t1
	t0=$(date +%s.%N)
	if ! /usr/bin/time -v -o "$tf" "$@" >"$lf" 2>&1; then
		log "$tool $phase failed:"
		tail -n 20 "$lf" >&2
		exit 1
	fi
	t1=$(date +%s.%N)
	local rss size
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tf")
	size=$(du -sb "$repo" | cut -f1)
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$phase" "$(echo "$t1 - $t0" | bc)" "$bytes" "$rss" "$size" >>"$TSV"
	log "$tool $phase: $(echo "$t1 - $t0" | bc | cut -c1-6) s, peak RSS $((rss / 1024)) MiB"
}

TOOLS=(restic borg courtbak)

init_repo() { # TOOL REPO CACHE
	case $1 in
	restic) restic -q -r "$2" --cache-dir "$3" init --repository-version 2 >/dev/null ;;
	borg) borg init --encryption=repokey-blake2 "$2" >/dev/null 2>&1 ;;
	courtbak) "$CB" -q -r "$2" --cache-dir "$3" init ;;
	esac
}

backup() { # TOOL PHASE REPO CACHE BYTES PATH
	local tool=$1 phase=$2 repo=$3 cache=$4 bytes=$5 src=$6
	case $tool in
	restic) measure restic "$phase" "$bytes" "$repo" restic -q -r "$repo" --cache-dir "$cache" --compression auto backup --host bench "$src" ;;
	borg) measure borg "$phase" "$bytes" "$repo" borg create --compression lz4 "$repo::$phase" "$src" ;;
	courtbak) measure courtbak "$phase" "$bytes" "$repo" "$CB" -q -r "$repo" --cache-dir "$cache" backup --host bench "$src" ;;
	esac
}

restore() { # TOOL PHASE REPO CACHE BYTES TARGET
	local tool=$1 phase=$2 repo=$3 cache=$4 bytes=$5 target=$6 cmd
	mkdir -p "$target"
	case $tool in
	restic) cmd=(restic -q -r "$repo" --cache-dir "$cache" restore latest --target "$target") ;;
	borg) cmd=(env -C "$target" borg extract "$repo::b-changes") ;;
	courtbak) cmd=("$CB" -q -r "$repo" --cache-dir "$cache" restore latest --target "$target") ;;
	esac
	case $phase in
	d-restore)
		# Disaster recovery: the repository is not in this machine's page
		# cache, and a restore is done when the files are on disk.
		COLD_ONCE=1 measure "$tool" "$phase" "$bytes" "$repo" sh -c '"$@" && sync' restore "${cmd[@]}"
		;;
	*)
		# Every tool's repository read into the page cache first, no sync:
		# what the restore itself costs.
		find "$repo" -type f -print0 | xargs -0 cat >/dev/null
		measure "$tool" "$phase" "$bytes" "$repo" "${cmd[@]}"
		;;
	esac
	local got
	got=$(bytes_of "$target")
	if [ "$got" != "$bytes" ]; then
		log "$tool restored $got bytes, the source has $bytes"
		exit 1
	fi
	rm -rf "$target"
}

# --- data --------------------------------------------------------------------
DATA=$WORK/data
log "generating $SIZE of recordings in $DATA"
"$GEN" -out "$DATA" -size "$SIZE" -small 3000 -copies 4 -seed 1 >&2
SRC1=$(bytes_of "$DATA")
FILES1=$(find "$DATA" -type f | wc -l)

# --- (a) first backup ------------------------------------------------------------
for t in "${TOOLS[@]}"; do
	mkdir -p "$WORK/$t"
	init_repo "$t" "$WORK/$t/repo" "$WORK/$t/cache"
	backup "$t" a-first "$WORK/$t/repo" "$WORK/$t/cache" "$SRC1" "$DATA"
done

# --- (b) changes: a recording grows, a copy and a remux are filed, new case
# files arrive, some files are touched without changing -----------------------------
# (awk, not head: head closing the pipe early fails the pipeline under pipefail)
live=$(find "$DATA" -name live-recording.mp4 | awk 'NR == 1')
mapfile -t videos < <(find "$DATA" -name 'hearing-*.mp4' -not -path '*/exhibits/*' -printf '%s %p\n' | sort -rn | cut -d' ' -f2-)
GROW=$(($(stat -c %s "$live") / 4))
"$GEN" -append "$live" -bytes "$GROW" -seed 77 >&2
mkdir -p "$DATA/city-court/exhibits/new-exhibits"
cp "${videos[0]}" "$DATA/city-court/exhibits/new-exhibits/exhibit-copy.mp4"
"$GEN" -remux "${videos[1]:-${videos[0]}}" -to "$DATA/city-court/exhibits/new-exhibits/hearing-remuxed.mp4" -seed 78 >&2
"$GEN" -out "$DATA/city-court/new-cases" -size 1M -small 300 -copies 0 -seed 79 >&2
find "$DATA" -name '*.json' -not -path '*/new-cases/*' | sort | awk 'NR <= 100' | xargs touch
touch "${videos[2]:-${videos[0]}}"
SRC2=$(bytes_of "$DATA")
FILES2=$(find "$DATA" -type f | wc -l)

for t in "${TOOLS[@]}"; do
	backup "$t" b-changes "$WORK/$t/repo" "$WORK/$t/cache" "$SRC2" "$DATA"
done

# --- (c) unchanged re-backup -----------------------------------------------------------
for t in "${TOOLS[@]}"; do
	backup "$t" c-unchanged "$WORK/$t/repo" "$WORK/$t/cache" "$SRC2" "$DATA"
done

# --- opening a repository and listing snapshots: the fixed cost of every
# command (key derivation, index loading), for reading the small phases ----------------
for t in "${TOOLS[@]}"; do
	case $t in
	restic) measure restic o-open 0 "$WORK/$t/repo" restic -q -r "$WORK/$t/repo" --cache-dir "$WORK/$t/cache" snapshots ;;
	borg) measure borg o-open 0 "$WORK/$t/repo" borg list "$WORK/$t/repo" ;;
	courtbak) measure courtbak o-open 0 "$WORK/$t/repo" "$CB" -q -r "$WORK/$t/repo" --cache-dir "$WORK/$t/cache" snapshots ;;
	esac
done

# --- (d) full restore of the latest snapshot into an empty directory -----------------------
for t in "${TOOLS[@]}"; do
	restore "$t" d-restore "$WORK/$t/repo" "$WORK/$t/cache" "$SRC2" "$WORK/$t/restore"
	restore "$t" d-restore-warm "$WORK/$t/repo" "$WORK/$t/cache" "$SRC2" "$WORK/$t/restore"
done

# --- (e) one large new incompressible file into a new repository -------------------------
LARGEDIR=$WORK/large
mkdir -p "$LARGEDIR"
: >"$LARGEDIR/hearing.mp4"
"$GEN" -append "$LARGEDIR/hearing.mp4" -bytes "$LARGE" -seed 80 >&2
SRCL=$(bytes_of "$LARGEDIR")
for t in "${TOOLS[@]}"; do
	init_repo "$t" "$WORK/$t/repo-large" "$WORK/$t/cache-large"
	backup "$t" e-large "$WORK/$t/repo-large" "$WORK/$t/cache-large" "$SRCL" "$LARGEDIR"
done

# --- stage limits --------------------------------------------------------------------------
read_rate() { # prints MB/s of reading every data file once
	local t0 t1
	t0=$(date +%s.%N)
	find "$DATA" -type f -print0 | xargs -0 cat >/dev/null
	t1=$(date +%s.%N)
	echo "scale=1; $SRC2 / 1000000 / ($t1 - $t0)" | bc
}
drop_caches
READ_COLD=na
if [ "$COLD_OK" = yes ]; then READ_COLD=$(read_rate); fi
READ_WARM=$(read_rate)

log "stage micro-benchmarks (one core)"
BENCHOUT=$WORK/stages.txt
(cd "$ROOT" && go test -run '^$' -bench . -benchtime=1s -cpu 1 ./chunking ./crypto ./bench) >"$BENCHOUT" 2>&1 || {
	cat "$BENCHOUT" >&2
	exit 1
}
stage() { awk -v n="$1" '$1 == n { for (i = 1; i <= NF; i++) if ($i == "MB/s") print $(i - 1) }' "$BENCHOUT"; }

INDEXOUT=$WORK/index.txt
if [ "$INDEX_BENCH" = 1 ]; then
	log "index benchmark (10 million blobs)"
	(cd "$ROOT" && go test -run '^$' -bench Index10M -benchtime=1000000x ./repo/index/) >"$INDEXOUT" 2>&1 || {
		cat "$INDEXOUT" >&2
		exit 1
	}
fi
metric() { awk -v n="$1" '/^BenchmarkIndex10M/ { for (i = 1; i <= NF; i++) if ($i == n) print $(i - 1) }' "$INDEXOUT" 2>/dev/null; }

# --- report ----------------------------------------------------------------------------------
{
	echo "courtbak benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "machine:  $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, Linux $(uname -r)"
	echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the end; other work on the machine skews times"
	echo "tools:    $(restic version | cut -d' ' -f1-2), $(borg --version), $("$CB" version 2>/dev/null | awk 'NR == 1'), $(go version | cut -d' ' -f3)"
	echo "settings: restic repo v2, --compression auto (its default), AES-256 + Poly1305; borg repokey-blake2, lz4 (its default compression);"
	echo "          courtbak defaults (zstd fastest where it pays, XChaCha20-Poly1305, argon2id 64 MiB KDF)"
	echo "data:     $SIZE requested: $FILES1 files, $SRC1 bytes; after changes $FILES2 files, $SRC2 bytes"
	echo "cache:    $CACHE page cache for the timed runs (cold drop permitted: $COLD_OK); phase d drops it and"
	echo "          times the restore and a sync; phase d2 reads each repository into the cache first"
	echo
	awk -F'\t' '
	function mb(x) { return x / 1e6 }
	BEGIN {
		name["a-first"] = "a first backup"; name["b-changes"] = "b backup after changes"
		name["c-unchanged"] = "c unchanged re-backup"; name["d-restore"] = "d restore, cold, synced"; name["d-restore-warm"] = "d2 restore, cached repo"; name["e-large"] = "e one large new file"
		name["o-open"] = "open + list snapshots"
		printf "%-24s %-9s %9s %9s %10s %10s\n", "phase", "tool", "wall s", "MB/s", "peak RSS", "repo MB"
	}
	{
		rate = $4 > 0 ? sprintf("%9.1f", mb($4) / $3) : sprintf("%9s", "-")
		printf "%-24s %-9s %9.2f %s %7.0f MB %10.1f\n", name[$2], $1, $3, rate, $5 * 1024 / 1e6, mb($6)
		thr[$1, $2] = mb($4) / $3; rss[$1, $2] = $5; size[$1, $2] = $6; wall[$1, $2] = $3
		if (!seen[$2]++) order[++n] = $2
	}
	END {
		print ""
		print "ratios courtbak/restic and courtbak/borg (throughput, or 1/time for open: higher is better; RSS and size: lower is better)"
		printf "%-24s %9s %9s %9s %9s %9s %9s\n", "phase", "thr/rst", "thr/borg", "rss/rst", "rss/borg", "size/rst", "size/borg"
		for (i = 1; i <= n; i++) {
			p = order[i]
			if (p == "o-open") { # no source bytes: compare speed as inverse wall time
				thr["courtbak", p] = 1 / wall["courtbak", p]; thr["restic", p] = 1 / wall["restic", p]; thr["borg", p] = 1 / wall["borg", p]
			}
			printf "%-24s %9.2f %9.2f %9.2f %9.2f %9.3f %9.3f\n", name[p], \
				thr["courtbak", p] / thr["restic", p], thr["courtbak", p] / thr["borg", p], \
				rss["courtbak", p] / rss["restic", p], rss["courtbak", p] / rss["borg", p], \
				size["courtbak", p] / size["restic", p], size["courtbak", p] / size["borg", p]
		}
	}' "$TSV" | tee "$WORK/table.txt"
	echo
	echo "stage limits, one core (go test -bench -cpu 1), MB/s:"
	for s in Chunker HasherStream IDKeySum ZstdIncompressible Seal Open ZstdText PipelineOneCore; do
		printf '  %-20s %8s\n' "$s" "$(stage Benchmark$s)"
	done
	printf '  %-20s %8s\n' "read (cold cache)" "$READ_COLD" "read (warm cache)" "$READ_WARM"
	echo "  (PipelineOneCore chains chunking, file hash, blob id, zstd attempt and sealing on one core)"
	echo
	CHUNK=$(stage BenchmarkChunker)
	READ=$READ_WARM
	if [ "$CACHE" = cold ] && [ "$READ_COLD" != na ]; then READ=$READ_COLD; fi
	SLOW=$(printf '%s\n' "$CHUNK Chunker" "$(stage BenchmarkHasherStream) file-hash" "$(stage BenchmarkIDKeySum) blob-id" \
		"$(stage BenchmarkZstdIncompressible) zstd-attempt" "$(stage BenchmarkSeal) seal" "$READ read" | sort -g | awk 'NR == 1')
	FIRST=$(awk -F'\t' '$1 == "courtbak" && $2 == "a-first" {print $4 / 1e6 / $3}' "$TSV")
	LARGEBK=$(awk -F'\t' '$1 == "courtbak" && $2 == "e-large" {print $4 / 1e6 / $3}' "$TSV")
	echo "slowest stage: ${SLOW#* } at ${SLOW%% *} MB/s"
	awk -v f="$FIRST" -v s="${SLOW%% *}" -v l="$LARGEBK" -v c="$CHUNK" 'BEGIN {
		printf "courtbak first backup %.1f MB/s = %.0f%% of the slowest stage on one core\n", f, 100 * f / s
		printf "courtbak one large new file %.1f MB/s = %.0f%% of the chunker on one core\n", l, 100 * l / c
	}'
	echo
	if [ -s "$INDEXOUT" ]; then
		echo "index at 10 million blobs: $(metric bytes/blob) bytes/blob, Lookup hit $(awk '/^BenchmarkIndex10M/ {print $3}' "$INDEXOUT") ns," \
			"Has hit $(metric has-hit-ns) ns, Has miss $(metric has-miss-ns) ns, load $(metric load-ns/blob) ns/blob"
		echo
	fi
	echo "targets (issue 6):"
	awk -F'\t' -v idx="$(metric bytes/blob)" -v l="$LARGEBK" -v c="$CHUNK" '
	{ thr[$1, $2] = $4 / $3; rss[$1, $2] = $5; size[$1, $2] = $6 }
	function verdict(ok) { return ok ? "met" : "NOT met" }
	END {
		r = thr["courtbak", "a-first"] / thr["restic", "a-first"]
		printf "  first backup >= 2x restic throughput:      %5.2fx  %s\n", r, verdict(r >= 2)
		r = thr["courtbak", "a-first"] / thr["borg", "a-first"]
		printf "  first backup faster than borg:             %5.2fx  %s\n", r, verdict(r > 1)
		r = thr["courtbak", "c-unchanged"] / thr["restic", "c-unchanged"]
		printf "  unchanged re-backup no slower than restic: %5.2fx  %s\n", r, verdict(r >= 1)
		r = thr["courtbak", "d-restore"] / thr["restic", "d-restore"]
		printf "  restore >= 2x restic throughput:           %5.2fx  %s (cold repository, until synced)\n", r, verdict(r >= 2)
		r = thr["courtbak", "d-restore-warm"] / thr["restic", "d-restore-warm"]
		printf "                                             %5.2fx  %s (cached repository, not synced)\n", r, verdict(r >= 2)
		worst = 0
		split("a-first b-changes c-unchanged d-restore d-restore-warm", ps, " ")
		for (i in ps) { r = rss["courtbak", ps[i]] / rss["restic", ps[i]]; if (r > worst) { worst = r; wp = ps[i] } }
		printf "  peak RSS <= restic (worst phase %s): %5.2fx  %s\n", wp, worst, verdict(worst <= 1)
		r = size["courtbak", "c-unchanged"] / size["restic", "c-unchanged"]
		printf "  repository size <= restic:                 %5.3fx  %s\n", r, verdict(r <= 1)
		if (idx != "") printf "  index <= 40 bytes/blob at 10M blobs:       %5.1f   %s\n", idx, verdict(idx <= 40)
		r = l / c
		printf "  one large new file >= 70%% of chunker:      %5.0f%%  %s\n", 100 * r, verdict(r >= 0.7)
	}' "$TSV"
	echo
	echo "raw results (tool, phase, seconds, source bytes, peak RSS KiB, repository bytes):"
	cat "$TSV"
} >"$OUT"
cat "$OUT"
log "results written to $OUT"
