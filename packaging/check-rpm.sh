#!/bin/sh
# Checks an RPM's file list and dependencies (rpm comes from Debian's rpm package).
set -eu
rpmfile=$1
command -v rpm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rpm >/dev/null; }
files=$(rpm -qlp "$rpmfile" 2>/dev/null)
for want in /usr/bin/rencfs /usr/share/man/man1/rencfs.1 /usr/share/man/man1/rencfs-mount.1 \
	/usr/share/bash-completion/completions/rencfs /usr/share/zsh/site-functions/_rencfs \
	/usr/share/fish/vendor_completions.d/rencfs.fish /usr/lib/systemd/user/rencfs@.service; do
	echo "$files" | grep -qx "$want" || { echo "check-rpm: $rpmfile lacks $want" >&2; exit 1; }
done
rpm -qpR "$rpmfile" 2>/dev/null | grep -q '^fuse3' || { echo "check-rpm: $rpmfile does not depend on fuse3" >&2; exit 1; }
echo "check-rpm: $rpmfile holds the binary, man pages, completions and unit, and requires fuse3"
