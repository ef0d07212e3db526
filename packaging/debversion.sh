#!/bin/sh
# The Debian package's version: a tag v1.2.3 gives 1.2.3, anything else
# 0.1.0~git<describe> (a Debian version starts with a digit; ~ sorts before
# the release).
v=$(git describe --tags --always 2>/dev/null || true)
case "$v" in
v[0-9]*) echo "${v#v}" | tr - + ;;
*) echo "0.1.0~git${v:-0}" | tr - + ;;
esac
