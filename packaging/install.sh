#!/usr/bin/env bash
# Installs adbmgr and adbagent with their systemd units: make install, and
# the tree the Debian package is made from (make deb).
#   packaging/install.sh BINDIR   with DESTDIR, PREFIX, UNITDIR, SYSCONFDIR,
#                                 RUNDIR
# RUNDIR, when set, is where the nodes' socket directories of this host go
# (they hold the nodes' sockets, password files and TLS keys): the agent
# makes them in PREFIX/lib/adbmgr/run, which becomes a link to RUNDIR, so a
# package keeps runtime files out of /usr (make deb: /var/lib/adbagent/run).
# The binaries go to PREFIX/lib/adbmgr/bin, with links in PREFIX/bin: the
# manager finds adbagent next to itself and takes the directory above its
# own (PREFIX/lib/adbmgr, links resolved) as a local host's default adbhome,
# which must belong to root and nobody else may write to.
set -euo pipefail
BINDIR=${1:?usage: install.sh BINDIR}
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
SYSCONFDIR=${SYSCONFDIR:-/etc}
RUNDIR=${RUNDIR:-}
LIBDIR=$PREFIX/lib/adbmgr
HERE=$(cd "$(dirname "$0")" && pwd)

install -d -m 0755 "$DESTDIR$LIBDIR/bin" "$DESTDIR$PREFIX/bin" "$DESTDIR$UNITDIR" \
	"$DESTDIR$SYSCONFDIR/default" "$DESTDIR$PREFIX/share/doc/adbmgr"
install -m 0755 "$BINDIR/adbmgr" "$BINDIR/adbagent" "$DESTDIR$LIBDIR/bin/"
if [ -n "$RUNDIR" ]; then
	install -d -m 0755 "$DESTDIR$RUNDIR"
	ln -sfn "$RUNDIR" "$DESTDIR$LIBDIR/run"
fi
ln -sfn ../lib/adbmgr/bin/adbmgr "$DESTDIR$PREFIX/bin/adbmgr"
ln -sfn ../lib/adbmgr/bin/adbagent "$DESTDIR$PREFIX/bin/adbagent"
for unit in adbmgr.service adbagent.service; do
	sed -e "s|@LIBDIR@|$LIBDIR|g" -e "s|@SYSCONFDIR@|$SYSCONFDIR|g" "$HERE/systemd/$unit" >"$DESTDIR$UNITDIR/$unit"
	chmod 0644 "$DESTDIR$UNITDIR/$unit"
done
# The environment files are the administrator's: never overwritten.
for f in adbmgr adbagent; do
	if [ ! -e "$DESTDIR$SYSCONFDIR/default/$f" ]; then
		sed "s|@LIBDIR@|$LIBDIR|g" "$HERE/default-$f" >"$DESTDIR$SYSCONFDIR/default/$f"
		chmod 0644 "$DESTDIR$SYSCONFDIR/default/$f"
	fi
done
install -m 0644 "$HERE/adbmgr.conf.example" "$DESTDIR$PREFIX/share/doc/adbmgr/adbmgr.conf.example"
