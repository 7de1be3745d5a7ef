#!/bin/sh
# fuse-latency.sh BINARY [TOOL]: where the time of `tar -x` of Go's source
# tree goes, request by request. TOOL is rencfs (default) or gocryptfs.
# Records the kernel's fuse_request_send/end tracepoints during one run on a
# fresh journaled ext4 (as bench-untar.sh does) and prints, per FUSE opcode,
# how many requests there were and how long the daemon took to answer them,
# then the time between one answer and the next request (tar's own work
# and waiting for a CPU). RELEASE is sent in the background, so it overlaps
# the next requests and the two sums can exceed the run time. Needs root,
# perf and fusermount3.
set -eu
bin=$(realpath "$1")
tool=${2:-rencfs}
work=$(mktemp -d /tmp/rencfs-lat.XXXXXX)
fs=$work/fs pw=$work/pw
mkdir -p "$fs"
. "$(dirname "$0")/bench-lib.sh"
tar -C "$(go env GOROOT)" -cf "$work/src.tar" src
printf 'bench password\n' >"$pw"
freshfs
mounttool "$tool"
perf record -q -a -o "$work/perf.data" \
	-e fuse:fuse_request_send -e fuse:fuse_request_end \
	tar -C "$fs/mnt" -xf "$work/src.tar" 2>/dev/null
unmounttool
perf script -i "$work/perf.data" 2>/dev/null | awk -v tool="$tool" '
/fuse_request_send/ {
	t = $4 + 0; req = $0; sub(/.* req /, "", req); sub(/ .*/, "", req)
	op = $0; sub(/.*\(/, "", op); sub(/\).*/, "", op); sub(/^FUSE_/, "", op)
	if (first == "") first = t
	if (last_end != "") { gap[last_op] += t - last_end; gaps += t - last_end }
	sent[req] = t; opof[req] = op; last_end = ""
	next
}
/fuse_request_end/ {
	t = $4 + 0; req = $0; sub(/.* req /, "", req); sub(/ .*/, "", req)
	if (!(req in sent)) next
	op = opof[req]; d = t - sent[req]; delete sent[req]
	n[op]++; sum[op] += d; total += d; count++
	last_end = t; last_op = op; end = t
}
END {
	printf "%s: %d requests in %.2f s; answering them %.2f s, between them %.2f s\n", tool, count, end - first, total, gaps
	printf "%-12s %8s %9s %9s %12s\n", "opcode", "count", "total s", "mean us", "after it s"
	for (op in n) printf "%-12s %8d %9.2f %9.1f %12.2f\n", op, n[op], sum[op], sum[op] / n[op] * 1e6, gap[op]
}' | { read -r head; echo "$head"; read -r cols; echo "$cols"; sort -k3 -rn; }
