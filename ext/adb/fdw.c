/*
 * fdw.c — the functions of postgres_fdw.so the other parts call, for all
 * of them: postgres_fdw.h is not installed, so they are resolved at run
 * time, once per backend, by name (postgres_fdw exports them). Also what
 * the parts agree on about the tables postgres_fdw holds: which tables are
 * distributed (adb_is_distributed) and which partition a row of one goes
 * to (adb_route_row).
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/rel.h"

#include "adb.h"

typedef PGconn *(*GetConnection_fn) (UserMapping *user, bool will_prep_stmt,
									 PgFdwConnState **state);
typedef PGresult *(*pgfdw_get_result_fn) (PGconn *conn, const char *query);
typedef void (*pgfdw_report_error_fn) (int elevel, PGresult *res, PGconn *conn,
									   bool clear, const char *sql);
typedef void (*do_sql_command_fn) (PGconn *conn, const char *sql);
typedef int (*set_transmission_modes_fn) (void);
typedef void (*reset_transmission_modes_fn) (int nestlevel);

static GetConnection_fn get_connection = NULL;
static pgfdw_get_result_fn get_result = NULL;
static pgfdw_report_error_fn report_error = NULL;
static do_sql_command_fn do_sql_command = NULL;
static set_transmission_modes_fn set_transmission_modes = NULL;
static reset_transmission_modes_fn reset_transmission_modes = NULL;

/* resolve loads postgres_fdw (if this backend has not yet) and finds them. */
static void
resolve(void)
{
	if (reset_transmission_modes != NULL)
		return;
	get_connection = (GetConnection_fn)
		load_external_function("$libdir/postgres_fdw", "GetConnection", true, NULL);
	get_result = (pgfdw_get_result_fn)
		load_external_function("$libdir/postgres_fdw", "pgfdw_get_result", true, NULL);
	report_error = (pgfdw_report_error_fn)
		load_external_function("$libdir/postgres_fdw", "pgfdw_report_error", true, NULL);
	do_sql_command = (do_sql_command_fn)
		load_external_function("$libdir/postgres_fdw", "do_sql_command", true, NULL);
	set_transmission_modes = (set_transmission_modes_fn)
		load_external_function("$libdir/postgres_fdw", "set_transmission_modes", true, NULL);
	reset_transmission_modes = (reset_transmission_modes_fn)
		load_external_function("$libdir/postgres_fdw", "reset_transmission_modes", true, NULL);
}

PGconn *
adb_fdw_GetConnection(UserMapping *user, bool will_prep_stmt, PgFdwConnState **state)
{
	resolve();
	return get_connection(user, will_prep_stmt, state);
}

PGresult *
adb_fdw_get_result(PGconn *conn, const char *query)
{
	resolve();
	return get_result(conn, query);
}

void
adb_fdw_report_error(int elevel, PGresult *res, PGconn *conn, bool clear, const char *sql)
{
	resolve();
	report_error(elevel, res, conn, clear, sql);
}

void
adb_fdw_do_sql_command(PGconn *conn, const char *sql)
{
	resolve();
	do_sql_command(conn, sql);
}

int
adb_fdw_set_transmission_modes(void)
{
	resolve();
	return set_transmission_modes();
}

void
adb_fdw_reset_transmission_modes(int nestlevel)
{
	resolve();
	reset_transmission_modes(nestlevel);
}

/* adb_fdw_is_postgres_fdw says whether serverid is a server of postgres_fdw. */
bool
adb_fdw_is_postgres_fdw(Oid serverid)
{
	ForeignServer *srv = GetForeignServer(serverid);

	return strcmp(GetForeignDataWrapper(srv->fdwid)->fdwname, "postgres_fdw") == 0;
}

/*
 * adb_remote_name is the remote name of foreign table relid as
 * postgres_fdw names it in its SQL: its schema_name and table_name
 * options, else the local names, qualified and quoted.
 */
char *
adb_remote_name(Oid relid)
{
	return adb_remote_name_of(GetForeignTable(relid), get_namespace_name(get_rel_namespace(relid)),
							  get_rel_name(relid));
}

/* adb_remote_name_of is adb_remote_name of a foreign table (ft) named nspname.relname here. */
char *
adb_remote_name_of(ForeignTable *ft, const char *nspname, const char *relname)
{
	char	   *nsp = adb_option_value(ft->options, "schema_name");
	char	   *name = adb_option_value(ft->options, "table_name");

	return psprintf("%s.%s", quote_identifier(nsp ? nsp : nspname), quote_identifier(name ? name : relname));
}

/* adb_option_value is the value of option name in a list of DefElems, or NULL. */
char *
adb_option_value(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, name) == 0)
			return defGetString(d);
	}
	return NULL;
}

/*
 * adb_remote_columns is the remote names of foreign table relid's
 * columns (column_name options, else the local names), quoted, comma
 * separated, in the table's order.
 */
