/*
 * batch.c — one remote query per datanode for the slots of an Append.
 *
 * A query over a distributed table whose work postgres_fdw pushes down
 * whole, slot by slot (aggpush.c's per-slot aggregates, a partitionwise
 * aggregate or join), is planned as an Append of one Foreign Scan per
 * slot. postgres_fdw runs each as a cursor of its own: DECLARE, FETCH and
 * CLOSE, three round trips per slot, the slots of one datanode one after
 * another (async_capable overlaps the datanodes, not the slots). With 32
 * slots on a datanode that is 96 round trips per query.
 *
 * A planner_hook puts a CustomScan "AdbShardBatch" over such an Append,
 * the Append kept as its child. At execution it sends each datanode the
 * remote SQL of its slots — postgres_fdw's own, from the plan — as one
 * multi-statement query on postgres_fdw's connection (so inside the
 * remote transaction postgres_fdw opened, at the client's isolation
 * level), every datanode at once; it reads every result into memory,
 * which frees the connections for the rest of the transaction, and
 * returns the rows as the slots' scans would, projected as the first
 * slot's scan is. The slots of aggpush.c's partial aggregates, whose
 * rows the coordinator combines again, go further: one statement per
 * datanode over the UNION ALL of its slots' tables (merge_slots). The
 * child runs instead (postgres_fdw as before) under EXPLAIN without
 * ANALYZE, and when an asynchronous fetch of another scan
 * is still pending on one of the connections (a client's cursor over
 * another query, suspended half-way).
 *
 * Only the plain shape is batched: a SELECT without row marks or
 * data-modifying CTEs whose only remote scans are the Append's children;
 * each child a pushed-down join or aggregate of postgres_fdw (not a scan
 * of a base relation, whose rows are not bounded) with no parameters, no
 * local filter, and the same columns as the first child; the children's
 * estimated rows together at most BATCH_MAX_ROWS (the results are held in
 * memory). The setting adb.shard_batch (on) turns it off.
 */
#include "postgres.h"

#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/foreign.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/planner.h"
#include "parser/parsetree.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "adb.h"

/* The most rows (estimated) a batched Append may bring into memory. */
#define BATCH_MAX_ROWS 100000.0

static bool shard_batch = true;
static bool merge_partials = true;
static planner_hook_type prev_planner_hook = NULL;

/* BatchConn is one datanode connection's share of a batch. */
typedef struct BatchConn
{
	Oid			serverid;
	Oid			userid;
	PGconn	   *conn;
	StringInfoData sql;
	int			nstmts;
	char	   *context;		/* what an error names: the first statement */
} BatchConn;

/* BatchState is the batch node at execution. */
typedef struct BatchState
{
	CustomScanState css;
	bool		delegate;		/* the child runs */
	bool		done;			/* the remote queries were run */
	PGresult  **res;			/* one per slot */
	int			nres;
	int			cur;			/* the result read */
	int			row;			/* its next row */
	FmgrInfo   *infuncs;
	Oid		   *ioparams;
	MemoryContextCallback free_res;
} BatchState;

static Node *batch_create_state(CustomScan *cscan);
static void batch_begin(CustomScanState *node, EState *estate, int eflags);
static TupleTableSlot *batch_exec(CustomScanState *node);
static void batch_end(CustomScanState *node);
static void batch_rescan(CustomScanState *node);
static void batch_explain(CustomScanState *node, List *ancestors, ExplainState *es);

static CustomScanMethods batch_scan_methods = {
	"AdbShardBatch",
	batch_create_state,
};

static CustomExecMethods batch_exec_methods = {
	.CustomName = "AdbShardBatch",
	.BeginCustomScan = batch_begin,
	.ExecCustomScan = batch_exec,
	.EndCustomScan = batch_end,
	.ReScanCustomScan = batch_rescan,
	.ExplainCustomScan = batch_explain,
};

/* ---------- planning ---------- */

/*
 * adb_plan_foreign_scans is the number of Foreign Scans in plan and below
 * it (the node types that can hold one under a SELECT).
 */
