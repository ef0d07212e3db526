/*
 * router.c — single-slot statements through a coordinator in one round
 * trip, as Citus's router executor does.
 *
 * postgres_fdw spends five round trips on a statement that touches one
 * row of a distributed table (START TRANSACTION, DECLARE or PREPARE,
 * FETCH or EXECUTE, CLOSE or DEALLOCATE, COMMIT). When the plan reaches a
 * single foreign partition (one slot: a SELECT, UPDATE or DELETE whose
 * distribution column equals a constant, pruned at plan time to one
 * postgres_fdw scan or direct modify; or a one-row INSERT … VALUES of
 * constants, whose slot is hashed here as tuple routing would), the
 * planner hook puts a CustomScan "AdbRouter" on top of the plan, with the
 * original plan as its child. At execution, a statement run on its own
 * (autocommit, simple query protocol, nothing written before it in the
 * transaction, superuser) sends
 *
 *     START TRANSACTION ISOLATION LEVEL <client's>; <remote SQL>; COMMIT
 *
 * as one query on a connection of this backend to the slot's datanode
 * (the server's and the user mapping's libpq options, the session set up
 * as postgres_fdw sets up its own), with the remote SQL postgres_fdw
 * deparsed for the shard. A one-slot statement in autocommit needs no
 * two-phase commit. Anything else (a transaction block, a function's or a
 * DO block's statement, EXPLAIN, adb.router off) runs the child, i.e.
 * postgres_fdw, unchanged.
 */
#include "postgres.h"

#include <poll.h>

#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/planner.h"
#include "parser/parsetree.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "storage/latch.h"
#include "tcop/pquery.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/portal.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/wait_event.h"

#include "adb.h"

/* What the router's node runs remotely. */
#define ROUTE_SELECT 1			/* rows into the scan's relation */
#define ROUTE_MODIFY 2			/* a command whose row count is the result */

static bool adb_router = true;
static planner_hook_type prev_planner_hook = NULL;

/*
 * RouterState is the router node at execution: what it sends (private,
 * from the plan), whether it runs its child instead (delegate), and the
 * rows it got.
 */
typedef struct RouterState
{
	CustomScanState css;
	int			kind;
	char	   *sql;
	Oid			serverid;
	Oid			userid;
	List	   *attrs;			/* ROUTE_SELECT: result column i → attnum */
	bool		delegate;
	bool		done;
	PGresult   *res;
	int			row;
	FmgrInfo   *infuncs;		/* by attnum - 1 */
	Oid		   *ioparams;
	MemoryContextCallback free_res;
} RouterState;

static Node *router_create_state(CustomScan *cscan);
static void router_begin(CustomScanState *node, EState *estate, int eflags);
static TupleTableSlot *router_exec(CustomScanState *node);
static void router_end(CustomScanState *node);
static void router_rescan(CustomScanState *node);
static void router_explain(CustomScanState *node, List *ancestors, ExplainState *es);

static CustomScanMethods router_scan_methods = {
	"AdbRouter",
	router_create_state,
};

static CustomExecMethods router_exec_methods = {
	.CustomName = "AdbRouter",
	.BeginCustomScan = router_begin,
	.ExecCustomScan = router_exec,
	.EndCustomScan = router_end,
	.ReScanCustomScan = router_rescan,
	.ExplainCustomScan = router_explain,
};

/* ---------- planning ---------- */

/*
 * is_pgfdw_server says whether serverid belongs to postgres_fdw: only its
 * plans' fdw_private has the layout read here.
 */
static bool
is_pgfdw_server(Oid serverid)
{
	ForeignServer *srv = GetForeignServer(serverid);

	return strcmp(GetForeignDataWrapper(srv->fdwid)->fdwname, "postgres_fdw") == 0;
}

/*
 * no_triggers says whether relation relid has no triggers (the router's
 * plan has no ModifyTable to fire them) and no row security.
 */
static bool
no_triggers(Oid relid)
{
	Relation	rel = table_open(relid, NoLock);
	bool		ok = rel->trigdesc == NULL && !rel->rd_rel->relrowsecurity;

	table_close(rel, NoLock);
	return ok;
}

/* rte_userid is the user postgres_fdw connects as for a range table entry. */
static Oid
rte_userid(RangeTblEntry *rte)
{
	return OidIsValid(rte->checkAsUser) ? rte->checkAsUser : InvalidOid;
}

/*
 * make_router wraps plan (the statement's whole plan) in the router's
 * node: kind, remote sql, server and user (InvalidOid: the current user at
 * execution), and for a SELECT the scanned relation and the result's
 * columns.
 */
