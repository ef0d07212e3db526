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
 * original plan as its child. The commonest two (a SELECT by key, a
 * one-row INSERT) are recognised in the parse tree and get the node
 * without the planner (fast_plan: planning a table of 64 foreign
 * partitions cost more than all the rest of the coordinator's work); such
 * a node plans the statement only when it does not route it.
 *
 * At execution, a statement that is its whole transaction (autocommit, a
 * top-level statement of its own — a simple query, or an extended-protocol
 * Execute followed by Sync — nothing written before it in the
 * transaction, a superuser) is sent as one query on a connection of this
 * backend to the slot's datanode (the server's and the user mapping's
 * libpq options, the session set up as postgres_fdw sets up its own), with
 * the remote SQL postgres_fdw would send: bare at READ COMMITTED (the
 * remote session's default), else as
 *
 *     START TRANSACTION ISOLATION LEVEL <client's>; <remote SQL>; COMMIT
 *
 * At READ COMMITTED a fast plan's statement goes as a statement prepared
 * on that connection (exec_prepared): the datanode does not parse and plan
 * it again each time. A one-slot statement in autocommit needs no
 * two-phase commit. Anything else (a transaction block, a function's or a
 * DO block's statement, EXPLAIN, adb.router off) runs postgres_fdw's plan,
 * unchanged.
 */
#include "postgres.h"

#include <poll.h>

#include "access/hash.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "executor/tstoreReceiver.h"
#include "fmgr.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/planner.h"
#include "parser/parse_relation.h"
#include "parser/parsetree.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/portal.h"
#include "utils/tuplestore.h"
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
	/* A fast plan's (fast_plan): */
	Query	   *query;			/* the statement, planned when not routed */
	int			cursorOptions;
	QueryDesc  *nested;			/* that plan running */
	Tuplestorestate *store;		/* its rows */
	TupleTableSlot *mslot;
	bool		later;			/* routed or not: decided at the first row */
	char	   *psql;			/* the remote SQL with parameters $1…, or NULL */
	List	   *params;			/* their values: String, or NULL for NULL */
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
		!adb_fdw_is_postgres_fdw(fs->fs_server))
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
		!adb_fdw_is_postgres_fdw(fs->fs_server))
		return NULL;
	rte = rt_fetch(fs->resultRelation, stmt->rtable);
	if (rte->rtekind != RTE_RELATION || !get_rel_relispartition(rte->relid) || !no_triggers(rte->relid))
		return NULL;
	if (mt->rootRelation > 0 && !no_triggers(rt_fetch(mt->rootRelation, stmt->rtable)->relid))
		return NULL;
	return (Plan *) make_router((Plan *) mt, ROUTE_MODIFY, strVal(linitial(fs->fdw_private)),
								fs->fs_server, rte_userid(rte), NIL);
}

/* const_text is c's text form (its type's output function), or NULL. */
static char *
const_text(Const *c)
{
	Oid			out;
	bool		isvarlena;

	if (c->constisnull)
		return NULL;
	getTypeOutputInfo(c->consttype, &out, &isvarlena);
	return OidOutputFunctionCall(out, c->constvalue);
}

/*
 * const_literal is c as an SQL literal the remote side reads as
 * postgres_fdw's parameters are read (untyped text, in the transmission
 * formats the caller set).
 */
static char *
const_literal(Const *c)
{
	char	   *v = const_text(c);

	return v ? quote_literal_cstr(v) : "NULL";
}

/*
 * remote_relation is the remote name of foreign table rel (ft its
 * options: schema_name, table_name), qualified and quoted, as
 * postgres_fdw names it.
 */
static char *
remote_relation(ForeignTable *ft, Relation rel)
{
	return adb_remote_name_of(ft, get_namespace_name(RelationGetNamespace(rel)), RelationGetRelationName(rel));
}

/*
 * plain_output says whether every constant of tlist has a type whose text
 * form no setting changes (integers, text, numeric, bool, uuid, json):
 * their literals need no transmission modes, whose setting and undoing
 * cost more than the rest of a one-row INSERT's SQL.
 */
static bool
plain_output(List *tlist)
{
	ListCell   *lc;

	foreach(lc, tlist)
	{
		Expr	   *e = ((TargetEntry *) lfirst(lc))->expr;

		if (!IsA(e, Const))
			return false;
		if (((Const *) e)->constisnull)
			continue;
		switch (((Const *) e)->consttype)
		{
			case INT2OID:
			case INT4OID:
			case INT8OID:
			case TEXTOID:
			case VARCHAROID:
			case BPCHAROID:
			case NUMERICOID:
			case BOOLOID:
			case UUIDOID:
			case JSONOID:
			case JSONBOID:
				break;
			default:
				return false;
		}
	}
	return true;
}

/*
 * transmission_modes sets the formats postgres_fdw sends values in
 * (set_transmission_modes: only the settings that differ, since a change
 * of datestyle or intervalstyle is reported to the client at the end of
 * the statement), returning the GUC nest level to undo.
 */