int
adb_plan_foreign_scans(Plan *plan)
{
	List	   *more = NIL;
	ListCell   *lc;
	int			n;

	if (plan == NULL)
		return 0;
	n = IsA(plan, ForeignScan) ? 1 : 0;
	n += adb_plan_foreign_scans(plan->lefttree) + adb_plan_foreign_scans(plan->righttree);
	switch (nodeTag(plan))
	{
		case T_Append:
			more = ((Append *) plan)->appendplans;
			break;
		case T_MergeAppend:
			more = ((MergeAppend *) plan)->mergeplans;
			break;
		case T_SubqueryScan:
			more = list_make1(((SubqueryScan *) plan)->subplan);
			break;
		case T_CustomScan:
			more = ((CustomScan *) plan)->custom_plans;
			break;
		case T_BitmapAnd:
			more = ((BitmapAnd *) plan)->bitmapplans;
			break;
		case T_BitmapOr:
			more = ((BitmapOr *) plan)->bitmapplans;
			break;
		default:
			break;
	}
	foreach(lc, more)
		n += adb_plan_foreign_scans(lfirst(lc));
	return n;
}

/*
 * find_append is where, going down plan's single-child nodes (not
 * through a Gather: its workers must not batch), the first Append is
 * linked, or NULL.
 */
static Plan **
find_append(Plan **plan)
{
	Plan	   *p = *plan;

	if (p == NULL || IsA(p, Gather) || IsA(p, GatherMerge))
		return NULL;
	if (IsA(p, Append))
		return plan;
	if (IsA(p, SubqueryScan))
		return find_append(&((SubqueryScan *) p)->subplan);
	if (p->righttree != NULL)
		return NULL;
	return find_append(&p->lefttree);
}

/*
 * same_columns says whether Foreign Scan fs returns what first returns:
 * the same scan columns (types) and an output of those columns alone, in
 * the same order.
 */
static bool
same_columns(ForeignScan *fs, ForeignScan *first)
{
	ListCell   *a;
	ListCell   *b;

	if (list_length(fs->fdw_scan_tlist) != list_length(first->fdw_scan_tlist) ||
		list_length(fs->scan.plan.targetlist) != list_length(first->scan.plan.targetlist))
		return false;
	forboth(a, fs->fdw_scan_tlist, b, first->fdw_scan_tlist)
	{
		Node	   *x = (Node *) ((TargetEntry *) lfirst(a))->expr;
		Node	   *y = (Node *) ((TargetEntry *) lfirst(b))->expr;

		if (exprType(x) != exprType(y) || exprTypmod(x) != exprTypmod(y))
			return false;
	}
	forboth(a, fs->scan.plan.targetlist, b, first->scan.plan.targetlist)
	{
		Var		   *x = (Var *) ((TargetEntry *) lfirst(a))->expr;
		Var		   *y = (Var *) ((TargetEntry *) lfirst(b))->expr;

		if (!IsA(x, Var) || !IsA(y, Var) || x->varno != INDEX_VAR || y->varno != INDEX_VAR ||
			x->varattno != y->varattno || x->vartype != y->vartype)
			return false;
	}
	return true;
}

/*
 * batchable says whether app's slots can run as one query per datanode
 * (see the top of the file), and counts its datanodes.
 */
static bool
batchable(Append *app, int *nservers)
{
	ForeignScan *first = NULL;
	List	   *servers = NIL;
	double		rows = 0;
	ListCell   *lc;

	if (app->part_prune_info != NULL || list_length(app->appendplans) < 2 ||
		app->first_partial_plan < list_length(app->appendplans))
		return false;
	foreach(lc, app->appendplans)
	{
		ForeignScan *fs = lfirst(lc);

		if (!IsA(fs, ForeignScan) || fs->operation != CMD_SELECT || fs->scan.scanrelid != 0 ||
			fs->fdw_exprs != NIL || fs->scan.plan.qual != NIL || fs->scan.plan.initPlan != NIL ||
			bms_is_empty(fs->fs_relids) || fs->fdw_private == NIL ||
			!IsA(linitial(fs->fdw_private), String) || !adb_fdw_is_postgres_fdw(fs->fs_server))
			return false;
		if (first == NULL)
			first = fs;
		else if (!same_columns(fs, first))
			return false;
		rows += fs->scan.plan.plan_rows;
		servers = list_append_unique_oid(servers, fs->fs_server);
	}
	*nservers = list_length(servers);
	return rows <= BATCH_MAX_ROWS;
}