static CustomScan *
make_router(Plan *plan, int kind, const char *sql, Oid serverid, Oid userid, List *attrs)
{
	CustomScan *cs = makeNode(CustomScan);

	cs->scan.plan.startup_cost = plan->startup_cost;
	cs->scan.plan.total_cost = plan->total_cost;
	cs->scan.plan.plan_rows = plan->plan_rows;
	cs->scan.plan.plan_width = plan->plan_width;
	cs->scan.plan.plan_node_id = plan->plan_node_id;
	if (kind == ROUTE_SELECT)
	{
		ForeignScan *fs = (ForeignScan *) plan;

		cs->scan.plan.targetlist = fs->scan.plan.targetlist;
		cs->scan.plan.qual = fs->scan.plan.qual;
		cs->scan.scanrelid = fs->scan.scanrelid;
		cs->custom_relids = bms_make_singleton(fs->scan.scanrelid);
	}
	cs->custom_plans = list_make1(plan);
	cs->custom_private = list_make5(makeInteger(kind), makeString(pstrdup(sql)),
									makeInteger((int) serverid), makeInteger((int) userid),
									attrs);
	cs->methods = &router_scan_methods;
	return cs;
}

/*
 * route_select: a plan that is one postgres_fdw scan of one foreign
 * partition, all its conditions constants (no parameters).
 */
static Plan *
route_select(PlannedStmt *stmt)
{
	ForeignScan *fs = (ForeignScan *) stmt->planTree;
	RangeTblEntry *rte;
	List	   *attrs;
	ListCell   *lc;
	int			natts;
	Bitmapset  *sysattrs = NULL;
	int			i;

	if (!IsA(fs, ForeignScan) || fs->operation != CMD_SELECT || fs->scan.scanrelid == 0 ||
		fs->fdw_exprs != NIL || fs->fdw_scan_tlist != NIL || list_length(fs->fdw_private) < 2 ||
		!is_pgfdw_server(fs->fs_server))
		return NULL;
	rte = rt_fetch(fs->scan.scanrelid, stmt->rtable);
	if (rte->rtekind != RTE_RELATION || !get_rel_relispartition(rte->relid))
		return NULL;
	/* System columns but tableoid come from postgres_fdw's heap tuples. */
	pull_varattnos((Node *) fs->scan.plan.targetlist, fs->scan.scanrelid, &sysattrs);
	pull_varattnos((Node *) fs->scan.plan.qual, fs->scan.scanrelid, &sysattrs);
	for (i = bms_next_member(sysattrs, -1); i >= 0; i = bms_next_member(sysattrs, i))
		if (i + FirstLowInvalidHeapAttributeNumber < 0 &&
			i + FirstLowInvalidHeapAttributeNumber != TableOidAttributeNumber)
			return NULL;
	attrs = (List *) lsecond(fs->fdw_private);
	{
		Relation	rel = table_open(rte->relid, NoLock);

		natts = RelationGetNumberOfAttributes(rel);
		table_close(rel, NoLock);
	}
	foreach(lc, attrs)
		if (lfirst_int(lc) < 1 || lfirst_int(lc) > natts)
			return NULL;
	return (Plan *) make_router((Plan *) fs, ROUTE_SELECT, strVal(linitial(fs->fdw_private)),
								fs->fs_server, rte_userid(rte), attrs);
}

/*
 * route_modify: an UPDATE or DELETE postgres_fdw pushes to one foreign
 * partition whole (direct modify), without RETURNING, parameters or
 * triggers.
 */
static Plan *
route_modify(PlannedStmt *stmt, ModifyTable *mt)
{
	ForeignScan *fs = (ForeignScan *) outerPlan(mt);
	RangeTblEntry *rte;

	if (list_length(mt->resultRelations) != 1 || !bms_is_member(0, mt->fdwDirectModifyPlans) ||
		fs == NULL || !IsA(fs, ForeignScan) || fs->operation != mt->operation ||
		fs->fdw_exprs != NIL || fs->resultRelation == 0 || list_length(fs->fdw_private) < 2 ||
		intVal(lsecond(fs->fdw_private)) != 0 || fs->scan.plan.initPlan != NIL ||
		!is_pgfdw_server(fs->fs_server))
		return NULL;
	rte = rt_fetch(fs->resultRelation, stmt->rtable);
	if (rte->rtekind != RTE_RELATION || !get_rel_relispartition(rte->relid) || !no_triggers(rte->relid))
		return NULL;
	if (mt->rootRelation > 0 && !no_triggers(rt_fetch(mt->rootRelation, stmt->rtable)->relid))
		return NULL;
	return (Plan *) make_router((Plan *) mt, ROUTE_MODIFY, strVal(linitial(fs->fdw_private)),
								fs->fs_server, rte_userid(rte), NIL);
}

