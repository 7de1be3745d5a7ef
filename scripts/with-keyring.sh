#!/bin/sh
# Runs a command inside a private D-Bus session with an unlocked
# gnome-keyring serving the Secret Service, so that keyring tests talk to a
# real keyring. The daemon gets a throw-away HOME; the command keeps ours.
set -eu
if [ -n "${RENCFS_KEYRING_SESSION:-}" ]; then exec "$@"; fi
for c in dbus-run-session dbus-send gnome-keyring-daemon; do
	command -v "$c" >/dev/null || { echo "with-keyring: $c is missing (apt-get install dbus gnome-keyring)" >&2; exit 1; }
done
keyring_home=$(mktemp -d)
trap 'rm -rf "$keyring_home"' EXIT
export keyring_home
dbus-run-session -- sh -c '
	printf %s "keyring-test-password" | HOME="$keyring_home" XDG_DATA_HOME="$keyring_home/share" \
		gnome-keyring-daemon --foreground --unlock --components=secrets >"$keyring_home/daemon.log" 2>&1 &
	daemon=$!
	i=0
	until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
		org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q "boolean true"; do
		i=$((i + 1))
		if [ "$i" -gt 100 ]; then echo "with-keyring: gnome-keyring did not start" >&2; cat "$keyring_home/daemon.log" >&2; exit 1; fi
		sleep 0.1
	done
	rc=0
	RENCFS_KEYRING_SESSION=1 "$@" || rc=$?
	kill "$daemon" 2>/dev/null || true
	exit "$rc"
' sh "$@"
