#!/usr/bin/env bash
# Disaster recovery on object storage: courtbak beside aws-cli (raw copies of
# the same objects) and restic's S3 backend, on the same generated
# recordings and the same local S3 servers, in one run. See bench/README.md.
#
#   bash bench/dr.sh               # 1 GiB of recordings
#   SIZE=2G KEEP=1 bash bench/dr.sh
#
# Environment: SIZE (default 1G), KEEP=1 (keep WORK), WORK (scratch dir),
# OUT (results file), COURTBAK (a courtbak binary to use instead of
# building ./cmd/courtbak), VERSITYGW (the server binary; default: PATH or
# GOPATH/bin, installed by .ci/start-s3.sh when missing), WEED (a SeaweedFS
# `weed` binary; default: PATH; see bench/README.md to build one).
#
# Two versitygw servers stand for the provincial center (C) and the DR pool
# (D); the city's repository is a local directory. Phases, each timed by
# wall clock with peak RSS from /usr/bin/time -v:
#   s3-backup      backup of the data to C: courtbak, restic (s3 backend)
#   s3-restore     restore from C with an empty cache: courtbak, restic
#   replicate-C/D  the city repository to C and to D: courtbak replicate,
#                  aws s3 sync of the same directory to another bucket
#   noop-replicate the same again with nothing new: both tools
#   dr-restore     C stopped: restore through --repo C --replica D;
#                  raw: aws s3 cp --recursive of the repository from D
#   5xx-restore    the primary answers HTTP 500 to every request: restore
#                  through --repo FAILING --replica D, against the same
#                  restore from D alone
# With a SeaweedFS binary (WEED), a third server W (SeaweedFS, the second
# S3 implementation) gets the backup, restore and replicate phases too:
#   s3-backup-W, s3-restore-W, replicate-W
set -euo pipefail

SIZE=${SIZE:-1G}
KEEP=${KEEP:-0}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/bench/dr-results-$(date +%Y-%m-%d).txt}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/var/tmp}/courtbak-dr.XXXXXX")}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
AWS=/usr/bin/aws # Debian's awscli; a pyenv shim may shadow `aws`

log() { printf '== %s\n' "$*" >&2; }

PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
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
[ -x "$AWS" ] || missing+=(awscli)
[ -x /usr/bin/time ] || missing+=(time)
command -v bc >/dev/null || missing+=(bc)
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ -z "${VERSITYGW:-}" ]; then
	VERSITYGW=$(command -v versitygw || echo "$(go env GOPATH | cut -d: -f1)/bin/versitygw")
fi
WEED=${WEED:-$(command -v weed || true)}
if [ ! -x "$VERSITYGW" ]; then
	log "installing versitygw"
	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
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

export AWS_ACCESS_KEY_ID=benchaccess AWS_SECRET_ACCESS_KEY=benchsecret0123456789 AWS_REGION=us-east-1
export AWS_PAGER="" AWS_CONFIG_FILE=$WORK/aws-config AWS_SHARED_CREDENTIALS_FILE=/dev/null
: >"$AWS_CONFIG_FILE" # aws-cli defaults: 10 concurrent requests, 8 MiB parts
export RESTIC_PASSWORD=bench-password COURTBAK_PASSWORD=bench-password

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_gw NAME: starts a versitygw on a free port, sets NAME_EP and NAME_PID.
start_gw() {
	local name=$1 port
	port=$(free_port)
	mkdir -p "$WORK/$name-root"
	"$VERSITYGW" --access "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" --port "127.0.0.1:$port" \
		posix "$WORK/$name-root" >"$WORK/$name.log" 2>&1 </dev/null &
	local pid=$!
	PIDS+=("$pid")
	for _ in $(seq 100); do
		curl -s -o /dev/null "http://127.0.0.1:$port/" && break
		sleep 0.1
	done
	printf -v "${name}_EP" '%s' "http://127.0.0.1:$port"
	printf -v "${name}_PID" '%s' "$pid"
}

