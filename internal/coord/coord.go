// Package coord is the coordinators' catalog as SQL: the adb schema (node
// list, slot map, distributed-table functions), one postgres_fdw server per
// datanode master, and the renames a switch makes. It only builds SQL text
// from the manager's catalog; running it on a node is the fleet's job
// (internal/fleet), so every statement the manager sends to a coordinator
// is written once, here, and can be tested without PostgreSQL.
package coord

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgclient"
)

// Schema is the adb schema: node list, slot map, distributed tables
// (adb.sql), transactions across nodes (xact.sql), DDL on distributed
// tables (ddl.sql), writes through a coordinator (dml.sql).
var Schema = adbSQL + "\n" + xactSQL + "\n" + ddlSQL + "\n" + dmlSQL

var (
	//go:embed adb.sql
	adbSQL string
	//go:embed xact.sql
	xactSQL string
	//go:embed ddl.sql
	ddlSQL string
	//go:embed dml.sql
	dmlSQL string
)

// Slots is the number of hash slots of every distributed table.
const Slots = 64

// RenameServer renames the foreign server of datanode master old to
// newName, and moves old's slots in the slot map, unless a server newName
// exists already (a second run, or a coordinator refreshed meanwhile).
// Renaming, not dropping, keeps the foreign tables built on the server.
func RenameServer(old, newName string) string {
	return fmt.Sprintf(`DO $adb$ BEGIN
	IF EXISTS (SELECT 1 FROM pg_foreign_server WHERE srvname = %[1]s)
	   AND NOT EXISTS (SELECT 1 FROM pg_foreign_server WHERE srvname = %[2]s) THEN
		ALTER SERVER %[3]s RENAME TO %[4]s;
	END IF;
	IF to_regclass('adb.slot') IS NOT NULL THEN
		UPDATE adb.slot SET node = %[2]s WHERE node = %[1]s;
	END IF;
END $adb$;
`, pgclient.Literal(old), pgclient.Literal(newName), pgclient.Ident(old), pgclient.Ident(newName))
}

// Options every datanode server gets (EnsureServer), chosen by measuring
// make bench (tests/e2e/bench_dist_test.go) on the demo topology:
//   - fetch_size: rows per FETCH of a scan that pulls rows to the
//     coordinator (an aggregate PostgreSQL 15 cannot push down, a large
//     SELECT). postgres_fdw's 100 made count(*) over 1 M rows take 1.2 s,
//     10,000 about 0.4 s; 1,000 and 50,000 did worse. One FETCH of a
//     single-row query returns its row whatever the size.
//   - batch_size: rows per remote INSERT of INSERT … SELECT and multi-row
//     VALUES: 100 made INSERT … SELECT of 100,000 rows 15 times faster
//     than one round trip per row (6.9 s → 0.46 s); 1,000 did no better.
//     postgres_fdw lowers it for tables with many columns (65,535
//     parameters) and ignores it where it cannot batch (RETURNING, row
//     triggers, COPY before PostgreSQL 16).
//   - async_capable: the foreign scans of an Append (the shards of one
//     table, a pushed-down join or aggregate per slot) run on all the
//     datanodes at once instead of one after the other.
//   - fdw_tuple_cost: 0.2, PostgreSQL 17's default (15's 0.01 priced a row
//     from a datanode as a local one): with 0.01, postgres_fdw found
//     aggregating a small slot's rows on the coordinator as cheap as on
//     its datanode, and after an ANALYZE a third of a 3,000-row table's
//     slots pulled their rows over, which also kept the slots' aggregates
//     from going to each datanode as one statement (batch.c).
//
// use_remote_estimate stays off (postgres_fdw's default): it would add an
// EXPLAIN round trip per shard to the planning of every query, and the
// router path (one shard by key) has no plan to choose.
var serverOptions = [][2]string{{"fetch_size", "10000"}, {"batch_size", "100"}, {"async_capable", "true"}, {"fdw_tuple_cost", "0.2"}}

