#!/usr/bin/env bash
# make demo-hosts: the demo topology on four machines reached over SSH —
# network-namespace hosts th1..th4 (scripts/testhosts.sh, 198.18.0.11-14),
# each with its own sshd, the agent and PostgreSQL running there as the OS
# user adbdemo (made when missing; no root on the hosts, and the nodes'
# superuser is named after it, as initdb does). The manager listens on
# 127.0.0.1:$ADBMGR_PORT (6433 by default, so that `make demo` can run too),
# data in demo-hosts/mgr.
#   gtmcoord master + slave, two coordinators, two datanode masters each with
#   a sync slave, every slave on another host than its master; a distributed
#   table; MONITOR HA shows each slave's own address.
# make demo-hosts-stop stops the cluster, the agents, the manager and takes
# the hosts down (their data goes with them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO=$ROOT/demo-hosts
PORT=${ADBMGR_PORT:-6433}
HOSTS_DIR=${TESTHOSTS_DIR:-/var/tmp/adbtesthosts}
export TESTHOSTS_DIR=$HOSTS_DIR
OSUSER=adbdemo
PSQL=(psql -X -v ON_ERROR_STOP=1 -h "$DEMO/mgr" -p "$PORT" -U postgres -d postgres)

stop() {
	if [ -f "$DEMO/mgr.pid" ] && kill -0 "$(cat "$DEMO/mgr.pid")" 2>/dev/null; then
		"${PSQL[@]}" -c "STOP ALL MODE fast;" -c "STOP AGENT ALL;" || true
		kill "$(cat "$DEMO/mgr.pid")" && sleep 1
	fi
	rm -f "$DEMO/mgr.pid"
	scripts/testhosts.sh down
	# The manager's key was authorized for the demo only.
	if [ -f "$DEMO/mgr/ssh/id_ed25519.pub" ] && [ -f "$AUTH" ]; then
		grep -vxF -f "$DEMO/mgr/ssh/id_ed25519.pub" "$AUTH" >"$AUTH.tmp" || true
		cat "$AUTH.tmp" >"$AUTH" && rm -f "$AUTH.tmp"
	fi
	rm -rf "$DEMO"
	echo "demo-hosts stopped and removed"
}

if ! getent passwd "$OSUSER" >/dev/null && [ "${1:-}" != stop ]; then
	useradd -m -s /bin/bash "$OSUSER"
fi
# Key logins only: no password, but not a locked account ("!"), which
# sshd without PAM refuses even with a key.
[ "${1:-}" = stop ] || usermod -p '*' "$OSUSER"
HOME_DIR=$(getent passwd "$OSUSER" | cut -d: -f6 || true)
AUTH=${HOME_DIR:-/nonexistent}/.ssh/authorized_keys

if [ "${1:-}" = stop ]; then
	stop
	exit 0
fi
[ "$(id -u)" = 0 ] || { echo "demo-hosts needs root (network namespaces)" >&2; exit 1; }
if [ -f "$DEMO/mgr.pid" ] && kill -0 "$(cat "$DEMO/mgr.pid")" 2>/dev/null; then
	echo "a demo-hosts manager is already running (pid $(cat "$DEMO/mgr.pid")); make demo-hosts-stop first" >&2
	exit 1
fi
make -s build >/dev/null
scripts/testhosts.sh up 4
mkdir -p "$DEMO"
chmod 0755 "$DEMO"
bin/adbmgr init -D "$DEMO/mgr" -U postgres >/dev/null
bin/adbmgr start -D "$DEMO/mgr" --listen "127.0.0.1:$PORT" >"$DEMO/mgr.log" 2>&1 &
echo $! >"$DEMO/mgr.pid"
for _ in $(seq 50); do
	"${PSQL[@]}" -qc "SELECT 1" >/dev/null 2>&1 && break
	sleep 0.2
done