# start_weed: starts a SeaweedFS server (master, volume, filer, S3 gateway
# in one process) on free ports of 127.0.0.1, with the bench credentials
# (from the environment) as its admin identity; sets W_EP and W_PID.
start_weed() {
	local args=() p
	for p in master volume filer s3; do
		args+=("-$p.port=$(free_port)" "-$p.port.grpc=$(free_port)")
	done
	mkdir -p "$WORK/W-root"
	"$WEED" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$WORK/W-root" -filer -s3 "${args[@]}" \
		-s3.port.iceberg=0 -s3.port.lance=0 -master.volumeSizeLimitMB=256 -volume.max=400 \
		>"$WORK/W.log" 2>&1 </dev/null &
	W_PID=$!
	PIDS+=("$W_PID")
	local port
	port=$(printf '%s\n' "${args[@]}" | sed -n 's/^-s3.port=//p')
	W_EP="http://127.0.0.1:$port"
	# The gateway answers once the filer is up; a bucket can be made once
	# the master has a volume server.
	for _ in $(seq 300); do
		"$AWS" --endpoint-url "$W_EP" s3 mb s3://probe >/dev/null 2>&1 && break
		sleep 0.2
	done
	"$AWS" --endpoint-url "$W_EP" s3 rb s3://probe >/dev/null
}

# A server that answers 500 to every request, as one shutting down does.
start_500() {
	local port
	port=$(free_port)
	python3 - "$port" >"$WORK/fail500.log" 2>&1 <<'EOF' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        body = b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>shutting down</Message></Error>'
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self.send_response(500)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = answer
    def log_message(self, *a):
        sys.stderr.write("request\n")
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
	PIDS+=("$!")
	FAIL_EP="http://127.0.0.1:$port"
	for _ in $(seq 100); do
		curl -s -o /dev/null "$FAIL_EP/" && break
		sleep 0.1
	done
}

TSV=$WORK/results.tsv
: >"$TSV"