/*
 * const_literal is c as an SQL literal the remote side reads as
 * postgres_fdw's parameters are read (untyped text, in the transmission
 * formats the caller set).
 */
static char *
const_literal(Const *c)
{
	Oid			out;
	bool		isvarlena;

	if (c->constisnull)
		return "NULL";
	getTypeOutputInfo(c->consttype, &out, &isvarlena);
	return quote_literal_cstr(OidOutputFunctionCall(out, c->constvalue));
}

/*
 * insert_sql is the remote INSERT of the row tlist (the root's columns, by
 * resno) into foreign partition part, as postgres_fdw's would insert it
 * (every column, the remote names of the table's and the columns'
 * options), or NULL when a value is not a constant or a column is
 * generated.
 */
static char *
insert_sql(Relation root, Relation part, List *tlist)
{
	ForeignTable *ft = GetForeignTable(RelationGetRelid(part));
	TupleDesc	desc = RelationGetDescr(part);
	const char *nspname = get_namespace_name(RelationGetNamespace(part));
	const char *relname = RelationGetRelationName(part);
	StringInfoData cols,
				vals;
	ListCell   *lc;
	int			i;
	int			nest;
	bool		ok = true;

	foreach(lc, ft->options)
	{
		DefElem    *d = (DefElem *) lfirst(lc);

		if (strcmp(d->defname, "schema_name") == 0)
			nspname = defGetString(d);
		else if (strcmp(d->defname, "table_name") == 0)
			relname = defGetString(d);
	}
	initStringInfo(&cols);
	initStringInfo(&vals);

	/* The formats postgres_fdw sends values in (set_transmission_modes). */
	nest = NewGUCNestLevel();
	(void) set_config_option("datestyle", "ISO", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("extra_float_digits", "3", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("search_path", "pg_catalog", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	for (i = 0; i < desc->natts && ok; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *colname = NameStr(att->attname);
		AttrNumber	rootatt;
		TargetEntry *tle;
		ListCell   *oc;

		if (att->attisdropped)
			continue;
		if (att->attgenerated)
		{
			ok = false;
			break;
		}
		rootatt = get_attnum(RelationGetRelid(root), colname);
		tle = rootatt > 0 ? get_tle_by_resno(tlist, rootatt) : NULL;
		if (tle == NULL || !IsA(tle->expr, Const) || ((Const *) tle->expr)->consttype != att->atttypid)
		{
			ok = false;
			break;
		}
		foreach(oc, GetForeignColumnOptions(RelationGetRelid(part), att->attnum))
		{
			DefElem    *d = (DefElem *) lfirst(oc);

			if (strcmp(d->defname, "column_name") == 0)
				colname = defGetString(d);
		}
		appendStringInfo(&cols, "%s%s", cols.len ? ", " : "", quote_identifier(colname));
		appendStringInfo(&vals, "%s%s", vals.len ? ", " : "", const_literal((Const *) tle->expr));
	}
	AtEOXact_GUC(true, nest);
	if (!ok || cols.len == 0)
		return NULL;
	return psprintf("INSERT INTO %s.%s(%s) VALUES (%s)", quote_identifier(nspname),
					quote_identifier(relname), cols.data, vals.data);
}

/*
 * route_insert: a one-row INSERT … VALUES of constants into a distributed
 * table (a parent partitioned by hash on plain columns), without
 * RETURNING, ON CONFLICT or triggers: its partition is found as tuple
 * routing finds it (the partition key's hash), and must be a postgres_fdw
 * foreign table.
 */
static Plan *
route_insert(PlannedStmt *stmt, ModifyTable *mt)
{
	Result	   *res = (Result *) outerPlan(mt);
	RangeTblEntry *rte;
	Relation	root,
				part = NULL;
	PartitionKey key;
	PartitionDesc pd;
	Datum		values[PARTITION_MAX_KEYS];
	bool		isnull[PARTITION_MAX_KEYS];
	int			i;
	int			idx;
	uint64		hash;
	Plan	   *out = NULL;
	char	   *sql;

	if (list_length(mt->resultRelations) != 1 || res == NULL || !IsA(res, Result) ||
		outerPlan(res) != NULL || res->resconstantqual != NULL || res->plan.initPlan != NIL)
		return NULL;
	rte = rt_fetch(linitial_int(mt->resultRelations), stmt->rtable);
	if (rte->rtekind != RTE_RELATION || get_rel_relkind(rte->relid) != RELKIND_PARTITIONED_TABLE)
		return NULL;
	root = table_open(rte->relid, NoLock);
	key = RelationGetPartitionKey(root);
	if (root->trigdesc != NULL || root->rd_rel->relrowsecurity || key == NULL ||
		key->strategy != PARTITION_STRATEGY_HASH)
		goto done;
	for (i = 0; i < key->partnatts; i++)
	{
		TargetEntry *tle = key->partattrs[i] > 0 ? get_tle_by_resno(res->plan.targetlist, key->partattrs[i]) : NULL;

		if (tle == NULL || !IsA(tle->expr, Const) || ((Const *) tle->expr)->consttype != key->parttypid[i])
			goto done;
		values[i] = ((Const *) tle->expr)->constvalue;
		isnull[i] = ((Const *) tle->expr)->constisnull;
	}
	pd = RelationGetPartitionDesc(root, true);
	if (pd->nparts == 0 || pd->boundinfo == NULL || pd->boundinfo->nindexes <= 0)
		goto done;
	hash = compute_partition_hash_value(key->partnatts, key->partsupfunc, key->partcollation, values, isnull);
	idx = pd->boundinfo->indexes[hash % pd->boundinfo->nindexes];
	if (idx < 0 || !pd->is_leaf[idx] || get_rel_relkind(pd->oids[idx]) != RELKIND_FOREIGN_TABLE)
		goto done;
	/* Tuple routing would lock it for the INSERT. */
	part = table_open(pd->oids[idx], RowExclusiveLock);
	if (part->trigdesc != NULL || part->rd_rel->relrowsecurity ||
		!is_pgfdw_server(GetForeignServerIdByRelId(RelationGetRelid(part))))
		goto done;
	sql = insert_sql(root, part, res->plan.targetlist);
	if (sql == NULL)
		goto done;
	/* A change of the partition (its server, its name) replans. */
	stmt->relationOids = lappend_oid(stmt->relationOids, RelationGetRelid(part));
	out = (Plan *) make_router((Plan *) mt, ROUTE_MODIFY, sql,
							   GetForeignServerIdByRelId(RelationGetRelid(part)), rte_userid(rte), NIL);
done:
	if (part)
		table_close(part, NoLock);
	table_close(root, NoLock);
	return out;
}

/*
 * router_planner plans as before (the previous hooks: dml.c's refusal of
 * distribution-column UPDATEs stands), then wraps a one-slot statement's
 * plan in the router's node.
 */
static PlannedStmt *
router_planner(Query *parse, const char *query_string, int cursorOptions, ParamListInfo boundParams)
{
	PlannedStmt *stmt;
	Plan	   *top = NULL;

	if (prev_planner_hook)
		stmt = prev_planner_hook(parse, query_string, cursorOptions, boundParams);
	else
		stmt = standard_planner(parse, query_string, cursorOptions, boundParams);
	if (!adb_router || (cursorOptions & (CURSOR_OPT_SCROLL | CURSOR_OPT_HOLD)) ||
		stmt->subplans != NIL || stmt->rowMarks != NIL || stmt->hasModifyingCTE ||
		stmt->parallelModeNeeded || stmt->planTree == NULL ||
		stmt->planTree->initPlan != NIL)
		return stmt;
	/* (A ModifyTable has one PARAM_EXEC of its own, for EvalPlanQual.) */
	if (stmt->commandType == CMD_SELECT && stmt->paramExecTypes == NIL)
		top = route_select(stmt);
	else if (IsA(stmt->planTree, ModifyTable))
	{
		ModifyTable *mt = (ModifyTable *) stmt->planTree;

		if (mt->returningLists != NIL || mt->withCheckOptionLists != NIL ||
			mt->onConflictAction != ONCONFLICT_NONE || mt->operation != stmt->commandType)
			return stmt;
		if (mt->operation == CMD_UPDATE || mt->operation == CMD_DELETE)
			top = route_modify(stmt, mt);
		else if (mt->operation == CMD_INSERT)
			top = route_insert(stmt, mt);
	}
	if (top != NULL)
		stmt->planTree = top;
	return stmt;
}

/* ---------- connections ---------- */

/*
 * RouterConn is this backend's connection for one (server, user), the
 * connection string it was opened with (a changed server, e.g. after a
 * failover, opens a new one), and whether that string is known to be
 * current (valid: no change of a server or user mapping since it was
 * built; building it costs more than a statement should).
 */
typedef struct RouterConnKey
{
	Oid			serverid;
	Oid			userid;
} RouterConnKey;

typedef struct RouterConn
{
	RouterConnKey key;			/* hash key */
	PGconn	   *conn;
	char	   *conninfo;		/* TopMemoryContext */
	bool		valid;
} RouterConn;

static HTAB *router_conns = NULL;

/*
 * router_conninfo is the connection string of postgres_fdw's connection
 * for um: the server's and the mapping's libpq options (adb_fdw_conninfo;
 * a later keyword wins in libpq), and the
 * application_name postgres_fdw.application_name gives on the nodes
 * ('adb:%C:%p': the manager finds a coordinator's remote sessions by it).
 */
static char *
router_conninfo(ForeignServer *srv, UserMapping *um)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoString(&s, adb_fdw_conninfo(srv, um));
	appendStringInfo(&s, "application_name='adb:%s:%d'",
					 (cluster_name && strchr(cluster_name, '\'') == NULL && strchr(cluster_name, '\\') == NULL) ? cluster_name : "",
					 MyProcPid);
	return s.data;
}

/* drop_conn closes rc's connection. */
static void
drop_conn(RouterConn *rc)
{
	if (rc->conn)
		PQfinish(rc->conn);
	rc->conn = NULL;
}

/*
 * conn_usable says whether a cached connection can take a query: it is
 * up, and nothing came from its server since it went idle.
 */
static bool
conn_usable(PGconn *conn)
{
	int			rc;

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE)
		return false;
	{
		struct pollfd pfd = {.fd = PQsocket(conn),.events = POLLIN};

		rc = poll(&pfd, 1, 0);
	}

	/*
	 * An idle session gets nothing but its end (EOF, or a FATAL before it:
	 * a shutdown, a terminated backend) — or a notice, for which a new
	 * connection costs little.
	 */
	return rc == 0;
}

/*
 * router_connection is the connection for (serverid, userid): the cached
 * one when its server is unchanged and it is alive, else a new one, its
 * session set as postgres_fdw sets its own (configure_remote_session), so
 * that values travel in the same text formats.
 */
static PGconn *
router_connection(Oid serverid, Oid userid)
{
	ForeignServer *srv;
	char	   *conninfo;
	RouterConn *rc;
	RouterConnKey key;
	bool		found;
	PGresult   *res;

	if (router_conns == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(RouterConnKey);
		ctl.entrysize = sizeof(RouterConn);
		ctl.hcxt = TopMemoryContext;
		router_conns = hash_create("adb router connections", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	memset(&key, 0, sizeof(key));
	key.serverid = serverid;
	key.userid = userid;
	rc = hash_search(router_conns, &key, HASH_ENTER, &found);
	if (!found)
	{
		rc->conn = NULL;
		rc->conninfo = NULL;
		rc->valid = false;
	}
	if (rc->valid && conn_usable(rc->conn))
		return rc->conn;
	srv = GetForeignServer(serverid);
	conninfo = router_conninfo(srv, GetUserMapping(userid, serverid));
	rc->valid = false;
	if (rc->conninfo == NULL || strcmp(rc->conninfo, conninfo) != 0 || !conn_usable(rc->conn))
	{
		drop_conn(rc);
		if (rc->conninfo)
			pfree(rc->conninfo);
		rc->conninfo = MemoryContextStrdup(TopMemoryContext, conninfo);
		rc->conn = PQconnectdb(conninfo);
		if (rc->conn == NULL || PQstatus(rc->conn) != CONNECTION_OK)
		{
			char	   *msg = rc->conn ? pchomp(PQerrorMessage(rc->conn)) : "out of memory";

			drop_conn(rc);
			ereport(ERROR,
					(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
					 errmsg("could not connect to server \"%s\"", srv->servername),
					 errdetail_internal("%s", msg)));
		}
		res = PQexec(rc->conn, "SET search_path = pg_catalog; SET timezone = 'UTC'; SET datestyle = ISO; "
					 "SET intervalstyle = postgres; SET extra_float_digits = 3");
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			char	   *msg = pchomp(PQerrorMessage(rc->conn));

			PQclear(res);
			drop_conn(rc);
			ereport(ERROR,
					(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
					 errmsg("could not set up the session on server \"%s\"", srv->servername),
					 errdetail_internal("%s", msg)));
		}
		PQclear(res);
	}
	rc->valid = true;
	return rc->conn;
}

/*
 * router_inval: a server or user mapping changed, so every connection
 * string is checked again at its next use.
 */
static void
router_inval(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS seq;
	RouterConn *rc;

	if (router_conns == NULL)
		return;
	hash_seq_init(&seq, router_conns);
	while ((rc = hash_seq_search(&seq)) != NULL)
		rc->valid = false;
}

/* forget_conn drops the cached connection conn (state unknown). */
static void
forget_conn(PGconn *conn)
{
	HASH_SEQ_STATUS seq;
	RouterConn *rc;

	if (router_conns == NULL)
		return;
	hash_seq_init(&seq, router_conns);
	while ((rc = hash_seq_search(&seq)) != NULL)
		if (rc->conn == conn)
			drop_conn(rc);
}

/* ---------- execution ---------- */

/*
 * remote_error reports the remote error res as postgres_fdw does
 * (pgfdw_report_error): the remote SQLSTATE, message, detail, hint and
 * context, and the remote SQL.
 */
static void
remote_error(PGresult *res, PGconn *conn, const char *sql)
{
	char	   *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	char	   *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char	   *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	char	   *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
	char	   *context = res ? PQresultErrorField(res, PG_DIAG_CONTEXT) : NULL;
	int			code = ERRCODE_CONNECTION_FAILURE;

	if (state && strlen(state) == 5)
		code = MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4]);
	primary = primary ? pstrdup(primary) : (conn ? pchomp(PQerrorMessage(conn)) : NULL);
	detail = detail ? pstrdup(detail) : NULL;
	hint = hint ? pstrdup(hint) : NULL;
	context = context ? pstrdup(context) : NULL;
	if (res)
		PQclear(res);
	ereport(ERROR,
			(errcode(code),
			 primary ? errmsg_internal("%s", primary) : errmsg("could not obtain message string for remote error"),
			 detail ? errdetail_internal("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0,
			 context ? errcontext("%s", context) : 0,
			 errcontext("remote SQL command: %s", sql)));
}

/*
 * run_query sends sql on conn and collects its results: the one at index
 * want (kept), or the first error (errres). While it waits, interrupts
 * are served; one that ends the statement (a client's cancel, a
 * statement_timeout, a deadlock victim's cancel) cancels the remote query
 * first and drops the connection (its state is unknown then).
 */
static PGresult *
run_query(PGconn *conn, const char *sql, int want, PGresult **errres, bool *broken)
{
	PGresult   *volatile kept = NULL;
	int			n = 0;

	*errres = NULL;
	*broken = false;
	if (!PQsendQuery(conn, sql))
	{
		*broken = true;
		return NULL;
	}
	PG_TRY();
	{
		for (;;)
		{
			PGresult   *res;

			while (PQisBusy(conn))
			{
				int			rc = WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH,
												   PQsocket(conn), -1L, PG_WAIT_EXTENSION);

				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
				if ((rc & WL_SOCKET_READABLE) && !PQconsumeInput(conn))
				{
					*broken = true;
					break;
				}
			}
			if (*broken)
				break;
			res = PQgetResult(conn);
			if (res == NULL)
				break;
			if (PQresultStatus(res) == PGRES_FATAL_ERROR && *errres == NULL)
				*errres = res;
			else if (n == want && kept == NULL)
				kept = res;
			else
				PQclear(res);
			n++;
		}
	}
	PG_CATCH();
	{
		PGcancel   *cancel = PQgetCancel(conn);
		char		errbuf[256];

		if (cancel)
		{
			(void) PQcancel(cancel, errbuf, sizeof(errbuf));
			PQfreeCancel(cancel);
		}
		if (kept)
			PQclear(kept);
		if (*errres)
			PQclear(*errres);
		forget_conn(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (*broken)
	{
		if (kept)
			PQclear(kept);
		kept = NULL;
	}
	return kept;
}

/* isolation is the level clause of the client's transaction. */
static const char *
isolation(void)
{
	if (XactIsoLevel == XACT_SERIALIZABLE)
		return "SERIALIZABLE";
	if (XactIsoLevel == XACT_REPEATABLE_READ)
		return "REPEATABLE READ";
	return "READ COMMITTED";
}

/* router_free_res frees the rows kept (libpq's memory is not palloc'd). */
static void
router_free_res(void *arg)
{
	RouterState *rs = (RouterState *) arg;

	if (rs->res)
		PQclear(rs->res);
	rs->res = NULL;
}

/*
 * run_remote runs the router's statement in one round trip (one more,
 * ROLLBACK, after a remote error) and keeps its result: the rows of a
 * SELECT, the row count of a command (es_processed, as postgres_fdw
 * counts).
 */
static void
run_remote(RouterState *rs, EState *estate)
{
	Oid			userid = OidIsValid(rs->userid) ? rs->userid : GetUserId();
	PGconn	   *conn = router_connection(rs->serverid, userid);
	char	   *sql = psprintf("START TRANSACTION ISOLATION LEVEL %s; %s; COMMIT", isolation(), rs->sql);
	PGresult   *errres;
	PGresult   *res;
	bool		broken;

	res = run_query(conn, sql, 1, &errres, &broken);
	if (broken && rs->kind == ROUTE_SELECT)
	{
		/* A read is safe to send again, on a new connection. */
		if (errres)
			PQclear(errres);
		forget_conn(conn);
		conn = router_connection(rs->serverid, userid);
		res = run_query(conn, sql, 1, &errres, &broken);
	}
	if (broken)
	{
		char	   *msg = pchomp(PQerrorMessage(conn));

		forget_conn(conn);
		/* The server's own account (e.g. 57P01, shut down) when it gave one. */
		if (errres)
			remote_error(errres, NULL, rs->sql);
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not receive data from server: %s", msg),
				 errcontext("remote SQL command: %s", rs->sql)));
	}
	if (errres)
	{
		if (res)
			PQclear(res);
		if (PQtransactionStatus(conn) != PQTRANS_IDLE)
		{
			PGresult   *rbres;
			PGresult   *rberr;

			PG_TRY();
			{
				rbres = run_query(conn, "ROLLBACK", 0, &rberr, &broken);
			}
			PG_CATCH();
			{
				PQclear(errres);
				PG_RE_THROW();
			}
			PG_END_TRY();
			if (rbres)
				PQclear(rbres);
			if (rberr)
				PQclear(rberr);
			if (broken || rberr || PQtransactionStatus(conn) != PQTRANS_IDLE)
				forget_conn(conn);
		}
		remote_error(errres, NULL, rs->sql);
	}
	if (res == NULL || (rs->kind == ROUTE_SELECT && PQresultStatus(res) != PGRES_TUPLES_OK) ||
		(rs->kind == ROUTE_MODIFY && PQresultStatus(res) != PGRES_COMMAND_OK))
	{
		if (res)
			PQclear(res);
		forget_conn(conn);
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("unexpected result from the remote server"),
				 errcontext("remote SQL command: %s", rs->sql)));
	}
	if (rs->kind == ROUTE_SELECT)
	{
		/* No column needed (e.g. count(*) over it): postgres_fdw sends SELECT NULL. */
		if (PQnfields(res) != list_length(rs->attrs) && !(rs->attrs == NIL && PQnfields(res) == 1))
		{
			PQclear(res);
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_COLUMN_NUMBER),
					 errmsg("remote query result does not match the foreign table")));
		}
		rs->res = res;
		rs->row = 0;
		/* Freed with the query's memory should the query fail before router_end. */
		rs->free_res.func = router_free_res;
		rs->free_res.arg = rs;
		MemoryContextRegisterResetCallback(estate->es_query_cxt, &rs->free_res);
	}
	else
	{
		estate->es_processed += strtoul(PQcmdTuples(res), NULL, 10);
		PQclear(res);
	}
}

