#!/bin/sh
# bench-untar.sh BINARY [ROUNDS]: time `tar -x` of Go's source tree through
# a fresh rencfs mount, and through gocryptfs when it is installed, in
# alternating rounds. Each run gets a freshly made ext4 (with a journal, as
# on most disks) in a loop file, so runs do not inherit each other's
# deleted inodes. Needs root (mount -o loop) and fusermount3.
set -eu
bin=$(realpath "$1")
rounds=${2:-3}
work=$(mktemp -d /tmp/rencfs-bench.XXXXXX)
fs=$work/fs tarball=$work/src.tar pw=$work/pw
mkdir -p "$fs"
tar -C "$(go env GOROOT)" -cf "$tarball" src
files=$(tar -tf "$tarball" | grep -vc '/$')
printf 'bench password\n' >"$pw"

. "$(dirname "$0")/bench-lib.sh"

run() { # tool
	freshfs
	mounttool "$1"
	start=$(date +%s.%N)
	tar -C "$fs/mnt" -xf "$tarball"
	end=$(date +%s.%N)
	got=$(find "$fs/mnt/src" -type f | wc -l)
	[ "$got" -eq "$files" ] || { echo "$1: $got files, want $files" >&2; exit 1; }
	unmounttool
	echo "$1 $(awk "BEGIN {printf \"%.2f\", $end - $start}")"
}

tools=rencfs
command -v gocryptfs >/dev/null && tools="$tools gocryptfs"
echo "tar -x of $files files, $rounds rounds, seconds:"
for r in $(seq "$rounds"); do
	for t in $tools; do run "$t"; done
done | tee "$work/times"
for t in $tools; do
	printf '%s median: ' "$t"
	grep "^$t " "$work/times" | cut -d' ' -f2 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
done
