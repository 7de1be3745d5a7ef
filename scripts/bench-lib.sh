# bench-lib.sh: what bench-untar.sh and fuse-latency.sh share. Source it
# after setting bin (the rencfs binary), work (a scratch directory), fs
# (a mount point inside it) and pw (a password file).

# Whatever happens, leave no mount and no scratch files behind.
cleanup() {
	fusermount3 -u "$fs/mnt" 2>/dev/null || true
	umountfs || true
	rm -rf "$work"
}
trap cleanup EXIT

# umountfs unmounts the ext4 on $fs, if mounted, retrying while a daemon
# that has just been unmounted still closes its files in $fs/data.
umountfs() {
	i=0
	while mountpoint -q "$fs"; do
		umount "$fs" 2>/dev/null && return
		i=$((i + 1))
		[ $i -lt 100 ] || { echo "$fs stays busy" >&2; return 1; }
		sleep 0.1
	done
}

# freshfs mounts a new journaled ext4, in a loop file, on $fs, with data/
# and mnt/ in it: each run starts on a filesystem no earlier run touched.
freshfs() {
	umountfs
	rm -f "$work/fs.img"
	truncate -s 8G "$work/fs.img"
	mkfs.ext4 -q -F "$work/fs.img"
	mount -o loop "$work/fs.img" "$fs"
	mkdir "$fs/data" "$fs/mnt"
}

# mounttool TOOL mounts a new rencfs or gocryptfs store in $fs/data on
# $fs/mnt and waits until the mount is there.
mounttool() {
	case $1 in
	rencfs)
		# A state dir on the round's fresh ext4: each round's data dir is
		# new, though its path is the last round's (rencfs would refuse
		# an emptied one).
		RENCFS_PASSWORD=$(cat "$pw") XDG_STATE_HOME="$fs/state" "$bin" mount -m "$fs/mnt" -d "$fs/data" >/dev/null \
			--keyring never --log-level ERROR &
		;;
	gocryptfs)
		gocryptfs -q -init -passfile "$pw" "$fs/data" >/dev/null 2>&1
		gocryptfs -q -passfile "$pw" "$fs/data" "$fs/mnt" 2>/dev/null
		;;
	*)
		echo "unknown tool $1" >&2
		exit 2
		;;
	esac
	i=0
	until mountpoint -q "$fs/mnt"; do
		i=$((i + 1))
		[ $i -lt 100 ] || { echo "$1 did not mount" >&2; exit 1; }
		sleep 0.1
	done
	sync
}

# unmounttool unmounts $fs/mnt and waits until the daemon has let go of
# $fs/data: rencfs runs as our child, but gocryptfs does not, so wait
# alone would let the next freshfs mount over a busy filesystem.
unmounttool() {
	fusermount3 -u "$fs/mnt"
	wait
	umountfs
}