/*
 * can_route says whether the statement of estate runs in one round trip:
 * it is the whole of its transaction as far as anyone can tell — a
 * top-level statement of the simple query protocol (the portal's only
 * statement, no cached plan: the extended protocol may pipeline more
 * statements into the same transaction) outside a transaction block,
 * nothing written before it in the transaction — and its user is a
 * superuser (postgres_fdw's password rules for others are its own).
 */
static bool
can_route(RouterState *rs, EState *estate)
{
	Oid			userid = OidIsValid(rs->userid) ? rs->userid : GetUserId();

	return adb_router && !IsTransactionBlock() && !IsInParallelMode() &&
		GetCurrentCommandId(false) == FirstCommandId &&
		ActivePortal != NULL && ActivePortal->cplan == NULL &&
		(ActivePortal->cursorOptions & CURSOR_OPT_HOLD) == 0 &&
		list_length(ActivePortal->stmts) == 1 &&
		linitial(ActivePortal->stmts) == estate->es_plannedstmt &&
		superuser_arg(userid);
}

static Node *
router_create_state(CustomScan *cscan)
{
	RouterState *rs = (RouterState *) newNode(sizeof(RouterState), T_CustomScanState);

	rs->css.methods = &router_exec_methods;
	rs->kind = intVal(linitial(cscan->custom_private));
	rs->sql = strVal(lsecond(cscan->custom_private));
	rs->serverid = (Oid) intVal(lthird(cscan->custom_private));
	rs->userid = (Oid) intVal(lfourth(cscan->custom_private));
	rs->attrs = (List *) list_nth(cscan->custom_private, 4);
	return (Node *) rs;
}

