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
img=$work/fs.img fs=$work/fs tarball=$work/src.tar pw=$work/pw
mkdir -p "$fs"
tar -C "$(go env GOROOT)" -cf "$tarball" src
files=$(tar -tf "$tarball" | grep -vc '/$')
printf 'bench password\n' >"$pw"

cleanup() {
	fusermount3 -u "$fs/mnt" 2>/dev/null || true
	umount "$fs" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

freshfs() {
	umount "$fs" 2>/dev/null || true
	rm -f "$img"
	truncate -s 8G "$img"
	mkfs.ext4 -q -F "$img"
	mount -o loop "$img" "$fs"
	mkdir "$fs/data" "$fs/mnt"
}

run() { # tool
	freshfs
	case $1 in
	rencfs)
		RENCFS_PASSWORD=$(cat "$pw") "$bin" mount -m "$fs/mnt" -d "$fs/data" >/dev/null \
			--keyring never --log-level ERROR &
		;;
	gocryptfs)
		gocryptfs -q -init -passfile "$pw" "$fs/data" >/dev/null 2>&1
		gocryptfs -q -passfile "$pw" "$fs/data" "$fs/mnt" 2>/dev/null
		;;
	esac
	i=0
	until mountpoint -q "$fs/mnt"; do
		i=$((i + 1))
		[ $i -lt 100 ] || { echo "$1 did not mount" >&2; exit 1; }
		sleep 0.1
	done
	sync
	start=$(date +%s.%N)
	tar -C "$fs/mnt" -xf "$tarball"
	end=$(date +%s.%N)
	got=$(find "$fs/mnt/src" -type f | wc -l)
	[ "$got" -eq "$files" ] || { echo "$1: $got files, want $files" >&2; exit 1; }
	fusermount3 -u "$fs/mnt"
	wait
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
