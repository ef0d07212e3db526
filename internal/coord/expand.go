package coord

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/adbmgr/adbmgr/internal/pgclient"
)

// The coordinators' side of EXPAND: which slots a datanode owns, which
// foreign-table partitions hold the slots that move, how they are locked
// and re-pointed at the destination, and which shard tables EXPAND CLEAN
// empties on a datanode.

// Table is a distributed table: a hash-partitioned table whose
// partitions are foreign tables.
type Table struct {
	Schema, Name string
}

// Partition is a foreign-table partition of a distributed table: Name
// (<table>_<Slot>, in Schema) of Parent (a regclass text).
type Partition struct {
	Parent, Name, Schema string
	Slot                 int
}

// SlotsOf is the query of the slots node owns, in order.
func SlotsOf(node string) string {
	return "SELECT slot FROM adb.slot WHERE node = " + pgclient.Literal(node) + " ORDER BY slot"
}

// DistributedTables is the query of (schema, table) of every distributed
// table.
const DistributedTables = `SELECT DISTINCT n.nspname, p.relname FROM pg_partitioned_table pt
			JOIN pg_class p ON p.oid = pt.partrelid JOIN pg_namespace n ON n.oid = p.relnamespace
			JOIN pg_inherits i ON i.inhparent = p.oid JOIN pg_foreign_table ft ON ft.ftrelid = i.inhrelid
			WHERE pt.partstrat = 'h'`

// Partitions is the query, on a coordinator, of the foreign-table
// partitions of the distributed tables on src's server: (parent, name,
// schema) rows, to be filtered by PartitionSlot.
func Partitions(src string) string {
	return `SELECT p.oid::regclass::text, ch.relname, n.nspname
		FROM pg_inherits i JOIN pg_class ch ON ch.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
		JOIN pg_namespace n ON n.oid = ch.relnamespace JOIN pg_foreign_table ft ON ft.ftrelid = ch.oid
		JOIN pg_foreign_server s ON s.oid = ft.ftserver JOIN pg_partitioned_table pt ON pt.partrelid = p.oid
		WHERE s.srvname = ` + pgclient.Literal(src) + ` AND pt.partstrat = 'h' AND ch.relname LIKE p.relname || '\_%'`
}

// PartitionSlot is the slot of partition name (<table>_<slot>) when it is
// one of slots.
func PartitionSlot(name string, slots map[int]bool) (int, bool) {
	i := strings.LastIndexByte(name, '_')
	if i < 0 {
		return 0, false
	}
	k, err := strconv.Atoi(name[i+1:])
	if err != nil || !slots[k] {
		return 0, false
	}
	return k, true
}

// LockTimeout bounds, in the transaction that holds the moving slots, the
// wait for a table lock: a session holding the table must not stall the
// expansion (and every writer behind it) without end.
const LockTimeout = "SET LOCAL lock_timeout = '10s'"

// LockTable locks parent (a regclass text) in EXCLUSIVE mode: foreign
// tables cannot be locked, their parents can, which blocks writes through
// this coordinator (reads go on).
func LockTable(parent string) string {
	return fmt.Sprintf("LOCK TABLE %s IN EXCLUSIVE MODE", parent)
}

// Repoint re-creates parts as foreign tables on the server of datanode
// dst (EnsureServer), which takes slots in adb.slot. Creating a foreign
// table does not connect to dst, so it runs while dst is still a standby.
func Repoint(dst, address string, port int, user string, parts []Partition, slots string) string {
	var b strings.Builder
	b.WriteString(EnsureServer(dst, address, port, user))
	for _, p := range parts {
		fmt.Fprintf(&b, "ALTER TABLE %s DETACH PARTITION %s.%s;\n", p.Parent, pgclient.Ident(p.Schema), pgclient.Ident(p.Name))
		fmt.Fprintf(&b, "DROP FOREIGN TABLE %s.%s;\n", pgclient.Ident(p.Schema), pgclient.Ident(p.Name))
		fmt.Fprintf(&b, "CREATE FOREIGN TABLE %[1]s.%[2]s PARTITION OF %[3]s FOR VALUES WITH (MODULUS %[4]d, REMAINDER %[5]d) SERVER %[6]s OPTIONS (schema_name %[7]s, table_name %[8]s);\n",
			pgclient.Ident(p.Schema), pgclient.Ident(p.Name), p.Parent, Slots, p.Slot, pgclient.Ident(dst),
			pgclient.Literal(p.Schema), pgclient.Literal(p.Name))
	}
	fmt.Fprintf(&b, "UPDATE adb.slot SET node = %s WHERE slot IN (%s);\n", pgclient.Literal(dst), slots)
	return b.String()
}

// Shard is the shard table of slot k of t on a datanode, quoted.
func Shard(t Table, k int) string {
	return pgclient.Ident(t.Schema) + "." + pgclient.Ident(t.Name+"_"+strconv.Itoa(k))
}

// ShardExists is the query whether shard (Shard's text) exists.
func ShardExists(shard string) string {
	return "SELECT to_regclass(" + pgclient.Literal(shard) + ") IS NOT NULL"
}

// HeldTables is the query, on a coordinator, of the distributed tables
// (regclass texts) with a partition on datanode server's foreign server:
// the tables a SWITCHOVER of that datanode holds the writes of.
func HeldTables(server string) string {
	return `SELECT DISTINCT parent FROM (` + Partitions(server) + `) AS p(parent, name, schema) ORDER BY 1`
}

// HoldGID is the global transaction identifier under which EXPAND
// ACTIVATE prepares (PREPARE TRANSACTION) each coordinator's transaction
// that re-points dst's slots: prepared, the transaction outlives the
// manager's connection — the writes stay paused and the new routing
// waits, neither lost nor half applied, until the manager commits it
// (dst promoted) or rolls it back (dst still a standby). One per
// destination, so that a restarted manager finds it by name; the prefix
// keeps it apart from the distributed transactions' own.
func HoldGID(dst string) string { return "adbmgr_expand:" + dst }

// PrepareHold is the statement that prepares the open transaction as gid.
func PrepareHold(gid string) string { return "PREPARE TRANSACTION " + pgclient.Literal(gid) }

// HoldPrepared is the query whether a prepared transaction gid waits on
// this node.
func HoldPrepared(gid string) string {
	return "SELECT EXISTS (SELECT 1 FROM pg_prepared_xacts WHERE gid = " + pgclient.Literal(gid) + " AND database = current_database())"
}

// FinishHold is the statement that commits (or rolls back) the prepared
// transaction gid.
func FinishHold(gid string, commit bool) string {
	if commit {
		return "COMMIT PREPARED " + pgclient.Literal(gid)
	}
	return "ROLLBACK PREPARED " + pgclient.Literal(gid)
}