char *
adb_remote_columns(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData cols;
	int			i;

	initStringInfo(&cols);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		char	   *name;

		if (att->attisdropped)
			continue;
		name = adb_option_value(GetForeignColumnOptions(relid, att->attnum), "column_name");
		appendStringInfo(&cols, "%s%s", cols.len > 0 ? ", " : "", quote_identifier(name ? name : NameStr(att->attname)));
	}
	table_close(rel, AccessShareLock);
	return cols.data;
}

/*
 * adb_is_distributed says whether rel is a distributed table as
 * create_distributed_table makes one (internal/coord/ddl.sql): partitioned
 * by HASH on one plain column, with at least one partition and every
 * partition a foreign table of a postgres_fdw server. Each partition is
 * looked at, not only the first: the owner may ATTACH a table of another
 * kind in place of a slot, and routing rows to it, or sending it SQL over
 * postgres_fdw's connection, would be wrong.
 */
bool
adb_is_distributed(Relation rel)
{
	PartitionKey key;
	PartitionDesc pd;
	int			i;

	if (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		return false;
	key = RelationGetPartitionKey(rel);
	if (key->strategy != PARTITION_STRATEGY_HASH || key->partnatts != 1 || key->partattrs[0] == 0)
		return false;
	pd = RelationGetPartitionDesc(rel, true);
	if (pd->nparts == 0)
		return false;
	for (i = 0; i < pd->nparts; i++)
	{
		if (get_rel_relkind(pd->oids[i]) != RELKIND_FOREIGN_TABLE ||
			!adb_fdw_is_postgres_fdw(GetForeignServerIdByRelId(pd->oids[i])))
			return false;
	}
	return true;
}

/*
 * adb_looks_distributed says whether rel may be a distributed table:
 * partitioned, its first partition a foreign table of a postgres_fdw
 * server. It is looser than adb_is_distributed on purpose, for the checks
 * that guard against what postgres_fdw would do wrong (an UPDATE of the
 * key, a statement that reads what it writes): they must hold on a
 * distributed table whose owner attached a plain table in place of a
 * slot (ddl.c lets ATTACH PARTITION through, for EXPAND), or on one a
 * superuser made by hand over postgres_fdw, hashed on several columns.
 */
bool
adb_looks_distributed(Relation rel)
{
	PartitionDesc pd;

	if (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		return false;
	pd = RelationGetPartitionDesc(rel, true);
	return pd->nparts > 0 && get_rel_relkind(pd->oids[0]) == RELKIND_FOREIGN_TABLE &&
		adb_fdw_is_postgres_fdw(GetForeignServerIdByRelId(pd->oids[0]));
}

/*
 * adb_is_distributed_oid is adb_is_distributed for a relation not open
 * yet (any kind, or none: relid may name anything).
 */
bool
adb_is_distributed_oid(Oid relid)
{
	Relation	rel;
	bool		result;

	if (get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return false;
	rel = table_open(relid, AccessShareLock);
	result = adb_is_distributed(rel);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * adb_route_row is the index in pd, rel's partition descriptor that the
 * caller holds, of the partition PostgreSQL's tuple routing gives a row of
 * distributed table rel (values and nulls in rel's columns): the hash of
 * the key columns, as ExecFindPartition computes it. A row whose slot has
 * no partition (one detached) is refused with ExecFindPartition's error.
 */
int
adb_route_row(Relation rel, PartitionDesc pd, Datum *values, bool *nulls)
{
	PartitionKey key = RelationGetPartitionKey(rel);
	Datum		kv[PARTITION_MAX_KEYS];
	bool		kn[PARTITION_MAX_KEYS];
	uint64		h;
	int			i,
				idx;

	Assert(key->strategy == PARTITION_STRATEGY_HASH);
	for (i = 0; i < key->partnatts; i++)
	{
		Assert(key->partattrs[i] > 0);
		kv[i] = values[key->partattrs[i] - 1];
		kn[i] = nulls[key->partattrs[i] - 1];
	}
	h = compute_partition_hash_value(key->partnatts, key->partsupfunc, key->partcollation, kv, kn);
	idx = pd->boundinfo->indexes[h % get_hash_partition_greatest_modulus(pd->boundinfo)];
	if (idx < 0)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("no partition of relation \"%s\" found for row", RelationGetRelationName(rel))));
	return idx;
}

/*
 * PgFdwConnStateLayout is postgres_fdw 15's PgFdwConnState (its header is
 * not installed): a connection's pending asynchronous request, if any.
 */
typedef struct PgFdwConnStateLayout
{
	void	   *pendingAreq;
} PgFdwConnStateLayout;

/*
 * adb_fdw_pending says whether a connection of postgres_fdw (its state
 * from GetConnection) has an asynchronous fetch of a scan still pending:
 * another query must not be sent on it then.
 */
bool
adb_fdw_pending(PgFdwConnState *state)
{
	return state != NULL && ((PgFdwConnStateLayout *) state)->pendingAreq != NULL;
}
