#!/usr/bin/env bash
# make demo: a whole cluster on this machine, on loopback "hosts".
#   manager 127.0.0.1:6432 (data in demo/mgr), agents on 127.0.0.2-4,
#   gtmcoord master + slave, two coordinators, two datanode masters each with
#   a sync slave, data directories under demo/data; a distributed table.
# make demo-stop stops the cluster, the agents and the manager.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO=$ROOT/demo
PORT=${ADBMGR_PORT:-6432}
# The manager's Unix socket lives in its data directory; peer authentication
# lets root and the directory's owner in (TCP clients need a password).
PSQL=(psql -X -v ON_ERROR_STOP=1 -h "$DEMO/mgr" -p "$PORT" -U postgres -d postgres)

stop() {
	if [ -f "$DEMO/mgr.pid" ] && kill -0 "$(cat "$DEMO/mgr.pid")" 2>/dev/null; then
		"${PSQL[@]}" -c "STOP ALL MODE fast;" -c "STOP AGENT ALL;" || true
		kill "$(cat "$DEMO/mgr.pid")" && sleep 1
	fi
	rm -f "$DEMO/mgr.pid"
	echo "demo stopped (data kept in $DEMO; rm -rf demo run to start afresh)"
}

if [ "${1:-}" = stop ]; then
	stop
	exit 0
fi

if [ -f "$DEMO/mgr.pid" ] && kill -0 "$(cat "$DEMO/mgr.pid")" 2>/dev/null; then
	echo "a demo manager is already running (pid $(cat "$DEMO/mgr.pid")); make demo-stop first" >&2
	exit 1
fi
if [ -d "$DEMO/data" ]; then
	echo "$DEMO/data exists from an earlier demo: rm -rf demo run to start afresh" >&2
	exit 1
fi
mkdir -p "$DEMO"
chmod 0755 "$DEMO"
if [ ! -f "$DEMO/mgr/catalog.db" ]; then
	bin/adbmgr init -D "$DEMO/mgr" -U postgres
fi
bin/adbmgr start -D "$DEMO/mgr" --listen "127.0.0.1:$PORT" >"$DEMO/mgr.log" 2>&1 &
echo $! >"$DEMO/mgr.pid"
for _ in $(seq 50); do
	"${PSQL[@]}" -qc "SELECT 1" >/dev/null 2>&1 && break
	sleep 0.2
done

D=$DEMO/data
"${PSQL[@]}" <<SQL
ADD HOST h1 (protocol=local, address='127.0.0.2', agentport=5430);
ADD HOST h2 (protocol=local, address='127.0.0.3', agentport=5430);
ADD HOST h3 (protocol=local, address='127.0.0.4', agentport=5430);
ADD GTMCOORD MASTER gc (HOST=h1, PORT=6768, PATH='$D/gc');
ADD GTMCOORD SLAVE gcs FOR gc (HOST=h2, PORT=6768, PATH='$D/gcs');
ADD COORDINATOR MASTER cn1 (HOST=h1, PORT=5432, PATH='$D/cn1');
ADD COORDINATOR MASTER cn2 (HOST=h2, PORT=5432, PATH='$D/cn2');
ADD DATANODE MASTER dn1 (HOST=h2, PORT=15432, PATH='$D/dn1');
ADD DATANODE SLAVE dn1s FOR dn1 (HOST=h3, PORT=15432, PATH='$D/dn1s');
ADD DATANODE MASTER dn2 (HOST=h3, PORT=15433, PATH='$D/dn2');
ADD DATANODE SLAVE dn2s FOR dn2 (HOST=h1, PORT=15433, PATH='$D/dn2s');
START AGENT ALL;
INIT ALL;
MONITOR ALL;
MONITOR HA;
SQL
# The nodes trust nobody: psql reaches them with the nodes' password from
# the file the manager keeps for DBAs, and checks their certificates
# against the manager's CA.
export PGPASSFILE=$DEMO/mgr/pgpass PGSSLMODE=verify-full PGSSLROOTCERT=$DEMO/mgr/pki/ca.crt
# A distributed table: 64 hash slots over dn1 and dn2, seen from every coordinator.
psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.2 -p 5432 -U postgres -d postgres <<SQL
CREATE TABLE demo_orders (id int NOT NULL, amount numeric);
SELECT adb.create_distributed_table('demo_orders', 'id');
INSERT INTO demo_orders SELECT g, g * 1.5 FROM generate_series(1, 1000) g;
SQL
echo "demo_orders from coordinator cn2:"
psql -X -h 127.0.0.3 -p 5432 -U postgres -d postgres -c "SELECT count(*), sum(amount) FROM demo_orders"

cat <<EOF2

The demo cluster runs.
  manager:      psql -h $DEMO/mgr -p $PORT -U postgres -d postgres   (as root: peer authentication; try LIST NODE; MONITOR ALL; HELP)
                over TCP: set a password first (ALTER USER postgres PASSWORD '...'), then psql -h 127.0.0.1 -p $PORT -U postgres
The nodes need the password and TLS (no trust lines); the manager keeps a
password file for DBAs and its CA:
  export PGPASSFILE=$DEMO/mgr/pgpass PGSSLMODE=verify-full PGSSLROOTCERT=$DEMO/mgr/pki/ca.crt
  coordinator:  psql -h 127.0.0.2 -p 5432 -U postgres -d postgres   (SELECT count(*) FROM demo_orders)
  datanode dn1: psql -h 127.0.0.3 -p 15432 -U postgres -d postgres
On a node's host, its OS user also gets in over the node's socket (peer):
  runuser -u postgres -- psql -h $ROOT/run/<node>-<hash> -p <port>   (SHOW unix_socket_directories)
Stop it with: make demo-stop
EOF2
