#!/bin/sh
# Checks the AUR package: .SRCINFO must match the PKGBUILD, and makepkg must
# build a package holding rencfs from a source tarball of this checkout.
# makepkg refuses to run as root, so an unprivileged user does the work.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
for c in makepkg bsdtar; do
	command -v "$c" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends makepkg libarchive-tools pacman-package-manager >/dev/null; break; }
done
id builder >/dev/null 2>&1 || useradd --create-home builder
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/PKGBUILD" "$here/.SRCINFO" "$work/"
chmod 755 "$work"
chown -R builder "$work"

runuser -u builder -- sh -c "cd '$work' && makepkg --printsrcinfo" > "$work/generated.SRCINFO"
if ! diff -u "$here/.SRCINFO" "$work/generated.SRCINFO"; then
	echo "aur: .SRCINFO does not match the PKGBUILD; regenerate it with makepkg --printsrcinfo" >&2
	exit 1
fi

# The source tarball, as a release would have it, from this checkout.
pkgver=$(sed -n 's/^pkgver=//p' "$here/PKGBUILD")
git -C "$top" archive --format=tar.gz --prefix="rencfs-$pkgver/" -o "$work/rencfs-$pkgver.tar.gz" HEAD
# Go modules for the build: this machine's download cache, then the proxy.
gocache=$(go env GOMODCACHE)/cache/download
mkdir -p "$work/goproxy" && cp -r "$gocache/." "$work/goproxy/"
chown -R builder "$work"
runuser -u builder -- env PATH="$PATH:$(dirname "$(command -v go)")" HOME=/home/builder \
	GOPROXY="file://$work/goproxy,$(go env GOPROXY)" GOFLAGS= \
	sh -c "cd '$work' && makepkg -d -f --noconfirm" >"$work/makepkg.log" 2>&1 || {
	cat "$work/makepkg.log" >&2
	exit 1
}
pkg=$(ls "$work"/rencfs-"$pkgver"-*.pkg.tar.* | head -n 1)
bsdtar -tf "$pkg" | grep -qx 'usr/bin/rencfs' || { echo "aur: $pkg lacks usr/bin/rencfs" >&2; exit 1; }
bsdtar -tf "$pkg" | grep -q '^usr/share/man/man1/rencfs-mount\.1' || { echo "aur: $pkg lacks the man pages" >&2; exit 1; }
echo "aur: .SRCINFO matches the PKGBUILD; built $(basename "$pkg")"