/*
 * merge_slots is slots (server, range table index, remote SQL of each
 * slot) with the slots of each datanode made one statement, or NIL when
 * their SQL is not of the one shape this does: the same statement but for
 * the name of the slot's table, named once, after FROM. The statement
 * reads instead the UNION ALL of the datanode's slots' tables
 *
 *   SELECT g, count(*), sum(v) FROM (SELECT <columns> FROM public.t_0
 *       UNION ALL SELECT <columns> FROM public.t_2 …) adb_slots GROUP BY 1
 *
 * so the datanode plans, starts and groups once rather than once per
 * slot. Only for aggpush.c's partial aggregates: what a slot returns is
 * combined again by the coordinator whatever rows it is grouped with.
 */
static List *
merge_slots(List *slots, List *rtable)
{
	List	   *servers = NIL;
	List	   *merged = NIL;
	char	  **names = palloc(sizeof(char *) * list_length(slots));
	char	   *prefix = NULL;
	char	   *suffix = NULL;
	char	   *columns = NULL;
	ListCell   *lc;
	ListCell   *sc;

	foreach(lc, slots)
	{
		List	   *slot = lfirst(lc);
		Oid			relid = rt_fetch(intVal(lsecond(slot)), rtable)->relid;
		char	   *sql = strVal(lthird(slot));
		char	   *name = names[foreach_current_index(lc)] = adb_remote_name(relid);
		char	   *at = strstr(sql, name);
		char	   *end;
		char	   *cols = adb_remote_columns(relid);

		if (at == NULL || at - sql < 6 || strncmp(at - 6, " FROM ", 6) != 0)
			return NIL;
		end = at + strlen(name);
		/* Named once, without an alias: WHERE or GROUP BY or nothing follows. */
		if ((*end != '\0' && strncmp(end, " WHERE ", 7) != 0 && strncmp(end, " GROUP BY ", 10) != 0) ||
			strstr(end, name) != NULL)
			return NIL;
		if (prefix == NULL)
		{
			prefix = pnstrdup(sql, at - sql);
			suffix = end;
			columns = cols;
		}
		else if (strncmp(sql, prefix, at - sql) != 0 || prefix[at - sql] != '\0' ||
				 strcmp(end, suffix) != 0 || strcmp(cols, columns) != 0)
			return NIL;
		servers = list_append_unique_oid(servers, (Oid) intVal(linitial(slot)));
	}
	foreach(sc, servers)
	{
		Oid			server = lfirst_oid(sc);
		StringInfoData sql;
		int			rti = 0;

		initStringInfo(&sql);
		foreach(lc, slots)
		{
			List	   *slot = lfirst(lc);

			if ((Oid) intVal(linitial(slot)) != server)
				continue;
			appendStringInfo(&sql, "%sSELECT %s FROM %s", rti == 0 ? "" : " UNION ALL ", columns,
							 names[foreach_current_index(lc)]);
			if (rti == 0)
				rti = intVal(lsecond(slot));
		}
		merged = lappend(merged, list_make3(makeInteger((int) server), makeInteger(rti),
											makeString(psprintf("%s(%s) adb_slots%s", prefix, sql.data, suffix))));
	}
	return merged;
}

/*
 * batch_node is the AdbShardBatch node over app: the first slot's scan
 * columns and output, app's costs, and per remote statement its server,
 * the range table index its user is found by, and its SQL: one per slot,
 * or with merge (aggpush.c's partial aggregates) one per datanode when
 * merge_slots can.
 */
static CustomScan *
batch_node(Append *app, int nservers, bool merge, List *rtable)
{
	CustomScan *cs = makeNode(CustomScan);
	ForeignScan *first = linitial(app->appendplans);
	List	   *slots = NIL;
	ListCell   *lc;

	cs->scan.plan.startup_cost = app->plan.startup_cost;
	cs->scan.plan.total_cost = app->plan.total_cost;
	cs->scan.plan.plan_rows = app->plan.plan_rows;
	cs->scan.plan.plan_width = app->plan.plan_width;
	cs->scan.plan.parallel_safe = false;
	cs->scan.plan.targetlist = copyObject(first->scan.plan.targetlist);
	cs->scan.plan.extParam = bms_copy(app->plan.extParam);
	cs->scan.plan.allParam = bms_copy(app->plan.allParam);
	cs->scan.scanrelid = 0;
	cs->custom_scan_tlist = copyObject(first->fdw_scan_tlist);
	cs->custom_plans = list_make1(app);
	foreach(lc, app->appendplans)
	{
		ForeignScan *fs = lfirst(lc);

		cs->custom_relids = bms_add_members(cs->custom_relids, fs->fs_relids);
		slots = lappend(slots, list_make3(makeInteger((int) fs->fs_server),
										  makeInteger(bms_next_member(fs->fs_relids, -1)),
										  makeString(strVal(linitial(fs->fdw_private)))));
	}
	if (merge)
	{
		List	   *merged = merge_slots(slots, rtable);

		if (merged != NIL)
			slots = merged;
	}
	cs->custom_private = list_make2(makeInteger(nservers), slots);
	cs->methods = &batch_scan_methods;
	return cs;
}