/*
 * router_begin decides between one round trip and the child plan
 * (postgres_fdw), and sets up the one chosen.
 */
static void
router_begin(CustomScanState *node, EState *estate, int eflags)
{
	RouterState *rs = (RouterState *) node;
	CustomScan *cs = (CustomScan *) node->ss.ps.plan;

	rs->delegate = (eflags & EXEC_FLAG_EXPLAIN_ONLY) != 0 || !can_route(rs, estate);
	if (rs->delegate)
	{
		node->custom_ps = list_make1(ExecInitNode(linitial(cs->custom_plans), estate, eflags));
		return;
	}
	if (rs->kind == ROUTE_SELECT)
	{
		TupleDesc	desc = RelationGetDescr(node->ss.ss_currentRelation);
		int			i;

		rs->infuncs = palloc0(sizeof(FmgrInfo) * desc->natts);
		rs->ioparams = palloc0(sizeof(Oid) * desc->natts);
		for (i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);
			Oid			infunc;

			if (att->attisdropped)
				continue;
			getTypeInputInfo(att->atttypid, &infunc, &rs->ioparams[i]);
			fmgr_info(infunc, &rs->infuncs[i]);
		}
	}
}

/*
 * router_next is the next remote row in the scan slot (the relation's
 * columns, by retrieved attribute), converted as postgres_fdw converts
 * (the type's input function), or an empty slot at the end.
 */