static int
transmission_modes(void)
{
	int			nest = NewGUCNestLevel();

	if (DateStyle != USE_ISO_DATES)
		(void) set_config_option("datestyle", "ISO", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	if (IntervalStyle != INTSTYLE_POSTGRES)
		(void) set_config_option("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	if (extra_float_digits < 3)
		(void) set_config_option("extra_float_digits", "3", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("search_path", "pg_catalog", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nest;
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
	StringInfoData cols,
				vals;
	int			i;
	int			nest;
	bool		ok = true;

	initStringInfo(&cols);
	initStringInfo(&vals);

	nest = plain_output(tlist) ? -1 : transmission_modes();
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
	if (nest >= 0)
		AtEOXact_GUC(true, nest);
	if (!ok || cols.len == 0)
		return NULL;
	return psprintf("INSERT INTO %s(%s) VALUES (%s)", remote_relation(ft, part), cols.data, vals.data);
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
		!adb_fdw_is_postgres_fdw(GetForeignServerIdByRelId(RelationGetRelid(part))))
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

/* ---------- planning without the planner ---------- */

/*
 * The router's statements are planned by standard_planner first, which
 * for a one-row statement on a table of 64 foreign partitions costs more
 * than the rest of the coordinator's work (the partitions expanded, each
 * one's postgres_fdw estimates, the remote SQL deparsed). fast_plan
 * recognises the two statements that matter most — a SELECT of one table
 * whose distribution column equals a constant, and a one-row INSERT …
 * VALUES of constants — in the parse tree, finds their slot as partition
 * pruning or tuple routing would, and builds the router's node directly,
 * with no child plan. Such a node that cannot route at execution (in a
 * transaction block, EXPLAIN ANALYZE, a user other than a superuser) plans
 * the statement then, as before, and runs that plan (run_nested).
 */

/*
 * RemotePart is what the fast path needs of one foreign partition: its
 * server, whether it may be routed to (postgres_fdw, no triggers, no row
 * security), its remote name and its columns' remote names by the
 * parent's attribute numbers. Kept across statements; a relcache or
 * foreign server/table invalidation rebuilds it.
 */
typedef struct RemotePart
{
	Oid			relid;			/* hash key: the partition */
	bool		valid;
	MemoryContext cxt;			/* what follows */
	Oid			parentid;
	Oid			serverid;
	bool		routable;		/* postgres_fdw foreign table, no triggers, no row security */
	bool		generated;		/* has a generated column */
	char	   *relname;		/* local name */
	char	   *relsql;			/* remote name, qualified and quoted */
	int			natts;			/* the parent's */
	char	  **colsql;			/* by parent attnum - 1: remote column, quoted (NULL: dropped) */
} RemotePart;

static HTAB *remote_parts = NULL;
static uint64 remote_parts_inval = 0;

/* parts_inval: a relation (or every one) changed, so its entry is rebuilt. */
static void
parts_inval(Datum arg, Oid relid)
{
	RemotePart *rp;

	remote_parts_inval++;
	if (remote_parts == NULL)
		return;
	if (OidIsValid(relid))
	{
		rp = hash_search(remote_parts, &relid, HASH_FIND, NULL);
		if (rp)
			rp->valid = false;
	}
	else
	{
		HASH_SEQ_STATUS seq;

		hash_seq_init(&seq, remote_parts);
		while ((rp = hash_seq_search(&seq)) != NULL)
			rp->valid = false;
	}
}

/* parts_syscache_inval: a foreign server or table changed. */
static void
parts_syscache_inval(Datum arg, int cacheid, uint32 hashvalue)
{
	parts_inval(arg, InvalidOid);
}

/*
 * build_part fills rp for partition part of parent (both locked by the
 * caller).
 */
static void
build_part(RemotePart *rp, Relation parent, Oid partid)
{
	Relation	part = table_open(partid, NoLock);
	TupleDesc	pdesc = RelationGetDescr(parent);
	TupleDesc	desc = RelationGetDescr(part);
	MemoryContext old = MemoryContextSwitchTo(rp->cxt);
	ForeignTable *ft;
	ListCell   *lc;
	int			i;

	rp->parentid = RelationGetRelid(parent);
	rp->relname = pstrdup(RelationGetRelationName(part));
	rp->natts = pdesc->natts;
	rp->colsql = palloc0(sizeof(char *) * pdesc->natts);
	rp->generated = false;
	rp->routable = false;
	rp->relsql = NULL;
	if (part->rd_rel->relkind != RELKIND_FOREIGN_TABLE)
		goto done;
	ft = GetForeignTable(partid);
	rp->serverid = ft->serverid;
	if (!adb_fdw_is_postgres_fdw(ft->serverid))
		goto done;
	rp->routable = part->trigdesc == NULL && !part->rd_rel->relrowsecurity;
	rp->relsql = remote_relation(ft, part);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *colname = NameStr(att->attname);
		int			j;

		if (att->attisdropped)
			continue;
		if (att->attgenerated)
			rp->generated = true;
		for (j = 0; j < pdesc->natts; j++)
			if (!TupleDescAttr(pdesc, j)->attisdropped &&
				strcmp(NameStr(TupleDescAttr(pdesc, j)->attname), colname) == 0)
				break;
		if (j == pdesc->natts || TupleDescAttr(pdesc, j)->atttypid != att->atttypid)
		{
			/* Not a partition's columns: leave it to the planner. */
			rp->routable = false;
			goto done;
		}
		foreach(lc, GetForeignColumnOptions(partid, att->attnum))
		{
			DefElem    *d = (DefElem *) lfirst(lc);

			if (strcmp(d->defname, "column_name") == 0)
				colname = defGetString(d);
		}
		rp->colsql[j] = pstrdup(quote_identifier(colname));
	}
	for (i = 0; i < pdesc->natts; i++)
		if (!TupleDescAttr(pdesc, i)->attisdropped && rp->colsql[i] == NULL)
			rp->routable = false;
done:
	MemoryContextSwitchTo(old);
	table_close(part, NoLock);
}

/*
 * remote_part is the entry of partition partid of parent, built when
 * missing or invalidated (the partition is locked: its invalidations are
 * in).
 */
static RemotePart *
remote_part(Relation parent, Oid partid)
{
	RemotePart *rp;
	bool		found;

	if (remote_parts == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RemotePart);
		ctl.hcxt = TopMemoryContext;
		remote_parts = hash_create("adb router partitions", 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	rp = hash_search(remote_parts, &partid, HASH_ENTER, &found);
	if (!found)
	{
		rp->valid = false;
		rp->cxt = AllocSetContextCreate(TopMemoryContext, "adb router partition", ALLOCSET_SMALL_SIZES);
	}
	while (!rp->valid || rp->parentid != RelationGetRelid(parent))
	{
		uint64		seen = remote_parts_inval;

		MemoryContextReset(rp->cxt);
		rp->valid = false;
		build_part(rp, parent, partid);
		/* An invalidation while it was read: read it again. */
		rp->valid = seen == remote_parts_inval;
	}
	return rp;
}

/*
 * key_type_ok says whether a constant of type t may go to the datanode as
 * a quoted literal with its type named, in the same text as it would with
 * postgres_fdw's transmission modes (no setting changes its text form).
 */
static bool
key_type_ok(Oid t)
{
	switch (t)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case NUMERICOID:
		case UUIDOID:
		case TEXTOID:
			return true;
		default:
			return false;
	}
}

/*
 * slot_partition is the partition of parent (hash-partitioned on one
 * column, key) that value of type valtype hashes to, using the key's
 * operator family's hash function for valtype (as partition pruning
 * does), or InvalidOid.
 */
static Oid
slot_partition(Relation parent, PartitionKey key, Datum value, Oid valtype)
{
	PartitionDesc pd = RelationGetPartitionDesc(parent, true);
	FmgrInfo	fi;
	FmgrInfo   *fp = &key->partsupfunc[0];
	bool		isnull = false;
	uint64		hash;
	int			idx;

	if (pd->nparts == 0 || pd->boundinfo == NULL || pd->boundinfo->nindexes <= 0)
		return InvalidOid;
	if (valtype != key->parttypid[0])
	{
		Oid			proc = get_opfamily_proc(key->partopfamily[0], valtype, valtype, HASHEXTENDED_PROC);

		if (!OidIsValid(proc))
			return InvalidOid;
		fmgr_info(proc, &fi);
		fp = &fi;
	}
	hash = compute_partition_hash_value(1, fp, key->partcollation, &value, &isnull);
	idx = pd->boundinfo->indexes[hash % pd->boundinfo->nindexes];
	if (idx < 0 || !pd->is_leaf[idx])
		return InvalidOid;
	return pd->oids[idx];
}

/*
 * key_qual: the index in quals of "distribution column = constant" (the
 * column on the left, an equality operator of the key's hash operator
 * family, a non-null constant of a type key_type_ok accepts), or -1.
 */
static int
key_qual(List *quals, PartitionKey key)
{
	ListCell   *lc;

	foreach(lc, quals)
	{
		OpExpr	   *op = (OpExpr *) lfirst(lc);
		Var		   *v;
		Const	   *c;

		if (!IsA(op, OpExpr) || list_length(op->args) != 2)
			continue;
		v = (Var *) linitial(op->args);
		c = (Const *) lsecond(op->args);
		if (!IsA(v, Var) || v->varno != 1 || v->varlevelsup != 0 || v->varattno != key->partattrs[0] ||
			v->vartype != key->partopcintype[0] || !IsA(c, Const) || c->constisnull || !key_type_ok(c->consttype) ||
			op->opno >= FirstGenbkiObjectId)
			continue;
		if (op->opno != get_opfamily_member(key->partopfamily[0], key->partopcintype[0], c->consttype, HTEqualStrategyNumber))
			continue;
		if (OidIsValid(op->inputcollid) && op->inputcollid != key->partcollation[0])
			continue;
		return foreach_current_index(lc);
	}
	return -1;
}

/*
 * part_rte is the range table entry of the partition a fast plan goes to:
 * no permission of its own to check (as an inheritance child's), but
 * locked with the plan as the planner's plans lock it.
 */
static RangeTblEntry *
part_rte(RemotePart *rp, Oid partid, int lockmode)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	rte->rtekind = RTE_RELATION;
	rte->relid = partid;
	rte->relkind = RELKIND_FOREIGN_TABLE;
	rte->rellockmode = lockmode;
	rte->eref = makeAlias(rp->relname, NIL);
	return rte;
}

/*
 * fast_stmt is the PlannedStmt around the router's node cs for parse,
 * with the partition's entry in the range table and among the relations
 * whose change replans.
 */
static PlannedStmt *
fast_stmt(Query *parse, CustomScan *cs, RangeTblEntry *partrte, List *invalItems)
{
	PlannedStmt *ps = makeNode(PlannedStmt);

	ps->commandType = parse->commandType;
	ps->queryId = parse->queryId;
	ps->canSetTag = parse->canSetTag;
	ps->planTree = (Plan *) cs;
	ps->rtable = list_make2(linitial(parse->rtable), partrte);
	ps->relationOids = list_make2_oid(((RangeTblEntry *) linitial(parse->rtable))->relid, partrte->relid);
	ps->invalItems = invalItems;
	ps->stmt_location = parse->stmt_location;
	ps->stmt_len = parse->stmt_len;
	return ps;
}

/*
 * fast_node is the router's node for a fast plan: make_router's fields,
 * then the statement's parse tree and cursor options (what run_nested
 * plans when the statement is not routed), and the remote SQL again with
 * its constants as parameters (psql, params: exec_prepared).
 */
static CustomScan *
fast_node(Query *parse, int cursorOptions, int kind, const char *sql, Oid serverid, Oid userid, List *attrs,
		  const char *psql, List *params)
{
	CustomScan *cs = makeNode(CustomScan);

	cs->scan.plan.startup_cost = 0;
	cs->scan.plan.total_cost = 1;
	cs->scan.plan.plan_rows = 1;
	cs->custom_private = list_make5(makeInteger(kind), makeString(pstrdup(sql)),
									makeInteger((int) serverid), makeInteger((int) userid), attrs);
	/* The plan's own copy of the statement (the plan cache plans a copy). */
	cs->custom_private = lappend(cs->custom_private, parse);
	cs->custom_private = lappend(cs->custom_private, makeInteger(cursorOptions));
	cs->custom_private = lappend(cs->custom_private, makeString(pstrdup(psql)));
	cs->custom_private = lappend(cs->custom_private, params);
	cs->methods = &router_scan_methods;
	return cs;
}

/*
 * fast_select: SELECT <expressions of columns> FROM <distributed table>
 * WHERE <distribution column> = <constant> [AND <other conditions>]. The
 * key condition goes to the datanode (with the columns the expressions
 * and the other conditions use); the rest is evaluated here, on the rows
 * that come back, as postgres_fdw evaluates what it does not push down.
 */
static PlannedStmt *
fast_select(Query *parse, int cursorOptions, PlannerInfo *root, Relation parent, PartitionKey key)
{
	RangeTblEntry *rte = linitial(parse->rtable);
	List	   *quals;
	List	   *tlist = NIL;
	Bitmapset  *used = NULL;
	OpExpr	   *op;
	Const	   *c;
	Oid			partid;
	RemotePart *rp;
	StringInfoData sql;
	char	   *psql;
	List	   *attrs = NIL;
	ListCell   *lc;
	CustomScan *cs;
	int			k;
	int			i;

	if (list_length(parse->jointree->fromlist) != 1 || !IsA(linitial(parse->jointree->fromlist), RangeTblRef) ||
		((RangeTblRef *) linitial(parse->jointree->fromlist))->rtindex != 1 || !rte->inh ||
		parse->resultRelation != 0 || parse->jointree->quals == NULL)
		return NULL;
	quals = make_ands_implicit((Expr *) eval_const_expressions(root, parse->jointree->quals));
	k = key_qual(quals, key);
	if (k < 0)
		return NULL;
	op = list_nth(quals, k);
	c = lsecond(op->args);
	quals = list_delete_nth_cell(list_copy(quals), k);
	foreach(lc, parse->targetList)
	{
		TargetEntry *tle = flatCopyTargetEntry((TargetEntry *) lfirst(lc));

		if (tle->resjunk)
			return NULL;
		tle->expr = (Expr *) eval_const_expressions(root, (Node *) tle->expr);
		tlist = lappend(tlist, tle);
	}
	pull_varattnos((Node *) tlist, 1, &used);
	pull_varattnos((Node *) quals, 1, &used);
	/* System columns and whole rows are postgres_fdw's. */
	for (i = bms_next_member(used, -1); i >= 0; i = bms_next_member(used, i))
		if (i + FirstLowInvalidHeapAttributeNumber <= 0)
			return NULL;
	partid = slot_partition(parent, key, c->constvalue, c->consttype);
	if (!OidIsValid(partid))
		return NULL;
	LockRelationOid(partid, AccessShareLock);
	rp = remote_part(parent, partid);
	if (!rp->routable)
		return NULL;
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (i = bms_next_member(used, -1); i >= 0; i = bms_next_member(used, i))
	{
		int			attnum = i + FirstLowInvalidHeapAttributeNumber;

		appendStringInfo(&sql, "%s%s", attrs ? ", " : "", rp->colsql[attnum - 1]);
		attrs = lappend_int(attrs, attnum);
	}
	if (attrs == NIL)
		appendStringInfoString(&sql, "NULL");
	psql = psprintf("%s FROM %s WHERE ((%s = $1::%s))", sql.data, rp->relsql, rp->colsql[key->partattrs[0] - 1],
					format_type_be(c->consttype));
	appendStringInfo(&sql, " FROM %s WHERE ((%s = %s::%s))", rp->relsql, rp->colsql[key->partattrs[0] - 1],
					 const_literal(c), format_type_be(c->consttype));
	fix_opfuncids((Node *) tlist);
	fix_opfuncids((Node *) quals);
	cs = fast_node(parse, cursorOptions, ROUTE_SELECT, sql.data, rp->serverid, rte_userid(rte), attrs,
				   psql, list_make1(makeString(const_text(c))));
	cs->scan.plan.targetlist = tlist;
	cs->scan.plan.qual = quals;
	cs->scan.scanrelid = 1;
	cs->custom_relids = bms_make_singleton(1);
	return fast_stmt(parse, cs, part_rte(rp, partid, AccessShareLock), root->glob->invalItems);
}

/*
 * fast_insert: INSERT INTO <distributed table> [(columns)] VALUES
 * (<constants>), with no RETURNING or ON CONFLICT, into a table and
 * partition without triggers: the partition is the one tuple routing
 * would choose, the remote INSERT names every column as postgres_fdw's
 * (a column not given is NULL; a default is in the parse tree already, a
 * serial's nextval() is no constant and goes to the planner).
 */
static PlannedStmt *
fast_insert(Query *parse, int cursorOptions, PlannerInfo *root, Relation parent, PartitionKey key)
{
	RangeTblEntry *rte = linitial(parse->rtable);
	TupleDesc	desc = RelationGetDescr(parent);
	List	   *tlist = NIL;
	TargetEntry *ktle;
	Const	   *kc;
	Oid			partid;
	RemotePart *rp;
	StringInfoData cols,
				vals,
				pvals;
	List	   *params = NIL;
	CustomScan *cs;
	int			nest;
	int			i;

	if (parse->resultRelation != 1 || parse->jointree->fromlist != NIL || parse->jointree->quals != NULL ||
		parent->trigdesc != NULL)
		return NULL;
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		TargetEntry *tle = get_tle_by_resno(parse->targetList, att->attnum);
		Node	   *e;

		if (att->attisdropped)
			continue;
		if (tle != NULL)
			e = eval_const_expressions(root, (Node *) tle->expr);
		else if (get_typtype(att->atttypid) == TYPTYPE_DOMAIN)
			return NULL;		/* a NULL checked against the domain: the planner's */
		else
			e = (Node *) makeNullConst(att->atttypid, att->atttypmod, att->attcollation);
		if (!IsA(e, Const) || ((Const *) e)->consttype != att->atttypid)
			return NULL;
		tlist = lappend(tlist, makeTargetEntry((Expr *) e, att->attnum, NULL, false));
	}
	ktle = get_tle_by_resno(tlist, key->partattrs[0]);
	if (ktle == NULL)
		return NULL;
	kc = (Const *) ktle->expr;
	if (kc->consttype != key->parttypid[0])
		return NULL;
	partid = slot_partition(parent, key, kc->constvalue, kc->consttype);
	if (!OidIsValid(partid))
		return NULL;
	/* Tuple routing would lock it for the INSERT. */
	LockRelationOid(partid, RowExclusiveLock);
	rp = remote_part(parent, partid);
	if (!rp->routable || rp->generated)
		return NULL;
	initStringInfo(&cols);
	initStringInfo(&vals);
	initStringInfo(&pvals);
	nest = plain_output(tlist) ? -1 : transmission_modes();
	for (i = 0; i < list_length(tlist); i++)
	{
		TargetEntry *tle = list_nth(tlist, i);
		char	   *v = const_text((Const *) tle->expr);

		appendStringInfo(&cols, "%s%s", i ? ", " : "", rp->colsql[tle->resno - 1]);
		appendStringInfo(&vals, "%s%s", i ? ", " : "", v ? quote_literal_cstr(v) : "NULL");
		appendStringInfo(&pvals, "%s$%d", i ? ", " : "", i + 1);
		params = lappend(params, v ? makeString(v) : NULL);
	}
	if (nest >= 0)
		AtEOXact_GUC(true, nest);
	if (cols.len == 0)
		return NULL;
	cs = fast_node(parse, cursorOptions, ROUTE_MODIFY,
				   psprintf("INSERT INTO %s(%s) VALUES (%s)", rp->relsql, cols.data, vals.data),
				   rp->serverid, rte_userid(rte), NIL,
				   psprintf("INSERT INTO %s(%s) VALUES (%s)", rp->relsql, cols.data, pvals.data), params);
	return fast_stmt(parse, cs, part_rte(rp, partid, RowExclusiveLock), root->glob->invalItems);
}

/*
 * fast_plan is the router's plan of parse built without the planner, or
 * NULL when the statement is not one fast_select or fast_insert knows
 * (the planner then plans it, as before). Only where the statement is
 * likely to be routed: the top level of an autocommit statement, with
 * nothing before it in the transaction.
 */
static PlannedStmt *
fast_plan(Query *parse, int cursorOptions, ParamListInfo boundParams)
{
	RangeTblEntry *rte;
	Relation	parent;
	PartitionKey key;
	PlannerGlobal *glob;
	PlannerInfo *root;
	PlannedStmt *out = NULL;

	if ((parse->commandType != CMD_SELECT && parse->commandType != CMD_INSERT) || parse->utilityStmt != NULL ||
		!parse->canSetTag || parse->hasAggs || parse->hasWindowFuncs || parse->hasTargetSRFs ||
		parse->hasSubLinks || parse->hasDistinctOn || parse->hasRecursive || parse->hasModifyingCTE ||
		parse->hasForUpdate || parse->hasRowSecurity || parse->cteList != NIL || parse->rowMarks != NIL ||
		parse->groupClause != NIL || parse->groupingSets != NIL || parse->havingQual != NULL ||
		parse->windowClause != NIL || parse->distinctClause != NIL || parse->sortClause != NIL ||
		parse->limitOffset != NULL || parse->limitCount != NULL || parse->setOperations != NULL ||
		parse->returningList != NIL || parse->onConflict != NULL || parse->withCheckOptions != NIL ||
		parse->constraintDeps != NIL || list_length(parse->rtable) != 1 ||
		(cursorOptions & (CURSOR_OPT_SCROLL | CURSOR_OPT_HOLD)))
		return NULL;
	if (ActivePortal != NULL || IsTransactionBlock() || IsInParallelMode() ||
		GetCurrentCommandId(false) != FirstCommandId)
		return NULL;
	rte = linitial(parse->rtable);
	if (rte->rtekind != RTE_RELATION || rte->relkind != RELKIND_PARTITIONED_TABLE ||
		rte->securityQuals != NIL || rte->tablesample != NULL)
		return NULL;
	/* Locked by the parser (or the plan cache). */
	parent = table_open(rte->relid, NoLock);
	key = RelationGetPartitionKey(parent);
	if (key == NULL || key->strategy != PARTITION_STRATEGY_HASH || key->partnatts != 1 ||
		key->partattrs[0] <= 0 || parent->rd_rel->relrowsecurity || parent->rd_rules != NULL)
	{
		table_close(parent, NoLock);
		return NULL;
	}
	glob = makeNode(PlannerGlobal);
	glob->boundParams = boundParams;
	root = makeNode(PlannerInfo);
	root->glob = glob;
	root->parse = parse;
	root->query_level = 1;
	if (parse->commandType == CMD_SELECT)
		out = fast_select(parse, cursorOptions, root, parent, key);
	else
		out = fast_insert(parse, cursorOptions, root, parent, key);
	table_close(parent, NoLock);
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

	if (adb_router && (stmt = fast_plan(parse, cursorOptions, boundParams)) != NULL)
		return stmt;
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
	HTAB	   *stmts;			/* statements prepared on conn (RemoteStmt) */
	MemoryContext stmt_cxt;		/* their SQL */
	int			next_stmt;
} RouterConn;

/*
 * RemoteStmt is a statement prepared on a router connection (named
 * adb_r<id>), by the hash of its SQL.
 */
typedef struct RemoteStmt
{
	uint32		hash;			/* hash key */
	char	   *sql;
	int			id;
} RemoteStmt;

/* At most this many statements are prepared on one connection. */
#define MAX_REMOTE_STMTS 1024

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

/*
 * Wait sets of the cached connections: WaitLatchOrSocket makes and frees
 * one (an epoll instance, three system calls) at each wait, a tenth of a
 * routed statement's time on the coordinator. A connection's set lives as
 * long as the connection (its socket's number may be reused after).
 */
#define MAX_WAIT_SETS 16
static struct
{
	PGconn	   *conn;
	WaitEventSet *wes;
}			wait_sets[MAX_WAIT_SETS];

/* conn_wait_set is conn's wait set (latch, postmaster, socket), or NULL. */
static WaitEventSet *
conn_wait_set(PGconn *conn)
{
	int			free = -1;
	int			i;
	WaitEventSet *wes;

	for (i = 0; i < MAX_WAIT_SETS; i++)
	{
		if (wait_sets[i].conn == conn)
			return wait_sets[i].wes;
		if (wait_sets[i].conn == NULL && free < 0)
			free = i;
	}
	if (free < 0 || PQsocket(conn) == PGINVALID_SOCKET)
		return NULL;
	wes = CreateWaitEventSet(TopMemoryContext, 3);
	AddWaitEventToSet(wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(wes, WL_SOCKET_READABLE, PQsocket(conn), NULL, NULL);
	wait_sets[free].conn = conn;
	wait_sets[free].wes = wes;
	return wes;
}

/* drop_conn closes rc's connection (and frees its wait set first). */
static void
drop_conn(RouterConn *rc)
{
	int			i;

	for (i = 0; rc->conn && i < MAX_WAIT_SETS; i++)
		if (wait_sets[i].conn == rc->conn)
		{
			FreeWaitEventSet(wait_sets[i].wes);
			wait_sets[i].conn = NULL;
			wait_sets[i].wes = NULL;
		}
	if (rc->conn)
		PQfinish(rc->conn);
	rc->conn = NULL;
	/* Its prepared statements went with it. */
	if (rc->stmts)
		hash_destroy(rc->stmts);
	rc->stmts = NULL;
	if (rc->stmt_cxt)
		MemoryContextDelete(rc->stmt_cxt);
	rc->stmt_cxt = NULL;
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
router_connection(Oid serverid, Oid userid, RouterConn **rcp)
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
		rc->stmts = NULL;
		rc->stmt_cxt = NULL;
		rc->next_stmt = 0;
	}
	*rcp = rc;
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
					 "SET intervalstyle = postgres; SET extra_float_digits = 3; "
					 "SET default_transaction_isolation = 'read committed'");
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
	if (sql != NULL && !PQsendQuery(conn, sql))
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
				WaitEventSet *wes = conn_wait_set(conn);
				int			rc = 0;

				if (wes)
				{
					WaitEvent	ev;

					if (WaitEventSetWait(wes, -1L, &ev, 1, PG_WAIT_EXTENSION) == 1)
						rc = ev.events;
				}
				else
					rc = WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH,
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

/*
 * collect waits for the results of what was sent on conn, as run_query
 * does.
 */
static PGresult *
collect(PGconn *conn, int want, PGresult **errres, bool *broken)
{
	return run_query(conn, NULL, want, errres, broken);
}

/*
 * exec_prepared runs a fast plan's statement on rc's connection as a
 * statement prepared there (rs->psql, with rs->params): the datanode then
 * parses, analyses and plans it once per connection, not at every
 * statement (more than a third of its work on a row by key). It is
 * prepared at its first use (one more round trip, once); a statement
 * whose prepared plan no longer fits the table ("cached plan must not
 * change result type", before anything ran) is sent once more as plain
 * SQL, and prepared again next time.
 */
static PGresult *
exec_prepared(RouterState *rs, RouterConn *rc, PGresult **errres, bool *broken)
{
	PGconn	   *conn = rc->conn;
	uint32		h = hash_bytes((const unsigned char *) rs->psql, strlen(rs->psql));
	RemoteStmt *st;
	bool		found;
	char		name[32];
	const char **values;
	PGresult   *res;
	ListCell   *lc;
	int			n = 0;

	if (rc->stmts == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(RemoteStmt);
		ctl.hcxt = TopMemoryContext;
		rc->stmts = hash_create("adb router statements", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		rc->stmt_cxt = AllocSetContextCreate(TopMemoryContext, "adb router statements", ALLOCSET_DEFAULT_SIZES);
	}
	st = hash_search(rc->stmts, &h, HASH_FIND, NULL);
	if (st != NULL && strcmp(st->sql, rs->psql) != 0)
		return run_query(conn, rs->sql, 0, errres, broken);	/* another statement's hash */
	if (st == NULL)
	{
		if (hash_get_num_entries(rc->stmts) >= MAX_REMOTE_STMTS)
			return run_query(conn, rs->sql, 0, errres, broken);
		snprintf(name, sizeof(name), "adb_r%d", ++rc->next_stmt);
		if (!PQsendPrepare(conn, name, rs->psql, 0, NULL))
		{
			*errres = NULL;
			*broken = true;
			return NULL;
		}
		res = collect(conn, 0, errres, broken);
		if (*broken || *errres)
		{
			if (res)
				PQclear(res);
			return NULL;
		}
		PQclear(res);
		st = hash_search(rc->stmts, &h, HASH_ENTER, &found);
		st->sql = MemoryContextStrdup(rc->stmt_cxt, rs->psql);
		st->id = rc->next_stmt;
	}
	snprintf(name, sizeof(name), "adb_r%d", st->id);
	values = palloc(sizeof(char *) * (list_length(rs->params) + 1));
	foreach(lc, rs->params)
		values[n++] = lfirst(lc) ? strVal(lfirst(lc)) : NULL;
	if (!PQsendQueryPrepared(conn, name, n, values, NULL, NULL, 0))
	{
		*errres = NULL;
		*broken = true;
		return NULL;
	}
	res = collect(conn, 0, errres, broken);
	if (*errres && !*broken && PQtransactionStatus(conn) == PQTRANS_IDLE)
	{
		char	   *state = PQresultErrorField(*errres, PG_DIAG_SQLSTATE);

		if (state && strcmp(state, "0A000") == 0)
		{
			PQclear(*errres);
			if (res)
				PQclear(res);
			(void) hash_search(rc->stmts, &h, HASH_REMOVE, NULL);
			return run_query(conn, rs->sql, 0, errres, broken);
		}
	}
	return res;
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
	RouterConn *rc;
	PGconn	   *conn = router_connection(rs->serverid, userid, &rc);
	char	   *sql;
	int			want;
	PGresult   *errres;
	PGresult   *res;
	bool		broken;

	/*
	 * The session's default level is READ COMMITTED (router_connection): a
	 * client at that level needs no transaction block around the statement,
	 * and the datanode parses and runs two statements fewer.
	 */
	if (XactIsoLevel == XACT_READ_COMMITTED)
	{
		sql = rs->sql;
		want = 0;
	}
	else
	{
		sql = psprintf("START TRANSACTION ISOLATION LEVEL %s; %s; COMMIT", isolation(), rs->sql);
		want = 1;
	}
	if (want == 0 && rs->psql != NULL)
		res = exec_prepared(rs, rc, &errres, &broken);
	else
		res = run_query(conn, sql, want, &errres, &broken);
	if (broken && rs->kind == ROUTE_SELECT)
	{
		/* A read is safe to send again, on a new connection. */
		if (errres)
			PQclear(errres);
		forget_conn(conn);
		conn = router_connection(rs->serverid, userid, &rc);
		if (want == 0 && rs->psql != NULL)
			res = exec_prepared(rs, rc, &errres, &broken);
		else
			res = run_query(conn, sql, want, &errres, &broken);
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
 * sync_follows says whether the client's next message, already received,
 * is the extended query protocol's Sync: the statement being executed is
 * then the last of its implicit transaction, which ends right after it
 * (drivers send Bind, Execute and Sync together). Nothing is read here
 * that is not in the buffer already.
 */
extern bool pq_buffer_has_data(void);	/* libpq/libpq.h, which needs gssapi's headers */
extern int	pq_peekbyte(void);

static bool
sync_follows(void)
{
	return whereToSendOutput == DestRemote && pq_buffer_has_data() && pq_peekbyte() == 'S';
}

/*
 * may_route says whether userid's statements may go on the router's own
 * connection to serverid, made with the coordinator's password file:
 * a superuser's, and anyone's when the user mapping needs no password of
 * its own (password_required 'false', as adbmgr's PUBLIC mappings have);
 * postgres_fdw's rule for its connections, whose checks the router's
 * connection would skip. The statement's privileges were checked by the
 * executor already.
 */
static bool
may_route(Oid userid, Oid serverid)
{
	ListCell   *lc;

	if (superuser_arg(userid))
		return true;
	foreach(lc, GetUserMapping(userid, serverid)->options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, "password_required") == 0)
			return !defGetBoolean(d);
	}
	return false;
}

/*
 * can_route says whether the statement of estate runs in one round trip:
 * it is the whole of its transaction as far as anyone can tell — a
 * top-level statement (the portal's only one) outside a transaction
 * block, nothing written before it in the transaction; with the simple
 * query protocol, a query string of its own; with the extended protocol
 * (a cached plan), followed by Sync, at READ COMMITTED (a statement read
 * before it in the same implicit transaction had its own snapshot anyway)
 * — and its user may use the router's connection (may_route).
 */
static bool
can_route(RouterState *rs, EState *estate, bool *later)
{
	Oid			userid = OidIsValid(rs->userid) ? rs->userid : GetUserId();

	*later = false;
	if (!adb_router || IsTransactionBlock() || IsInParallelMode() ||
		GetCurrentCommandId(false) != FirstCommandId ||
		ActivePortal == NULL ||
		(ActivePortal->cursorOptions & CURSOR_OPT_HOLD) != 0 ||
		list_length(ActivePortal->stmts) != 1 ||
		linitial(ActivePortal->stmts) != estate->es_plannedstmt ||
		!may_route(userid, rs->serverid))
		return false;
	if (ActivePortal->cplan == NULL)
		return true;
	if (XactIsoLevel != XACT_READ_COMMITTED || TransactionIdIsValid(GetTopTransactionIdIfAny()))
		return false;
	/*
	 * A SELECT's portal is started at Bind, before its Describe and
	 * Execute: a fast plan decides at its first row (route_or_nest).
	 */
	if (ActivePortal->status == PORTAL_DEFINED && rs->query != NULL && rs->kind == ROUTE_SELECT)
	{
		*later = true;
		return false;
	}
	return sync_follows();
}

/*
 * start_nested plans a fast plan's statement that is not routed, as the
 * planner would have planned it without the router (postgres_fdw's plan,
 * in this transaction), and starts that plan: its rows go to a tuplestore
 * the router's node returns them from.
 */
static void
start_nested(RouterState *rs, EState *estate)
{
	Query	   *q = copyObject(rs->query);
	PlannedStmt *ps;
	DestReceiver *dest = None_Receiver;

	if (prev_planner_hook)
		ps = prev_planner_hook(q, estate->es_sourceText, rs->cursorOptions, estate->es_param_list_info);
	else
		ps = standard_planner(q, estate->es_sourceText, rs->cursorOptions, estate->es_param_list_info);
	if (rs->kind == ROUTE_SELECT)
	{
		rs->store = tuplestore_begin_heap(false, false, work_mem);
		dest = CreateDestReceiver(DestTuplestore);
		SetTuplestoreDestReceiverParams(dest, rs->store, CurrentMemoryContext, false, NULL, NULL);
		rs->mslot = ExecAllocTableSlot(&estate->es_tupleTable, ExecGetResultType(&rs->css.ss.ps),
									   &TTSOpsMinimalTuple);
	}
	rs->nested = CreateQueryDesc(ps, estate->es_sourceText, GetActiveSnapshot(), InvalidSnapshot, dest,
								 estate->es_param_list_info, estate->es_queryEnv, 0);
	ExecutorStart(rs->nested, 0);
}

/*
 * run_nested runs start_nested's plan on the first call (a command's row
 * count is the statement's), then returns its rows one by one.
 */
static TupleTableSlot *
run_nested(RouterState *rs)
{
	if (rs->nested == NULL)
		return NULL;
	if (!rs->done)
	{
		ExecutorRun(rs->nested, ForwardScanDirection, 0, true);
		ExecutorFinish(rs->nested);
		rs->done = true;
		if (rs->kind == ROUTE_MODIFY)
			rs->css.ss.ps.state->es_processed += rs->nested->estate->es_processed;
	}
	if (rs->kind != ROUTE_SELECT || !tuplestore_gettupleslot(rs->store, true, false, rs->mslot))
		return NULL;
	return rs->mslot;
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
	if (list_length(cscan->custom_private) > 5)
	{
		rs->query = (Query *) list_nth(cscan->custom_private, 5);
		rs->cursorOptions = intVal(list_nth(cscan->custom_private, 6));
		rs->psql = strVal(list_nth(cscan->custom_private, 7));
		rs->params = (List *) list_nth(cscan->custom_private, 8);
	}
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

	bool		later = false;

	rs->delegate = (eflags & EXEC_FLAG_EXPLAIN_ONLY) != 0 || !can_route(rs, estate, &later);
	if (later)
	{
		/* route_or_nest decides; set up for the routed case meanwhile. */
		rs->delegate = false;
		rs->later = true;
	}
	else if (rs->delegate && rs->query != NULL)
	{
		if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0)
			start_nested(rs, estate);
		return;
	}
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

/*
 * route_or_nest decides at the first row of a fast plan's SELECT started
 * at Bind: routed when the client's Sync follows this Execute, else the
 * statement's plan runs in the transaction (start_nested).
 */
static void
route_or_nest(RouterState *rs)
{
	EState	   *estate = rs->css.ss.ps.state;

	rs->later = false;
	if (sync_follows() && !TransactionIdIsValid(GetTopTransactionIdIfAny()) &&
		GetCurrentCommandId(false) == FirstCommandId)
		return;
	rs->delegate = true;
	{
		MemoryContext old = MemoryContextSwitchTo(estate->es_query_cxt);

		start_nested(rs, estate);
		MemoryContextSwitchTo(old);
	}
}

static TupleTableSlot *
router_exec(CustomScanState *node)
{
	RouterState *rs = (RouterState *) node;

	if (rs->later)
		route_or_nest(rs);
	if (rs->delegate && rs->query != NULL)
		return run_nested(rs);
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
	if (rs->nested)
	{
		if (!rs->done)
			ExecutorFinish(rs->nested);
		ExecutorEnd(rs->nested);
		FreeQueryDesc(rs->nested);
		rs->nested = NULL;
	}
	if (rs->store)
		tuplestore_end(rs->store);
	rs->store = NULL;
	if (rs->res)
		PQclear(rs->res);
	rs->res = NULL;
}

static void
router_rescan(CustomScanState *node)
{
	RouterState *rs = (RouterState *) node;

	if (rs->delegate && rs->store)
		tuplestore_rescan(rs->store);
	else if (rs->delegate && node->custom_ps != NIL)
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
	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, parts_syscache_inval, (Datum) 0);
	CacheRegisterSyscacheCallback(FOREIGNTABLEREL, parts_syscache_inval, (Datum) 0);
	CacheRegisterRelcacheCallback(parts_inval, (Datum) 0);
	CacheRegisterSyscacheCallback(USERMAPPINGOID, router_inval, (Datum) 0);
	prev_planner_hook = planner_hook;
	planner_hook = router_planner;
}
