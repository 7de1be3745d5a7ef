#!/bin/sh
# Turns a git describe version (v1.2.0, v1.2.0-3-gabc1234-dirty, or a bare
# hash when there is no tag) into one that package managers accept: it
# starts with a digit and has no dashes.
v=${1#v}
case "$v" in
[0-9]*.[0-9]*) ;;
*) v="0.0.0~git$v" ;;
esac
echo "$v" | tr - .