/*
 * batch_planner plans through the hooks installed before, then puts a
 * batch node over the plan's Append of slots when it is the plain shape.
 */
static PlannedStmt *
batch_planner(Query *parse, const char *query_string, int cursorOptions, ParamListInfo boundParams)
{
	PlannedStmt *stmt;
	Plan	  **where;
	int			nservers;
	int			n;
	bool		merge;
	ListCell   *lc;

	adb_aggpush_planned = NULL;
	if (prev_planner_hook)
		stmt = prev_planner_hook(parse, query_string, cursorOptions, boundParams);
	else
		stmt = standard_planner(parse, query_string, cursorOptions, boundParams);
	merge = merge_partials && stmt == adb_aggpush_planned;
	adb_aggpush_planned = NULL;
	if (!shard_batch || stmt->commandType != CMD_SELECT || stmt->rowMarks != NIL ||
		stmt->hasModifyingCTE || stmt->utilityStmt != NULL)
		return stmt;
	where = find_append(&stmt->planTree);
	if (where == NULL || !batchable((Append *) *where, &nservers))
		return stmt;
	n = adb_plan_foreign_scans(stmt->planTree);
	foreach(lc, stmt->subplans)
		n += adb_plan_foreign_scans(lfirst(lc));
	if (n != list_length(((Append *) *where)->appendplans))
		return stmt;
	*where = (Plan *) batch_node((Append *) *where, nservers, merge, stmt->rtable);
	return stmt;
}

/* ---------- execution ---------- */

static Node *
batch_create_state(CustomScan *cscan)
{
	BatchState *bs = (BatchState *) newNode(sizeof(BatchState), T_CustomScanState);

	bs->css.methods = &batch_exec_methods;
	return (Node *) bs;
}

/*
 * batch_begin sets up the child (always: the choice between it and the
 * batch is made at the first row) and the conversion of remote values.
 */
static void
batch_begin(CustomScanState *node, EState *estate, int eflags)
{
	BatchState *bs = (BatchState *) node;
	CustomScan *cs = (CustomScan *) node->ss.ps.plan;
	TupleDesc	desc = node->ss.ss_ScanTupleSlot->tts_tupleDescriptor;
	int			i;

	node->custom_ps = list_make1(ExecInitNode(linitial(cs->custom_plans), estate, eflags));
	bs->delegate = (eflags & EXEC_FLAG_EXPLAIN_ONLY) != 0;
	bs->infuncs = palloc0(sizeof(FmgrInfo) * Max(desc->natts, 1));
	bs->ioparams = palloc0(sizeof(Oid) * Max(desc->natts, 1));
	for (i = 0; i < desc->natts; i++)
	{
		Oid			infunc;

		getTypeInputInfo(TupleDescAttr(desc, i)->atttypid, &infunc, &bs->ioparams[i]);
		fmgr_info(infunc, &bs->infuncs[i]);
	}
}

/* batch_free_res frees the remote results (once). */
static void
batch_free_res(void *arg)
{
	BatchState *bs = arg;
	int			i;

	for (i = 0; i < bs->nres; i++)
		if (bs->res[i] != NULL)
			PQclear(bs->res[i]);
	bs->nres = 0;
}

/*
 * next_result waits for conn's next result, serving interrupts while it
 * waits; NULL once the query is done.
 */
static PGresult *
next_result(PGconn *conn, const char *sql)
{
	while (PQisBusy(conn))
	{
		int			rc = WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH,
										   PQsocket(conn), -1L, PG_WAIT_EXTENSION);

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if ((rc & WL_SOCKET_READABLE) && !PQconsumeInput(conn))
			adb_fdw_report_error(ERROR, NULL, conn, false, sql);
	}
	return PQgetResult(conn);
}

/*
 * group_slots is the batch's connections: the slots grouped by server
 * and user (the user as postgres_fdw finds it: the range table entry's
 * checkAsUser, else the current user), each group's statements joined.
 */