// EnsureServer makes the foreign server name point at address:port (made
// when missing, its options changed when present), reachable with the
// coordinator's own password file (adb.secure_server) as user, by every
// role (password_required off: the password is the coordinator's, not the
// role's; only superusers own the foreign tables and may use the server,
// so a role reaches the shards only through the distributed tables it was
// granted), with the tuning of serverOptions and the extensions option: the extensions this
// coordinator has (besides plpgsql, postgres_fdw and dblink) that the
// datanode has too, whose functions and operators postgres_fdw may then
// send to it. The datanode is asked (dblink, 3 s to connect) only when this
// coordinator has such an extension: a datanode out of reach keeps the
// option as it was; none in common drops it.
func EnsureServer(name, address string, port int, user string) string {
	var opts []string
	for _, o := range serverOptions {
		opts = append(opts, fmt.Sprintf("(%s, %s)", pgclient.Literal(o[0]), pgclient.Literal(o[1])))
	}
	return fmt.Sprintf(`DO $adb$ BEGIN
	IF EXISTS (SELECT 1 FROM pg_foreign_server WHERE srvname = %[1]s) THEN
		ALTER SERVER %[2]s OPTIONS (SET host %[3]s, SET port %[4]s);
	ELSE
		CREATE SERVER %[2]s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host %[3]s, port %[4]s, dbname 'postgres');
	END IF;
END $adb$;
SELECT adb.secure_server(%[1]s);
CREATE USER MAPPING IF NOT EXISTS FOR PUBLIC SERVER %[2]s OPTIONS (user %[5]s, password_required 'false');
DO $adb$ BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_user_mappings WHERE srvname = %[1]s AND umuser = 0
	               AND umoptions @> ARRAY['password_required=false']) THEN
		IF EXISTS (SELECT 1 FROM pg_user_mappings m, unnest(m.umoptions) o
		           WHERE m.srvname = %[1]s AND m.umuser = 0 AND o LIKE 'password_required=%%') THEN
			ALTER USER MAPPING FOR PUBLIC SERVER %[2]s OPTIONS (SET password_required 'false');
		ELSE
			ALTER USER MAPPING FOR PUBLIC SERVER %[2]s OPTIONS (ADD password_required 'false');
		END IF;
	END IF;
END $adb$;
DO $adb$
DECLARE
	o record;
	ext text;
	info text := adb.conninfo(%[1]s);
BEGIN
	IF info IS NOT NULL AND EXISTS (SELECT 1 FROM pg_extension WHERE extname NOT IN ('plpgsql', 'postgres_fdw', 'dblink')) THEN
		BEGIN
			SELECT coalesce(string_agg(e, ',' ORDER BY e), '') INTO ext
			FROM dblink(info || ' connect_timeout=3', 'SELECT extname::text FROM pg_extension') AS r(e text)
			WHERE e IN (SELECT extname FROM pg_extension WHERE extname NOT IN ('plpgsql', 'postgres_fdw', 'dblink'));
		EXCEPTION WHEN OTHERS THEN
			RAISE LOG 'extensions of server %%: %%', %[1]s, SQLERRM;
		END;
	ELSE
		ext := '';
	END IF;
	FOR o IN SELECT * FROM (VALUES %[6]s, ('extensions', ext)) AS v(name, value) WHERE value IS NOT NULL LOOP
		-- Unchanged options are left alone: altering a server makes
		-- every session open its connection to it again.
		IF EXISTS (SELECT 1 FROM pg_foreign_server s, unnest(s.srvoptions) opt
		           WHERE s.srvname = %[1]s AND opt = o.name || '=' || o.value) THEN
			CONTINUE;
		END IF;
		IF EXISTS (SELECT 1 FROM pg_foreign_server s, unnest(s.srvoptions) opt
		           WHERE s.srvname = %[1]s AND opt LIKE o.name || '=%%') THEN
			IF o.value = '' THEN
				EXECUTE format('ALTER SERVER %%I OPTIONS (DROP %%I)', %[1]s, o.name);
			ELSE
				EXECUTE format('ALTER SERVER %%I OPTIONS (SET %%I %%L)', %[1]s, o.name, o.value);
			END IF;
		ELSIF o.value <> '' THEN
			EXECUTE format('ALTER SERVER %%I OPTIONS (ADD %%I %%L)', %[1]s, o.name, o.value);
		END IF;
	END LOOP;
END $adb$;
`, pgclient.Literal(name), pgclient.Ident(name), pgclient.Literal(address), pgclient.Literal(strconv.Itoa(port)), pgclient.Literal(user),
		strings.Join(opts, ", "))
}

