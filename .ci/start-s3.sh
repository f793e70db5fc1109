#!/usr/bin/env bash
# Starts a local S3 server (versitygw) for the tests and prints the
# environment they need:
#
#   eval "$(.ci/start-s3.sh)"       # start; exports COURTBAK_TEST_S3_*
#   go test ./...
#   .ci/start-s3.sh stop            # stop it and delete its data
#
# State (PID file, data, log) lives in $COURTBAK_S3_STATE_DIR, default
# ${TMPDIR:-/tmp}/courtbak-s3. Only stdout is meant for eval; progress goes
# to stderr.
set -euo pipefail

MODULE=github.com/versity/versitygw/cmd/versitygw@v1.8.0
STATE=${COURTBAK_S3_STATE_DIR:-${TMPDIR:-/tmp}/courtbak-s3}
PIDFILE=$STATE/versitygw.pid

stop() {
	if [[ -f $PIDFILE ]]; then
		pid=$(cat "$PIDFILE")
		# Only kill the PID if it still is our versitygw.
		if grep -q versitygw "/proc/$pid/cmdline" 2>/dev/null; then
			kill "$pid"
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		fi
	fi
	rm -rf "$STATE"
}

if [[ ${1:-} == stop ]]; then
	stop
	exit 0
fi

find_versitygw() {
	command -v versitygw && return
	local gobin
	gobin=$(go env GOBIN)
	[[ -n $gobin ]] || gobin=$(go env GOPATH | cut -d: -f1)/bin
	[[ -x $gobin/versitygw ]] && echo "$gobin/versitygw"
}

bin=$(find_versitygw || true)
if [[ -z $bin ]]; then
	echo "installing $MODULE (about a minute)..." >&2
	go install "$MODULE" >&2
	bin=$(find_versitygw)
fi

# One server per state directory: a second start replaces the first.
stop
mkdir -p "$STATE/root"
access=courtbak-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
secret=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')

for _ in 1 2 3 4 5; do
	port=$(shuf -i 20000-60000 -n 1)
	# Skip ports something already listens on.
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
	nohup "$bin" --access "$access" --secret "$secret" --port "127.0.0.1:$port" \
		posix "$STATE/root" >"$STATE/versitygw.log" 2>&1 </dev/null &
	echo $! >"$PIDFILE"
	for _ in $(seq 100); do
		if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then break; fi
		if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
			echo "versitygw $(cat "$PIDFILE") serves $STATE/root on 127.0.0.1:$port; stop it with: $0 stop" >&2
			echo "export COURTBAK_TEST_S3_ENDPOINT=http://127.0.0.1:$port"
			echo "export COURTBAK_TEST_S3_ACCESS=$access"
			echo "export COURTBAK_TEST_S3_SECRET=$secret"
			exit 0
		fi
		sleep 0.1
	done
	kill "$(cat "$PIDFILE")" 2>/dev/null || true
done
echo "versitygw did not start; log:" >&2
cat "$STATE/versitygw.log" >&2
exit 1