bytes_of() { find "$@" -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f\n", s}'; }

# server_ticks: CPU time (clock ticks) the S3 servers still running used.
server_ticks() {
	local sum=0 p
	for p in "$C_PID" "$D_PID" ${W_PID:-}; do
		if [ -r "/proc/$p/stat" ]; then sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat"))); fi
	done
	echo "$sum"
}
HZ=$(getconf CLK_TCK)

# measure TOOL PHASE BYTES CMD...: run CMD under /usr/bin/time and append
# tool, phase, seconds, bytes, peak RSS (KiB), the tool's CPU seconds (user
# + system) and the S3 servers' CPU seconds to the results. On a shared
# machine, CPU time moves less than wall time.
measure() {
	local tool=$1 phase=$2 bytes=$3
	shift 3
	sync
	local tf=$WORK/time.$tool.$phase lf=$WORK/log.$tool.$phase t0 t1 s0 s1
	s0=$(server_ticks)
	t0=$(date +%s.%N)
	if ! /usr/bin/time -v -o "$tf" "$@" >"$lf" 2>&1; then
		log "$tool $phase failed:"
		tail -n 20 "$lf" >&2
		exit 1
	fi
	t1=$(date +%s.%N)
	s1=$(server_ticks)
	local rss cpu
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tf")
	cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$tf")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$phase" "$(echo "$t1 - $t0" | bc)" "$bytes" "$rss" "$cpu" \
		"$(echo "scale=2; ($s1 - $s0) / $HZ" | bc)" >>"$TSV"
	log "$tool $phase: $(echo "$t1 - $t0" | bc | cut -c1-6) s, peak RSS $((rss / 1024)) MiB"
}

check_restore() { # DIR BYTES
	local got
	got=$(bytes_of "$1")
	if [ "$got" != "$2" ]; then
		log "restored $got bytes into $1, the source has $2"
		exit 1
	fi
}

# --- servers and data ----------------------------------------------------------
start_gw C
start_gw D
start_500
log "center $C_EP, DR pool $D_EP, failing server $FAIL_EP"
if [ -n "$WEED" ]; then
	start_weed
	log "SeaweedFS $W_EP"
fi
s3aws() { "$AWS" --endpoint-url "$1" "${@:2}"; }
for b in courtbak restic center awscenter; do s3aws "$C_EP" s3 mb "s3://$b" >/dev/null; done
for b in drpool awsdr; do s3aws "$D_EP" s3 mb "s3://$b" >/dev/null; done

DATA=$WORK/data
log "generating $SIZE of recordings in $DATA"
"$GEN" -out "$DATA" -size "$SIZE" -small 3000 -copies 4 -seed 1 >&2
SRC=$(bytes_of "$DATA")
FILES=$(find "$DATA" -type f | wc -l)

# --- backup to S3, restore from S3: courtbak and restic ----------------------------
CBC="s3:$C_EP/courtbak/repo"
"$CB" -q -r "$CBC" --cache-dir "$WORK/cb-cache" init
measure courtbak s3-backup "$SRC" "$CB" -q -r "$CBC" --cache-dir "$WORK/cb-cache" backup --host bench "$DATA"
RSC="s3:$C_EP/restic/repo"
restic -q -r "$RSC" --cache-dir "$WORK/restic-cache" init --repository-version 2 >/dev/null
measure restic s3-backup "$SRC" restic -q -r "$RSC" --cache-dir "$WORK/restic-cache" --compression auto backup --host bench "$DATA"

measure courtbak s3-restore "$SRC" "$CB" -q -r "$CBC" --cache-dir "$WORK/cb-cache-fresh" restore latest --target "$WORK/restore-cb"
check_restore "$WORK/restore-cb" "$SRC"
rm -rf "$WORK/restore-cb"
measure restic s3-restore "$SRC" restic -q -r "$RSC" --cache-dir "$WORK/restic-cache-fresh" restore latest --target "$WORK/restore-restic"
check_restore "$WORK/restore-restic" "$SRC"
rm -rf "$WORK/restore-restic"

# The same on the second S3 implementation.
if [ -n "$WEED" ]; then
	for b in courtbak restic center awscenter; do s3aws "$W_EP" s3 mb "s3://$b" >/dev/null; done
	CBW="s3:$W_EP/courtbak/repo"
	"$CB" -q -r "$CBW" --cache-dir "$WORK/cbw-cache" init
	measure courtbak s3-backup-W "$SRC" "$CB" -q -r "$CBW" --cache-dir "$WORK/cbw-cache" backup --host bench "$DATA"
	RSW="s3:$W_EP/restic/repo"
	restic -q -r "$RSW" --cache-dir "$WORK/resticw-cache" init --repository-version 2 >/dev/null
	measure restic s3-backup-W "$SRC" restic -q -r "$RSW" --cache-dir "$WORK/resticw-cache" --compression auto backup --host bench "$DATA"
	measure courtbak s3-restore-W "$SRC" "$CB" -q -r "$CBW" --cache-dir "$WORK/cbw-cache-fresh" restore latest --target "$WORK/restore-cb"
	check_restore "$WORK/restore-cb" "$SRC"
	rm -rf "$WORK/restore-cb"
	measure restic s3-restore-W "$SRC" restic -q -r "$RSW" --cache-dir "$WORK/resticw-cache-fresh" restore latest --target "$WORK/restore-restic"
	check_restore "$WORK/restore-restic" "$SRC"
	rm -rf "$WORK/restore-restic"
fi

# --- replicate the city's repository: courtbak replicate and aws s3 sync ------------
CITY=$WORK/city
"$CB" -q -r "$CITY" --cache-dir "$WORK/city-cache" init
"$CB" -q -r "$CITY" --cache-dir "$WORK/city-cache" backup --host bench "$DATA"
REPO_BYTES=$(bytes_of "$CITY")
REPO_OBJECTS=$(find "$CITY" -type f | wc -l)
for site in C D; do
	ep=${site}_EP
	ep=${!ep}
	if [ $site = C ]; then bucket=center awsbucket=awscenter; else bucket=drpool awsbucket=awsdr; fi
	measure courtbak "replicate-$site" "$REPO_BYTES" "$CB" -q -r "$CITY" replicate --to "s3:$ep/$bucket/repo"
	measure aws "replicate-$site" "$REPO_BYTES" "$AWS" --endpoint-url "$ep" s3 sync --only-show-errors "$CITY" "s3://$awsbucket/repo"
done
if [ -n "$WEED" ]; then
	measure courtbak replicate-W "$REPO_BYTES" "$CB" -q -r "$CITY" replicate --to "s3:$W_EP/center/repo"
	measure aws replicate-W "$REPO_BYTES" "$AWS" --endpoint-url "$W_EP" s3 sync --only-show-errors "$CITY" "s3://awscenter/repo"
fi
measure courtbak noop-replicate 0 "$CB" -q -r "$CITY" replicate --to "s3:$C_EP/center/repo" --to "s3:$D_EP/drpool/repo"
measure aws noop-replicate 0 sh -c '"$1" --endpoint-url "$2" s3 sync --only-show-errors "$3" "s3://awscenter/repo" && "$1" --endpoint-url "$4" s3 sync --only-show-errors "$3" "s3://awsdr/repo"' \
	sync "$AWS" "$C_EP" "$CITY" "$D_EP"

# --- disaster recovery: the center is down, restore from the DR pool ----------------
kill "$C_PID"
wait "$C_PID" 2>/dev/null || true
measure courtbak dr-restore "$SRC" "$CB" -q -r "s3:$C_EP/center/repo" --replica "s3:$D_EP/drpool/repo" --cache-dir "$WORK/dr-cache" \
	restore latest --target "$WORK/restore-dr"
check_restore "$WORK/restore-dr" "$SRC"
rm -rf "$WORK/restore-dr"
measure aws dr-restore "$REPO_BYTES" "$AWS" --endpoint-url "$D_EP" s3 cp --only-show-errors --recursive "s3://drpool/repo" "$WORK/raw-dr"
rm -rf "$WORK/raw-dr"

# --- a primary answering 500: what it costs a restore ---------------------------------
measure courtbak direct-restore "$SRC" "$CB" -q -r "s3:$D_EP/drpool/repo" --cache-dir "$WORK/direct-cache" restore latest --target "$WORK/restore-direct"
rm -rf "$WORK/restore-direct"
measure courtbak 5xx-restore "$SRC" "$CB" -r "s3:$FAIL_EP/courtbak/repo" --replica "s3:$D_EP/drpool/repo" --cache-dir "$WORK/fail-cache" \
	restore latest --target "$WORK/restore-5xx"
check_restore "$WORK/restore-5xx" "$SRC"
rm -rf "$WORK/restore-5xx"
FAIL_REQUESTS=$(grep -c request "$WORK/fail500.log" || true)
# The same cost, measured on a command that does little else: listing the
# snapshots, alternately from D alone and through the failing primary.
for i in 1 2 3; do
	rm -rf "$WORK/snap-cache"
	measure courtbak "direct-snapshots-$i" 0 "$CB" -q -r "s3:$D_EP/drpool/repo" --cache-dir "$WORK/snap-cache" snapshots
	rm -rf "$WORK/snap-cache"
	measure courtbak "5xx-snapshots-$i" 0 "$CB" -r "s3:$FAIL_EP/courtbak/repo" --replica "s3:$D_EP/drpool/repo" --cache-dir "$WORK/snap-cache" snapshots
done

# --- report ------------------------------------------------------------------------------
{
	echo "courtbak DR benchmark on object storage, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "command:  SIZE=$SIZE${WEED:+ WEED=$WEED} bash bench/dr.sh"
	echo "machine:  $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, Linux $(uname -r)"
	echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the end; other work on the machine skews times"
	echo "tools:    $("$CB" version 2>/dev/null | awk 'NR == 1'), $(restic version | cut -d' ' -f1-2), $("$AWS" --version 2>&1 | cut -d' ' -f1), versitygw $("$VERSITYGW" --version 2>/dev/null | awk 'NR == 1' | tr -s ' ' | cut -d' ' -f2-3)"
	echo "data:     $SIZE requested: $FILES files, $SRC bytes; the city repository: $REPO_OBJECTS objects, $REPO_BYTES bytes"
	echo "servers:  two versitygw posix gateways on 127.0.0.1 (center C, DR pool D), same disk"
	if [ -n "$WEED" ]; then
		echo "          SeaweedFS (W) on 127.0.0.1: $("$WEED" version 2>/dev/null | awk 'NR == 1')"
	fi
	echo
	awk -F'\t' '
	BEGIN { printf "%-16s %-9s %9s %9s %9s %8s %8s\n", "phase", "tool", "wall s", "MB/s", "peak RSS", "CPU s", "server s" }
	{
		rate = $4 > 0 ? sprintf("%9.1f", $4 / 1e6 / $3) : sprintf("%9s", "-")
		printf "%-16s %-9s %9.2f %s %6.0f MB %8.2f %8.2f\n", $2, $1, $3, rate, $5 * 1024 / 1e6, $6, $7
		wall[$1, $2] = $3; thr[$1, $2] = $4 > 0 ? $4 / $3 : 1 / $3
	}
	END {
		print ""
		print "targets (issue 16), ratios of this run (higher is better):"
		r = thr["courtbak", "replicate-C"] / thr["aws", "replicate-C"]
		printf "  replicate to C >= 1.0x aws s3 sync:          %5.2fx  %s\n", r, (r >= 1 ? "met" : "NOT met")
		r = thr["courtbak", "replicate-D"] / thr["aws", "replicate-D"]
		printf "  replicate to D >= 1.0x aws s3 sync:          %5.2fx  %s\n", r, (r >= 1 ? "met" : "NOT met")
		r = wall["aws", "noop-replicate"] / wall["courtbak", "noop-replicate"]
		printf "  no-op replicate (1/time):                    %5.2fx\n", r
		r = wall["aws", "dr-restore"] / wall["courtbak", "dr-restore"]
		printf "  DR restore >= 0.9x aws s3 cp --recursive:    %5.2fx  %s (time ratio)\n", r, (r >= 0.9 ? "met" : "NOT met")
		r = thr["courtbak", "s3-backup"] / thr["restic", "s3-backup"]
		printf "  backup to S3 >= 2x restic:                   %5.2fx  %s\n", r, (r >= 2 ? "met" : "NOT met")
		r = thr["courtbak", "s3-restore"] / thr["restic", "s3-restore"]
		printf "  restore from S3 >= 2x restic:                %5.2fx  %s\n", r, (r >= 2 ? "met" : "NOT met")
		if (("courtbak", "s3-backup-W") in wall) {
			r = thr["courtbak", "s3-backup-W"] / thr["restic", "s3-backup-W"]
			printf "  SeaweedFS: backup >= 2x restic:              %5.2fx  %s\n", r, (r >= 2 ? "met" : "NOT met")
			r = thr["courtbak", "s3-restore-W"] / thr["restic", "s3-restore-W"]
			printf "  SeaweedFS: restore >= 2x restic:             %5.2fx  %s\n", r, (r >= 2 ? "met" : "NOT met")
			r = thr["courtbak", "replicate-W"] / thr["aws", "replicate-W"]
			printf "  SeaweedFS: replicate >= 1.0x aws s3 sync:    %5.2fx  %s\n", r, (r >= 1 ? "met" : "NOT met")
		}
		d = wall["courtbak", "5xx-restore"] - wall["courtbak", "direct-restore"]
		printf "  a copy answering 500 costs <= 5 s:           %5.2f s %s (5xx-restore minus direct-restore)\n", d, (d <= 5 ? "met" : "NOT met")
		worst = 0
		for (i = 1; i <= 3; i++) {
			d = wall["courtbak", "5xx-snapshots-" i] - wall["courtbak", "direct-snapshots-" i]
			if (d > worst) worst = d
		}
		printf "                                               %5.2f s %s (snapshots, worst of 3 pairs)\n", worst, (worst <= 5 ? "met" : "NOT met")
	}' "$TSV"
	echo "  requests the failing server got during the 5xx restore: $FAIL_REQUESTS"
	echo
	echo "raw results (tool, phase, seconds, bytes, peak RSS KiB, CPU s, S3 servers' CPU s):"
	cat "$TSV"
} >"$OUT"
cat "$OUT"
log "results written to $OUT"