// Configure is the script that gives coordinator c (or the gtmcoord
// master, the primary coordinator) the cluster's node list in schema adb
// and one postgres_fdw foreign server per datanode master, so that
// distributed tables can be built on it. ok selects the nodes that count
// (in the cluster, initialised…). A read-only coordinator's servers point
// at each datanode master's first sync slave, to spread reads.
func Configure(s *cluster.State, c cluster.Node, ok func(cluster.Node) bool) string {
	var b strings.Builder
	b.WriteString(Schema)
	// The node list as this coordinator had it: adb.orphans finds there
	// the group of a server or slot owner the new list no longer names.
	b.WriteString("\nDELETE FROM adb.prev_node;\nINSERT INTO adb.prev_node SELECT name, master FROM adb.node;\n")
	b.WriteString("DELETE FROM adb.node;\n")
	for _, n := range s.Nodes {
		if !ok(n) {
			continue
		}
		h, _ := s.Host(n.Host)
		fmt.Fprintf(&b, "INSERT INTO adb.node VALUES (%s, %s, %s, %d, %s);\n",
			pgclient.Literal(n.Name), pgclient.Literal(string(n.Type)), pgclient.Literal(h.Address), n.Port, pgclient.Literal(n.Master))
	}
	// The slot map is dealt once, round robin over the datanode masters in
	// catalog order; later changes (failover, expansion) move slots, never
	// deal them again.
	var dns []string
	for _, n := range s.Nodes {
		if n.Type == cluster.DatanodeMaster && ok(n) {
			dns = append(dns, pgclient.Literal(n.Name))
		}
	}
	if len(dns) > 0 {
		fmt.Fprintf(&b, "INSERT INTO adb.slot SELECT k, (ARRAY[%s])[k %% %d + 1] FROM generate_series(0, %d) k WHERE NOT EXISTS (SELECT 1 FROM adb.slot);\n",
			strings.Join(dns, ", "), len(dns), Slots-1)
	}
	// A server named after a node that is no longer a datanode master (a
	// failover this coordinator missed while it was down) is renamed after
	// the master of that node's replication group, so that its foreign
	// tables and the slot map follow.
	for _, r := range renames(s, ok) {
		fmt.Fprintf(&b, "SELECT adb.move_server(%s, %s);\n", pgclient.Literal(r[0]), pgclient.Literal(r[1]))
	}
	// A server or slot owner named after no node at all (a master whose
	// row was deleted while this coordinator was not told) follows its
	// group too.
	b.WriteString("SELECT adb.orphans();\n")
	for _, v := range Servers(s, c, ok) {
		b.WriteString(EnsureServer(v.Name, v.Address, v.Port, v.User))
	}
	return b.String()
}

// renames are the servers Configure renames: [old, new] for each datanode
// that is no longer a master, new being the master of its group.
func renames(s *cluster.State, ok func(cluster.Node) bool) [][2]string {
	var out [][2]string
	for _, old := range s.Nodes {
		if old.Type == cluster.DatanodeMaster || old.Type.Family() != cluster.Datanode {
			continue
		}
		if root := groupMaster(s, old); root.Type == cluster.DatanodeMaster && ok(root) {
			out = append(out, [2]string{old.Name, root.Name})
		}
	}
	return out
}

// Server is a foreign server a coordinator has: named after a datanode
// master, pointing at Address:Port (the master's, or for a read-only
// coordinator its sync slave's).
type Server struct {
	Name, Address string
	Port          int
	User          string
}