static List *
group_slots(CustomScan *cs, EState *estate)
{
	List	   *conns = NIL;
	ListCell   *lc;
	ListCell   *gc;

	foreach(lc, (List *) lsecond(cs->custom_private))
	{
		List	   *slot = lfirst(lc);
		Oid			serverid = (Oid) intVal(linitial(slot));
		RangeTblEntry *rte = exec_rt_fetch(intVal(lsecond(slot)), estate);
		Oid			userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
		BatchConn  *bc = NULL;

		foreach(gc, conns)
		{
			BatchConn  *c = lfirst(gc);

			if (c->serverid == serverid && c->userid == userid)
				bc = c;
		}
		if (bc == NULL)
		{
			bc = palloc0(sizeof(BatchConn));
			bc->serverid = serverid;
			bc->userid = userid;
			initStringInfo(&bc->sql);
			conns = lappend(conns, bc);
		}
		appendStringInfo(&bc->sql, "%s%s", bc->nstmts > 0 ? ";\n" : "", strVal(lthird(slot)));
		if (bc->nstmts == 0)
			bc->context = strVal(lthird(slot));
		bc->nstmts++;
	}
	return conns;
}

/*
 * collect reads bc's results into bs->res, and raises the first remote
 * error once the connection is idle again.
 */
static void
collect(BatchState *bs, BatchConn *bc, int natts)
{
	PGresult   *err = NULL;
	PGresult   *res;
	int			got = 0;

	while ((res = next_result(bc->conn, bc->sql.data)) != NULL)
	{
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			if (err == NULL)
				err = res;
			else
				PQclear(res);
			continue;
		}
		got++;
		/* No column needed (e.g. a count(*) of a join): postgres_fdw sends SELECT NULL. */
		if (PQnfields(res) != natts && !(natts == 0 && PQnfields(res) == 1))
		{
			PQclear(res);
			if (err == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_COLUMN_NUMBER),
						 errmsg("remote query result does not match the foreign table")));
			continue;
		}
		bs->res[bs->nres++] = res;
	}
	if (err != NULL)
		adb_fdw_report_error(ERROR, err, bc->conn, true,
							 bc->nstmts == 1 ? bc->sql.data :
							 psprintf("%s; … (%d statements, one per slot)", bc->context, bc->nstmts));
	if (got != bc->nstmts)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("unexpected result from the remote server"),
				 errcontext("remote SQL command: %s", bc->sql.data)));
}

/*
 * run_batch sends every datanode its slots' statements, then reads every
 * result. It leaves bs->delegate set, having sent nothing, when a
 * connection has another scan's request pending. On an error every
 * query still running is cancelled; postgres_fdw's abort then ends the
 * remote transactions.
 */