static TupleTableSlot *
router_next(ScanState *ss)
{
	RouterState *rs = (RouterState *) ss;
	TupleTableSlot *slot = ss->ss_ScanTupleSlot;
	TupleDesc	desc = slot->tts_tupleDescriptor;
	ListCell   *lc;
	int			col = 0;

	ExecClearTuple(slot);
	if (rs->res == NULL || rs->row >= PQntuples(rs->res))
		return slot;
	memset(slot->tts_isnull, true, sizeof(bool) * desc->natts);
	memset(slot->tts_values, 0, sizeof(Datum) * desc->natts);
	foreach(lc, rs->attrs)
	{
		int			i = lfirst_int(lc) - 1;
		Form_pg_attribute att = TupleDescAttr(desc, i);
		char	   *v = PQgetisnull(rs->res, rs->row, col) ? NULL : PQgetvalue(rs->res, rs->row, col);

		slot->tts_values[i] = InputFunctionCall(&rs->infuncs[i], v, rs->ioparams[i], att->atttypmod);
		slot->tts_isnull[i] = v == NULL;
		col++;
	}
	rs->row++;
	ExecStoreVirtualTuple(slot);
	/* As postgres_fdw's rows: tableoid is the foreign table's. */
	slot->tts_tableOid = RelationGetRelid(ss->ss_currentRelation);
	return slot;
}

