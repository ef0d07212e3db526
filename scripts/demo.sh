#!/usr/bin/env bash
# make demo: a whole cluster on this machine, on loopback "hosts".
#   manager 127.0.0.1:6432 (data in demo/mgr), agents on 127.0.0.2-4,
#   gtmcoord master + slave, two coordinators, two datanode masters each with
#   a sync slave, data directories under demo/data; a distributed table.
# make demo-stop stops the cluster, the agents and the manager; make demo
# then starts the same cluster again, with its data.
#
# For tests: ADBMGR_DEMO_DIR (default demo), ADBMGR_BIN (the directory of
# adbmgr and adbagent, default bin) and ADBMGR_DEMO_SHIFT (added to every
# node's and agent's port, default 0) keep a second demo apart.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO=${ADBMGR_DEMO_DIR:-$ROOT/demo}
BIN=${ADBMGR_BIN:-$ROOT/bin}
PORT=${ADBMGR_PORT:-6432}
SHIFT=${ADBMGR_DEMO_SHIFT:-0}
AGENT_PORT=$((5430 + SHIFT)) GTM_PORT=$((6768 + SHIFT)) CN_PORT=$((5432 + SHIFT))
DN1_PORT=$((15432 + SHIFT)) DN2_PORT=$((15433 + SHIFT))
# The manager's Unix socket lives in its data directory; peer authentication
# lets root and the directory's owner in (TCP clients need a password).
PSQL=(psql -X -v ON_ERROR_STOP=1 -h "$DEMO/mgr" -p "$PORT" -U postgres -d postgres)

stop() {
	if [ -f "$DEMO/mgr.pid" ] && kill -0 "$(cat "$DEMO/mgr.pid")" 2>/dev/null; then
		"${PSQL[@]}" -c "STOP ALL MODE fast;" -c "STOP AGENT ALL;" || true
		kill "$(cat "$DEMO/mgr.pid")" && sleep 1
	fi
	rm -f "$DEMO/mgr.pid"
	echo "demo stopped (data kept in $DEMO: make demo resumes it; rm -rf demo run to start afresh)"
}

if [ "${1:-}" = stop ]; then
	stop
	exit 0
fi

if [ -f "$DEMO/mgr.pid" ] && kill -0 "$(cat "$DEMO/mgr.pid")" 2>/dev/null; then
	echo "a demo manager is already running (pid $(cat "$DEMO/mgr.pid")); make demo-stop first" >&2
	exit 1
fi
# A stopped demo (make demo-stop keeps its data) is started again; a
# directory without the manager's catalog is no demo to resume.
resume=
if [ -d "$DEMO/data" ]; then
	if [ ! -f "$DEMO/mgr/catalog.db" ]; then
		echo "$DEMO/data exists without the demo's manager ($DEMO/mgr): rm -rf $DEMO run to start afresh" >&2
		exit 1
	fi
	resume=1
fi
mkdir -p "$DEMO"
chmod 0755 "$DEMO"
if [ ! -f "$DEMO/mgr/catalog.db" ]; then
	"$BIN/adbmgr" init -D "$DEMO/mgr" -U postgres
fi
"$BIN/adbmgr" start -D "$DEMO/mgr" --listen "127.0.0.1:$PORT" >>"$DEMO/mgr.log" 2>&1 &
echo $! >"$DEMO/mgr.pid"
for _ in $(seq 50); do
	"${PSQL[@]}" -qc "SELECT 1" >/dev/null 2>&1 && break
	sleep 0.2
done

# The nodes trust nobody: psql reaches them with the nodes' password from
# the file the manager keeps for DBAs, and checks their certificates
# against the manager's CA.
export PGPASSFILE=$DEMO/mgr/pgpass PGSSLMODE=verify-full PGSSLROOTCERT=$DEMO/mgr/pki/ca.crt
D=$DEMO/data
if [ -n "$resume" ]; then
	echo "resuming the demo stopped in $DEMO"
	"${PSQL[@]}" <<SQL
START AGENT ALL;
START ALL;
MONITOR ALL;
SQL
else
	"${PSQL[@]}" <<SQL
ADD HOST h1 (protocol=local, address='127.0.0.2', agentport=$AGENT_PORT);
ADD HOST h2 (protocol=local, address='127.0.0.3', agentport=$AGENT_PORT);
ADD HOST h3 (protocol=local, address='127.0.0.4', agentport=$AGENT_PORT);
ADD GTMCOORD MASTER gc (HOST=h1, PORT=$GTM_PORT, PATH='$D/gc');
ADD GTMCOORD SLAVE gcs FOR gc (HOST=h2, PORT=$GTM_PORT, PATH='$D/gcs');
ADD COORDINATOR MASTER cn1 (HOST=h1, PORT=$CN_PORT, PATH='$D/cn1');
ADD COORDINATOR MASTER cn2 (HOST=h2, PORT=$CN_PORT, PATH='$D/cn2');
ADD DATANODE MASTER dn1 (HOST=h2, PORT=$DN1_PORT, PATH='$D/dn1');
ADD DATANODE SLAVE dn1s FOR dn1 (HOST=h3, PORT=$DN1_PORT, PATH='$D/dn1s');
ADD DATANODE MASTER dn2 (HOST=h3, PORT=$DN2_PORT, PATH='$D/dn2');
ADD DATANODE SLAVE dn2s FOR dn2 (HOST=h1, PORT=$DN2_PORT, PATH='$D/dn2s');
START AGENT ALL;
INIT ALL;
MONITOR ALL;
MONITOR HA;
SQL
	# A distributed table: 64 hash slots over dn1 and dn2, seen from every coordinator.
	psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.2 -p "$CN_PORT" -U postgres -d postgres <<SQL
CREATE TABLE demo_orders (id int NOT NULL, amount numeric);
SELECT adb.create_distributed_table('demo_orders', 'id');
INSERT INTO demo_orders SELECT g, g * 1.5 FROM generate_series(1, 1000) g;
SQL
fi
echo "demo_orders from coordinator cn2:"
psql -X -h 127.0.0.3 -p "$CN_PORT" -U postgres -d postgres -c "SELECT count(*), sum(amount) FROM demo_orders"

cat <<EOF2

The demo cluster runs.
  manager:      psql -h $DEMO/mgr -p $PORT -U postgres -d postgres   (as root: peer authentication; try LIST NODE; MONITOR ALL; HELP)
                over TCP: set a password first (ALTER USER postgres PASSWORD '...'), then psql -h 127.0.0.1 -p $PORT -U postgres
The nodes need the password and TLS (no trust lines); the manager keeps a
password file for DBAs and its CA:
  export PGPASSFILE=$DEMO/mgr/pgpass PGSSLMODE=verify-full PGSSLROOTCERT=$DEMO/mgr/pki/ca.crt
  coordinator:  psql -h 127.0.0.2 -p $CN_PORT -U postgres -d postgres   (SELECT count(*) FROM demo_orders)
  datanode dn1: psql -h 127.0.0.3 -p $DN1_PORT -U postgres -d postgres
On a node's host, its OS user also gets in over the node's socket (peer):
  runuser -u postgres -- psql -h $(dirname "$BIN")/run/<node>-<hash> -p <port>   (SHOW unix_socket_directories)
Stop it with: make demo-stop (make demo starts it again with its data)
EOF2