# What a DBA does once per machine (README, "Preparing a machine"): the
# manager's key authorized for the OS user, an adbhome and a data directory
# the user owns.
mkdir -p "$HOME_DIR/.ssh"
chown "$OSUSER:" "$HOME_DIR/.ssh"
chmod 0700 "$HOME_DIR/.ssh"
cat "$DEMO/mgr/ssh/id_ed25519.pub" >>"$AUTH"
chown "$OSUSER:" "$AUTH"
chmod 0600 "$AUTH"
for i in 1 2 3 4; do
	install -d -o "$OSUSER" -m 0755 "$HOSTS_DIR/th$i/adbhome" "$HOSTS_DIR/th$i/data"
done

H=$HOSTS_DIR
"${PSQL[@]}" <<SQL
ADD HOST th1 (protocol=ssh, address='198.18.0.11', port=22, user='$OSUSER', adbhome='$H/th1/adbhome', agentport=5430);
ADD HOST th2 (protocol=ssh, address='198.18.0.12', port=22, user='$OSUSER', adbhome='$H/th2/adbhome', agentport=5430);
ADD HOST th3 (protocol=ssh, address='198.18.0.13', port=22, user='$OSUSER', adbhome='$H/th3/adbhome', agentport=5430);
ADD HOST th4 (protocol=ssh, address='198.18.0.14', port=22, user='$OSUSER', adbhome='$H/th4/adbhome', agentport=5430);
DEPLOY ALL;
START AGENT ALL;
ADD GTMCOORD MASTER gc (HOST=th1, PORT=6768, PATH='$H/th1/data/gc');
ADD GTMCOORD SLAVE gcs FOR gc (HOST=th2, PORT=6768, PATH='$H/th2/data/gcs');
ADD COORDINATOR MASTER cn1 (HOST=th1, PORT=5432, PATH='$H/th1/data/cn1');
ADD COORDINATOR MASTER cn2 (HOST=th2, PORT=5432, PATH='$H/th2/data/cn2');
ADD DATANODE MASTER dn1 (HOST=th3, PORT=15432, PATH='$H/th3/data/dn1');
ADD DATANODE SLAVE dn1s FOR dn1 (HOST=th4, PORT=15432, PATH='$H/th4/data/dn1s');
ADD DATANODE MASTER dn2 (HOST=th4, PORT=15433, PATH='$H/th4/data/dn2');
ADD DATANODE SLAVE dn2s FOR dn2 (HOST=th3, PORT=15433, PATH='$H/th3/data/dn2s');
INIT ALL;
MONITOR ALL;
MONITOR HA;
SQL
export PGPASSFILE=$DEMO/mgr/pgpass PGSSLMODE=verify-full PGSSLROOTCERT=$DEMO/mgr/pki/ca.crt
psql -X -q -v ON_ERROR_STOP=1 -h 198.18.0.11 -p 5432 -U "$OSUSER" -d postgres <<SQL
CREATE TABLE demo_orders (id int NOT NULL, amount numeric);
SELECT adb.create_distributed_table('demo_orders', 'id');
INSERT INTO demo_orders SELECT g, g * 1.5 FROM generate_series(1, 1000) g;
SQL
echo "demo_orders from coordinator cn2 (th2):"
psql -X -h 198.18.0.12 -p 5432 -U "$OSUSER" -d postgres -c "SELECT count(*), sum(amount) FROM demo_orders"

cat <<EOF2

The demo cluster runs on four namespace hosts reached over SSH.
  manager:      psql -h $DEMO/mgr -p $PORT -U postgres -d postgres   (try MONITOR HA; MONITOR AGENT)
  nodes:        export PGPASSFILE=$DEMO/mgr/pgpass PGSSLMODE=verify-full PGSSLROOTCERT=$DEMO/mgr/pki/ca.crt
                psql -h 198.18.0.11 -p 5432 -U $OSUSER -d postgres   (coordinator cn1 on th1)
  cut a host:   ip link set adbtv3 down   (th3: dn1 and dn2s; MONITOR ALL says so; "up" brings it back)
Stop it with: make demo-hosts-stop
EOF2