// Servers are the foreign servers Configure gives coordinator c.
func Servers(s *cluster.State, c cluster.Node, ok func(cluster.Node) bool) []Server {
	var out []Server
	for _, d := range s.Nodes {
		if d.Type != cluster.DatanodeMaster || !ok(d) {
			continue
		}
		src := d
		if c.ReadOnly {
			for _, sl := range s.Children(d.Name) {
				if sl.SyncState == cluster.Sync && ok(sl) {
					src = sl
					break
				}
			}
		}
		h, _ := s.Host(src.Host)
		out = append(out, Server{Name: d.Name, Address: h.Address, Port: src.Port, User: h.User})
	}
	return out
}

// ServersQuery reads what a coordinator routes to: its postgres_fdw
// servers that adbmgr made (named after a node of its node list adb.node)
// or that hold a partition of a distributed table — name, then
// "host:port" from their options — and the slot map's owners that have no
// server, with "". A DBA's own servers are left out, and so are the names
// a refresh could not place (adb.lost): refreshing again would not help.
const ServersQuery = `SELECT s.srvname::text,
	coalesce((SELECT option_value FROM pg_options_to_table(s.srvoptions) WHERE option_name = 'host'), '') || ':' ||
	coalesce((SELECT option_value FROM pg_options_to_table(s.srvoptions) WHERE option_name = 'port'), '')
FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
WHERE w.fdwname = 'postgres_fdw' AND (s.srvname::text IN (SELECT name FROM adb.node) OR adb.carries(s.srvname))
  AND s.srvname::text NOT IN (SELECT name FROM adb.lost)
UNION
SELECT DISTINCT node, '' FROM adb.slot
WHERE node NOT IN (SELECT srvname::text FROM pg_foreign_server) AND node NOT IN (SELECT name FROM adb.lost)`

// BareServersQuery is ServersQuery on a coordinator without the adb
// schema (never configured): every postgres_fdw server.
const BareServersQuery = `SELECT s.srvname::text,
	coalesce((SELECT option_value FROM pg_options_to_table(s.srvoptions) WHERE option_name = 'host'), '') || ':' ||
	coalesce((SELECT option_value FROM pg_options_to_table(s.srvoptions) WHERE option_name = 'port'), '')
FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
WHERE w.fdwname = 'postgres_fdw'`

// Stale reports whether coordinator c, which routes to have (ServersQuery:
// name → "host:port", "" for a slot owner without a server), lacks what
// Configure would give it: a server missing or pointing elsewhere; one
// still named after a node that is no longer a datanode master (a
// failover it missed while cut off: it would route that group's queries
// to the old master); a server or slot owner that names no node at all (a
// master deleted while it was not told: ADBMGR PROMOTE). Configure
// re-points all of them, so a refresh leaves it not stale; a name
// adb.orphans cannot place it records in adb.lost, which ServersQuery
// leaves out, so that the doctor does not refresh it again and again.
func Stale(s *cluster.State, c cluster.Node, ok func(cluster.Node) bool, have map[string]string) bool {
	for name := range have {
		if n, found := s.Node(name); !found || n.Type.Family() != cluster.Datanode {
			return true
		}
	}
	for _, r := range renames(s, ok) {
		if _, found := have[r[0]]; found {
			return true
		}
	}
	for _, v := range Servers(s, c, ok) {
		if have[v.Name] != v.Address+":"+strconv.Itoa(v.Port) {
			return true
		}
	}
	return false
}

// groupMaster is the top of n's replication tree (n itself for a master).
func groupMaster(s *cluster.State, n cluster.Node) cluster.Node {
	root := n
	for i := 0; i < len(s.Nodes) && root.Master != ""; i++ {
		p, found := s.Node(root.Master)
		if !found {
			break
		}
		root = p
	}
	return root
}

// IsCoordinator reports whether n holds the coordinators' catalog: the
// gtmcoord master and the coordinator masters.
func IsCoordinator(n cluster.Node) bool {
	return n.Type == cluster.GtmcoordMaster || n.Type == cluster.CoordinatorMaster
}