/* router_recheck: no EvalPlanQual on a remote row (no row marks here). */
static bool
router_recheck(ScanState *ss, TupleTableSlot *slot)
{
	return true;
}

static TupleTableSlot *
router_exec(CustomScanState *node)
{
	RouterState *rs = (RouterState *) node;

	if (rs->delegate)
		return ExecProcNode((PlanState *) linitial(node->custom_ps));
	if (!rs->done)
	{
		run_remote(rs, node->ss.ps.state);
		rs->done = true;
	}
	if (rs->kind != ROUTE_SELECT)
		return NULL;
	return ExecScan(&node->ss, router_next, router_recheck);
}

static void
router_end(CustomScanState *node)
{
	RouterState *rs = (RouterState *) node;

	if (node->custom_ps != NIL)
		ExecEndNode((PlanState *) linitial(node->custom_ps));
	if (rs->res)
		PQclear(rs->res);
	rs->res = NULL;
}

static void
router_rescan(CustomScanState *node)
{
	RouterState *rs = (RouterState *) node;

	if (rs->delegate)
		ExecReScan((PlanState *) linitial(node->custom_ps));
	else
		rs->row = 0;
}

/*
 * router_explain shows the remote SQL sent in one round trip (VERBOSE);
 * the child (postgres_fdw's plan) follows, which runs instead when the
 * statement is not routed.
 */
static void
router_explain(CustomScanState *node, List *ancestors, ExplainState *es)
{
	RouterState *rs = (RouterState *) node;

	ExplainPropertyText("Node", GetForeignServer(rs->serverid)->servername, es);
	if (es->verbose)
		ExplainPropertyText("Router SQL", rs->sql, es);
}

/*
 * adb_router_init registers the router's node and its GUC, and chains
 * its planner hook (called last of the parts: it runs first, around the
 * others' hooks).
 */
void
adb_router_init(void)
{
	DefineCustomBoolVariable("adb.router",
							 "Runs single-slot statements through a coordinator in one round trip.",
							 "In autocommit, a statement that reaches one slot of a distributed table "
							 "is sent to its datanode with its transaction's start and commit.",
							 &adb_router, true, PGC_USERSET, 0, NULL, NULL, NULL);
	RegisterCustomScanMethods(&router_scan_methods);
	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, router_inval, (Datum) 0);
	CacheRegisterSyscacheCallback(USERMAPPINGOID, router_inval, (Datum) 0);
	prev_planner_hook = planner_hook;
	planner_hook = router_planner;
}
