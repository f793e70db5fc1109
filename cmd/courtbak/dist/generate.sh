#!/bin/sh
# Writes what the packages hold besides the binary and the files next to
# this script: man pages and shell completions, generated from the
# commands by the courtbak being released. Run from the repository root
# (goreleaser's before hook does).
set -eu
out=cmd/courtbak/dist/generated
rm -rf "$out"
mkdir -p "$out/man" "$out/completions"
CGO_ENABLED=0 go build -o "$out/courtbak" ./cmd/courtbak
# Dated by the last commit, so that packages build reproducibly.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
# A clean environment: flag defaults read COURTBAK_* variables, which must
# not end up in the pages.
env -i SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" "$out/courtbak" gen-man "$out/man" >/dev/null
gzip -9n "$out"/man/*.1
"$out/courtbak" completion bash >"$out/completions/courtbak.bash"
"$out/courtbak" completion zsh >"$out/completions/_courtbak"
"$out/courtbak" completion fish >"$out/completions/courtbak.fish"
rm "$out/courtbak"