static void
run_batch(BatchState *bs, EState *estate)
{
	CustomScan *cs = (CustomScan *) bs->css.ss.ps.plan;
	List	   *conns = group_slots(cs, estate);
	int			natts = bs->css.ss.ss_ScanTupleSlot->tts_tupleDescriptor->natts;
	ListCell   *lc;

	foreach(lc, conns)
	{
		BatchConn  *bc = lfirst(lc);
		PgFdwConnState *state;

		bc->conn = adb_fdw_GetConnection(GetUserMapping(bc->userid, bc->serverid), false, &state);
		if (adb_fdw_pending(state))
		{
			bs->delegate = true;
			return;
		}
	}
	bs->res = MemoryContextAllocZero(estate->es_query_cxt,
									 sizeof(PGresult *) * list_length((List *) lsecond(cs->custom_private)));
	bs->free_res.func = batch_free_res;
	bs->free_res.arg = bs;
	MemoryContextRegisterResetCallback(estate->es_query_cxt, &bs->free_res);
	PG_TRY();
	{
		foreach(lc, conns)
		{
			BatchConn  *bc = lfirst(lc);

			if (!PQsendQuery(bc->conn, bc->sql.data))
				adb_fdw_report_error(ERROR, NULL, bc->conn, false, bc->sql.data);
		}
		foreach(lc, conns)
			collect(bs, lfirst(lc), natts);
	}
	PG_CATCH();
	{
		foreach(lc, conns)
		{
			BatchConn  *bc = lfirst(lc);
			PGcancel   *cancel;
			char		errbuf[256];

			if (bc->conn == NULL || PQtransactionStatus(bc->conn) != PQTRANS_ACTIVE)
				continue;
			cancel = PQgetCancel(bc->conn);
			if (cancel)
			{
				(void) PQcancel(cancel, errbuf, sizeof(errbuf));
				PQfreeCancel(cancel);
			}
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * batch_next is the next remote row in the scan slot, converted as
 * postgres_fdw converts (the type's input function), or an empty slot at
 * the end.
 */
static TupleTableSlot *
batch_next(ScanState *ss)
{
	BatchState *bs = (BatchState *) ss;
	TupleTableSlot *slot = ss->ss_ScanTupleSlot;
	TupleDesc	desc = slot->tts_tupleDescriptor;
	MemoryContext old;
	PGresult   *res;
	int			i;

	ExecClearTuple(slot);
	while (bs->cur < bs->nres && bs->row >= PQntuples(bs->res[bs->cur]))
	{
		bs->cur++;
		bs->row = 0;
	}
	if (bs->cur >= bs->nres)
		return slot;
	res = bs->res[bs->cur];
	old = MemoryContextSwitchTo(ss->ps.ps_ExprContext->ecxt_per_tuple_memory);
	for (i = 0; i < desc->natts; i++)
	{
		char	   *v = PQgetisnull(res, bs->row, i) ? NULL : PQgetvalue(res, bs->row, i);

		slot->tts_values[i] = InputFunctionCall(&bs->infuncs[i], v, bs->ioparams[i],
												TupleDescAttr(desc, i)->atttypmod);
		slot->tts_isnull[i] = v == NULL;
	}
	MemoryContextSwitchTo(old);
	bs->row++;
	return ExecStoreVirtualTuple(slot);
}

/* batch_recheck: no EvalPlanQual on a remote row (no row marks here). */
static bool
batch_recheck(ScanState *ss, TupleTableSlot *slot)
{
	return true;
}

static TupleTableSlot *
batch_exec(CustomScanState *node)
{
	BatchState *bs = (BatchState *) node;

	if (!bs->done && !bs->delegate)
		run_batch(bs, node->ss.ps.state);
	bs->done = true;
	if (bs->delegate)
		return ExecProcNode((PlanState *) linitial(node->custom_ps));
	return ExecScan(&node->ss, batch_next, batch_recheck);
}

static void
batch_end(CustomScanState *node)
{
	ExecEndNode((PlanState *) linitial(node->custom_ps));
	batch_free_res(node);
}

/* batch_rescan reads the results again: the slots' queries have no parameters. */
static void
batch_rescan(CustomScanState *node)
{
	BatchState *bs = (BatchState *) node;

	if (bs->delegate)
		ExecReScan((PlanState *) linitial(node->custom_ps));
	bs->cur = 0;
	bs->row = 0;
}

static void
batch_explain(CustomScanState *node, List *ancestors, ExplainState *es)
{
	CustomScan *cs = (CustomScan *) node->ss.ps.plan;
	List	   *stmts = lsecond(cs->custom_private);
	ListCell   *lc;

	ExplainPropertyInteger("Remote queries", NULL, intVal(linitial(cs->custom_private)), es);
	ExplainPropertyInteger("Remote statements", NULL, list_length(stmts), es);
	/* Merged statements are not the slots' own (shown under the Append). */
	if (es->verbose && list_length(stmts) < list_length(((Append *) linitial(cs->custom_plans))->appendplans))
		foreach(lc, stmts)
			ExplainPropertyText("Remote SQL", strVal(lthird((List *) lfirst(lc))), es);
}

void
adb_batch_init(void)
{
	DefineCustomBoolVariable("adb.shard_batch",
							 "Sends a datanode its slots' pushed-down queries as one remote query.",
							 "An Append of slots whose joins or aggregates postgres_fdw pushes down runs as one multi-statement query per datanode instead of one cursor per slot.",
							 &shard_batch, true, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("adb.shard_batch_merge",
							 "Sends a datanode the partial aggregates of its slots as one statement.",
							 "The partial aggregates of adb.aggregate_pushdown run on a datanode as one statement over the UNION ALL of its slots instead of one statement per slot.",
							 &merge_partials, true, PGC_USERSET, 0, NULL, NULL, NULL);
	RegisterCustomScanMethods(&batch_scan_methods);
	prev_planner_hook = planner_hook;
	planner_hook = batch_planner;
}
