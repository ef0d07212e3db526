/*
 * dml.c — what a write through a coordinator must respect (see adb.h):
 *
 * 1. The distribution column does not change. A distributed table is a
 *    parent partitioned by HASH whose partitions are postgres_fdw foreign
 *    tables (internal/coord/adb.sql); postgres_fdw pushes an UPDATE of the
 *    partition key to the shard as it is and the row stays in a slot where
 *    no query looks for it. Such UPDATEs are refused at planning, as Citus
 *    refuses them, on the parent and on a partition named directly.
 *
 * 2. Remote transactions run at the client's isolation level.
 *    postgres_fdw starts every remote transaction at REPEATABLE READ (or
 *    SERIALIZABLE), so two READ COMMITTED clients updating one row get a
 *    serialization failure instead of waiting. The datanode's side: the
 *    setting adb.remote_isolation of a coordinator's remote session makes
 *    its transactions run at that level (applied when postgres_fdw's START
 *    TRANSACTION arrives, and at once to the current transaction when no
 *    query ran in it yet). The coordinator's side: after ExecutorStart
 *    (when postgres_fdw has opened its connections and begun their remote
 *    transactions, with no query sent yet) each connection whose remote
 *    session is not set to this transaction's level is set, once; the
 *    setting stays with the remote session, so a session at one level
 *    pays that round trip once per connection.
 *
 * 3. A deadlock across nodes ends with "deadlock detected". The manager
 *    finds the cycle (internal/dataplane) and calls adb.cancel_deadlock on
 *    the victim's coordinator, which records the victim in shared memory
 *    and cancels it as pg_cancel_backend does; the victim's cancellation
 *    error is reported as 40P01 with the manager's account of the cycle.
 */
#include "postgres.h"

#include <signal.h>

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/planner.h"
#include "parser/parsetree.h"
#include "partitioning/partdesc.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "adb.h"

static planner_hook_type prev_planner_hook = NULL;
static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static emit_log_hook_type prev_emit_log_hook = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* ---------------------------------------------------------------------
 * 1. The distribution column does not change.
 * ---------------------------------------------------------------------
 */

/*
 * is_distributed_parent says whether relid may be a distributed table
 * partitioned by HASH (adb_looks_distributed, fdw.c: looser than
 * adb_is_distributed, so that the UPDATEs of the key this file refuses
 * stay refused on every table whose partitions postgres_fdw writes).
 */
static bool
is_distributed_parent(Oid relid)
{
	Relation	rel;
	bool		result;

	if (get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return false;
	rel = table_open(relid, AccessShareLock);
	result = get_partition_strategy(RelationGetPartitionKey(rel)) == PARTITION_STRATEGY_HASH &&
		adb_looks_distributed(rel);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * distribution_columns returns the attribute numbers, in target's own
 * numbering, of the distribution column(s) of the distributed table that
 * target is or is a partition of; NIL when target is neither. *parent is
 * set to the distributed table.
 */
static List *
distribution_columns(Oid target, Oid *parent)
{
	char		relkind = get_rel_relkind(target);
	Oid			dist;
	Relation	rel;
	PartitionKey key;
	List	   *cols = NIL;
	int			i;

	if (relkind == RELKIND_PARTITIONED_TABLE)
		dist = target;
	else if (relkind == RELKIND_FOREIGN_TABLE && get_rel_relispartition(target))
		dist = get_partition_parent(target, true);
	else
		return NIL;
	if (!is_distributed_parent(dist))
		return NIL;
	rel = table_open(dist, AccessShareLock);
	key = RelationGetPartitionKey(rel);
	for (i = 0; i < get_partition_natts(key); i++)
	{
		AttrNumber	att = get_partition_col_attnum(key, i);

		if (att == 0)
			continue;			/* an expression: not adb's kind of key */
		if (dist != target)
		{
			/* The partition's columns may be numbered otherwise. */
			att = get_attnum(target, get_attname(dist, att, false));
			if (att == InvalidAttrNumber)
				continue;
		}
		cols = lappend_int(cols, att);
	}
	table_close(rel, AccessShareLock);
	*parent = dist;
	return cols;
}

static Node *
strip_relabel(Node *n)
{
	while (n && IsA(n, RelabelType))
		n = (Node *) ((RelabelType *) n)->arg;
	return n;
}

/* is_column says whether n is column att of range table entry varno. */
static bool
is_column(Node *n, Index varno, AttrNumber att)
{
	Var		   *v;

	n = strip_relabel(n);
	if (n == NULL || !IsA(n, Var))
		return false;
	v = (Var *) n;
	return v->varno == varno && v->varattno == att && v->varlevelsup == 0;
}

/*
 * qual_pins says whether quals (a WHERE clause) holds "column = value"
 * among its top-level ANDed conditions: then SET column = value changes
 * nothing (ORMs send every column, the key with its own value).
 */
static bool
qual_pins(Node *quals, Index varno, AttrNumber att, Node *value)
{
	ListCell   *lc;

	if (quals == NULL)
		return false;
	if (IsA(quals, List))
	{
		foreach(lc, (List *) quals)
			if (qual_pins(lfirst(lc), varno, att, value))
				return true;
		return false;
	}
	if (IsA(quals, BoolExpr) && ((BoolExpr *) quals)->boolop == AND_EXPR)
		return qual_pins((Node *) ((BoolExpr *) quals)->args, varno, att, value);
	if (IsA(quals, OpExpr) && list_length(((OpExpr *) quals)->args) == 2 &&
		get_oprrest(((OpExpr *) quals)->opno) == F_EQSEL)
	{
		Node	   *l = linitial(((OpExpr *) quals)->args);
		Node	   *r = lsecond(((OpExpr *) quals)->args);

		if (is_column(l, varno, att))
			return equal(strip_relabel(r), strip_relabel(value));
		if (is_column(r, varno, att))
			return equal(strip_relabel(l), strip_relabel(value));
	}
	return false;
}

/*
 * check_set_list refuses a SET list (target entries numbered as the
 * target relation's columns) that gives a distribution column a value
 * other than its own: the column itself (also EXCLUDED's, for ON
 * CONFLICT, the conflicting row having the same key) or the value the
 * WHERE clause pins it to.
 */
static void
check_set_list(List *tlist, Index varno, Index excluded, Node *quals, Oid target)
{
	List	   *cols;
	Oid			dist = InvalidOid;
	ListCell   *lc;

	if (tlist == NIL)
		return;
	cols = distribution_columns(target, &dist);
	if (cols == NIL)
		return;
	foreach(lc, tlist)
	{
		TargetEntry *te = lfirst(lc);

		if (te->resjunk || !list_member_int(cols, te->resno))
			continue;
		if (is_column((Node *) te->expr, varno, te->resno) ||
			(excluded > 0 && is_column((Node *) te->expr, excluded, te->resno)) ||
			qual_pins(quals, varno, te->resno, (Node *) te->expr))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("modifying the partition value of rows is not allowed"),
				 errdetail("Column \"%s\" is the distribution column of distributed table \"%s\": its value decides the datanode that holds the row.",
						   get_attname(target, te->resno, false), get_rel_name(dist)),
				 errhint("Delete the row and insert it again with the new value, in one transaction.")));
	}
}

/*
 * check_query refuses q, and the data-modifying WITH queries in it, when
 * they change the distribution column of a distributed table. Cheap for
 * everything else: a look at the command type.
 */
static void
check_query(Query *q)
{
	ListCell   *lc;

	if (q->commandType == CMD_UPDATE && q->resultRelation > 0)
		check_set_list(q->targetList, q->resultRelation, 0, q->jointree ? q->jointree->quals : NULL,
					   rt_fetch(q->resultRelation, q->rtable)->relid);
	else if (q->commandType == CMD_INSERT && q->onConflict &&
			 q->onConflict->action == ONCONFLICT_UPDATE && q->resultRelation > 0)
		check_set_list(q->onConflict->onConflictSet, q->resultRelation, q->onConflict->exclRelIndex,
					   NULL, rt_fetch(q->resultRelation, q->rtable)->relid);
	else if (q->commandType == CMD_MERGE && q->resultRelation > 0)
	{
		foreach(lc, q->mergeActionList)
		{
			MergeAction *a = lfirst(lc);

			if (a->commandType == CMD_UPDATE)
				check_set_list(a->targetList, q->resultRelation, 0, NULL,
							   rt_fetch(q->resultRelation, q->rtable)->relid);
		}
	}
	if (q->hasModifyingCTE)
	{
		foreach(lc, q->cteList)
		{
			CommonTableExpr *cte = lfirst(lc);

			if (IsA(cte->ctequery, Query))
				check_query((Query *) cte->ctequery);
		}
	}
}

/*
 * adb_planner checks each query before it is planned. The planner sees
 * the rewritten query: an UPDATE through a view is checked on the table
 * it updates.
 */
static PlannedStmt *
adb_planner(Query *parse, const char *query_string, int cursorOptions, ParamListInfo boundParams)
{
	check_query(parse);
	if (prev_planner_hook)
		return prev_planner_hook(parse, query_string, cursorOptions, boundParams);
	return standard_planner(parse, query_string, cursorOptions, boundParams);
}

/*
 * adb_hide_failing_row is an error context callback for statements of a
 * role that is no superuser (copy.c pushes it around their execution): a
 * datanode reports the failing row of a CHECK or NOT NULL violation
 * whole, as the superuser it runs as, while PostgreSQL shows a role only
 * the columns it may read. Set while the error is raised, the DETAIL
 * reaches neither the client nor a PL/pgSQL handler.
 */
void
adb_hide_failing_row(void *arg)
{
	int			code = geterrcode();

	if (code == ERRCODE_CHECK_VIOLATION || code == ERRCODE_NOT_NULL_VIOLATION)
		errdetail("The failing row is not shown: a datanode holds all its columns, and the role may not read every one.");
}

/* ---------------------------------------------------------------------
 * 2. Remote transactions at the client's isolation level.
 * ---------------------------------------------------------------------
 */

/* Values of adb.remote_isolation. */
#define REMOTE_ISO_DEFAULT	0
#define REMOTE_ISO_RC		1
#define REMOTE_ISO_RR		2

static const struct config_enum_entry remote_isolation_options[] = {
	{"default", REMOTE_ISO_DEFAULT, false},
	{"read committed", REMOTE_ISO_RC, false},
	{"repeatable read", REMOTE_ISO_RR, false},
	{NULL, 0, false}
};

static int	remote_isolation = REMOTE_ISO_DEFAULT;

/*
 * apply_remote_isolation sets the current transaction's level to
 * adb.remote_isolation's, when it can still change: before the
 * transaction's first snapshot, between READ COMMITTED and REPEATABLE READ
 * (never to or from SERIALIZABLE, which takes more than a level).
 */
static void
apply_remote_isolation(int level)
{
	if (level == REMOTE_ISO_DEFAULT || !IsTransactionState() || FirstSnapshotSet)
		return;
	if (XactIsoLevel != XACT_READ_COMMITTED && XactIsoLevel != XACT_REPEATABLE_READ)
		return;
	XactIsoLevel = level == REMOTE_ISO_RC ? XACT_READ_COMMITTED : XACT_REPEATABLE_READ;
}

/*
 * assign_remote_isolation: a coordinator setting the level in the middle
 * of a remote transaction that has not run a query yet (the first
 * transaction on a connection) changes that transaction too. (Values
 * restored at a transaction's end change nothing: it has its snapshot or
 * is not in progress.)
 */
static void
assign_remote_isolation(int newval, void *extra)
{
	apply_remote_isolation(newval);
}

static int	wanted_level(void);
static void wrap_partitions(Relation root);

/*
 * adb_ProcessUtility: on a node, a remote session's START TRANSACTION (or
 * BEGIN) runs at the level its coordinator set in adb.remote_isolation
 * rather than the one postgres_fdw names; on a coordinator, a COPY into a
 * distributed table has its routed partitions synced (wrap_partitions).
 */
static void
adb_ProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				   ProcessUtilityContext context, ParamListInfo params,
				   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;

	/* COPY into a distributed table routes rows as INSERT does. */
	if (IsA(stmt, CopyStmt) && ((CopyStmt *) stmt)->is_from && ((CopyStmt *) stmt)->relation &&
		MyProc != NULL && wanted_level() != REMOTE_ISO_DEFAULT)
	{
		Oid			relid = RangeVarGetRelid(((CopyStmt *) stmt)->relation, NoLock, true);
		Relation	rel = OidIsValid(relid) ? RelationIdGetRelation(relid) : NULL;

		if (rel != NULL)
		{
			wrap_partitions(rel);
			RelationClose(rel);
		}
	}
	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	if (remote_isolation != REMOTE_ISO_DEFAULT && IsA(stmt, TransactionStmt) &&
		(((TransactionStmt *) stmt)->kind == TRANS_STMT_BEGIN ||
		 ((TransactionStmt *) stmt)->kind == TRANS_STMT_START))
		apply_remote_isolation(remote_isolation);
}

/*
 * RemoteSession is what this backend knows of one postgres_fdw
 * connection (by user mapping, postgres_fdw's key): the remote session's
 * adb.remote_isolation as of its last commit (level), one set in the
 * current transaction (pending, confirmed at commit), and the local
 * transaction that last checked it.
 */
typedef struct RemoteSession
{
	Oid			umid;			/* hash key */
	PGconn	   *conn;
	int			pid;			/* remote backend: a new connection is a new session */
	int			level;
	int			pending;		/* -1: none */
	int			pending_nest;	/* the subtransaction level that set it */
	LocalTransactionId checked;
} RemoteSession;

static HTAB *remote_sessions = NULL;

/*
 * wanted_level is the level remote transactions of this transaction must
 * have, or REMOTE_ISO_DEFAULT when postgres_fdw's choice is right
 * (SERIALIZABLE, which it keeps).
 */
static int
wanted_level(void)
{
	if (XactIsoLevel == XACT_SERIALIZABLE)
		return REMOTE_ISO_DEFAULT;
	return XactIsoLevel == XACT_REPEATABLE_READ ? REMOTE_ISO_RR : REMOTE_ISO_RC;
}

/*
 * (server, user) pairs synced in this transaction (done_lxid): a plan
 * scans many partitions of few servers, and a user mapping costs catalog
 * reads. A subtransaction's abort empties it.
 */
static struct
{
	Oid			serverid,
				userid;
}			done[16];
static int	ndone = 0;
static LocalTransactionId done_lxid = InvalidLocalTransactionId;

/*
 * sync_connection makes the remote session postgres_fdw uses for
 * (userid, serverid) run this transaction's level: postgres_fdw has just
 * begun its remote transaction (Begin* of a foreign scan or modify), so
 * the same call returns the cached connection without a round trip; one
 * SET is sent when the remote session is not at the level yet.
 */
static void
sync_connection(Oid userid, Oid serverid, int level)
{
	UserMapping *um;
	RemoteSession *rs;
	PGconn	   *conn;
	bool		found;
	int			have;
	int			i;

	if (done_lxid != MyProc->lxid)
	{
		done_lxid = MyProc->lxid;
		ndone = 0;
	}
	for (i = 0; i < ndone; i++)
		if (done[i].serverid == serverid && done[i].userid == userid)
			return;
	if (ndone < lengthof(done))
	{
		done[ndone].serverid = serverid;
		done[ndone].userid = userid;
		ndone++;
	}
	if (!adb_fdw_is_postgres_fdw(serverid))
		return;
	um = GetUserMapping(userid, serverid);
	if (remote_sessions == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RemoteSession);
		ctl.hcxt = TopMemoryContext;
		remote_sessions = hash_create("adb remote sessions", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	rs = hash_search(remote_sessions, &um->umid, HASH_ENTER, &found);
	if (!found)
	{
		rs->conn = NULL;
		rs->pid = 0;
		rs->level = REMOTE_ISO_DEFAULT;
		rs->pending = -1;
		rs->checked = InvalidLocalTransactionId;
	}
	if (rs->checked == MyProc->lxid)
		return;
	conn = adb_fdw_GetConnection(um, false, NULL);
	if (conn != rs->conn || PQbackendPID(conn) != rs->pid)
	{
		/* A new remote session starts at the default. */
		rs->conn = conn;
		rs->pid = PQbackendPID(conn);
		rs->level = REMOTE_ISO_DEFAULT;
		rs->pending = -1;
	}
	rs->checked = MyProc->lxid;
	have = rs->pending >= 0 ? rs->pending : rs->level;
	/* At the default, postgres_fdw's REPEATABLE READ stands. */
	if (have == level || (have == REMOTE_ISO_DEFAULT && level == REMOTE_ISO_RR))
		return;
	adb_fdw_do_sql_command(conn, level == REMOTE_ISO_RC ?
					   "SET adb.remote_isolation = 'read committed'" :
					   "SET adb.remote_isolation = 'repeatable read'");
	rs->pending = level;
	rs->pending_nest = GetCurrentTransactionNestLevel();
}

/*
 * adb_dml_sync_connection makes the remote session of postgres_fdw's
 * connection for (userid, serverid), begun by a GetConnection outside the
 * executor's Begin* calls (bulk COPY, upserts), run this transaction's
 * level, as sync_connection does for scans and modifies.
 */
void
adb_dml_sync_connection(Oid userid, Oid serverid)
{
	int			level = wanted_level();

	if (level != REMOTE_ISO_DEFAULT)
		sync_connection(userid, serverid, level);
}

/* userid is the user postgres_fdw connects as for range table entry rte. */
static Oid
rte_user(RangeTblEntry *rte)
{
	return OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
}

/*
 * Routed rows. An INSERT (or COPY) into a distributed table opens the
 * partitions its rows go to inside the executor: postgres_fdw's
 * BeginForeignInsert begins the remote transaction and the first row
 * follows at once, with no hook in between. So the partitions' cached
 * FdwRoutine (relcache, which each routed ResultRelInfo copies) gets
 * adb_BeginForeignInsert: postgres_fdw's, then the sync, before any row.
 */
static BeginForeignInsert_function fdw_BeginForeignInsert = NULL;

static void
adb_BeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rri)
{
	int			level;
	Index		rti = rri->ri_RangeTableIndex;

	fdw_BeginForeignInsert(mtstate, rri);
	level = wanted_level();
	if (level == REMOTE_ISO_DEFAULT || rri->ri_FdwState == NULL || MyProc == NULL)
		return;
	/* A routed partition has no range table entry: postgres_fdw uses the root's. */
	if (rti == 0 && rri->ri_RootResultRelInfo)
		rti = rri->ri_RootResultRelInfo->ri_RangeTableIndex;
	if (rti > 0)
		sync_connection(rte_user(exec_rt_fetch(rti, mtstate->ps.state)),
						GetForeignServerIdByRelId(RelationGetRelid(rri->ri_RelationDesc)), level);
}

/*
 * wrap_partitions gives the postgres_fdw partitions of root (a table
 * rows are routed into) adb_BeginForeignInsert. A relcache entry rebuilt
 * since (DDL on it) has postgres_fdw's again until the next statement.
 */
static void
wrap_partitions(Relation root)
{
	PartitionDesc pd;
	int			i;

	if (root->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		return;
	pd = RelationGetPartitionDesc(root, true);
	for (i = 0; i < pd->nparts; i++)
	{
		Relation	rel;
		FdwRoutine *fr;

		if (!pd->is_leaf[i])
			continue;
		rel = RelationIdGetRelation(pd->oids[i]);
		if (rel == NULL)
			continue;
		if (rel->rd_rel->relkind == RELKIND_FOREIGN_TABLE)
		{
			/* The first call fills the cache but returns a copy of it. */
			(void) GetFdwRoutineForRelation(rel, false);
			fr = rel->rd_fdwroutine;
			if (fr->BeginForeignInsert != adb_BeginForeignInsert && fr->BeginForeignInsert != NULL &&
				adb_fdw_is_postgres_fdw(GetForeignServerIdByRelId(pd->oids[i])) &&
				(fdw_BeginForeignInsert == NULL || fdw_BeginForeignInsert == fr->BeginForeignInsert))
			{
				fdw_BeginForeignInsert = fr->BeginForeignInsert;
				fr->BeginForeignInsert = adb_BeginForeignInsert;
			}
		}
		RelationClose(rel);
	}
}

/*
 * sync_walker visits the plan's nodes that began a postgres_fdw remote
 * transaction, finding their user and server as postgres_fdw does: a
 * foreign scan (or join, or pushed-down aggregate: its lowest-numbered
 * relation) or a direct modify, and a ModifyTable's foreign result
 * relations. Nodes whose Begin* did not run (EXPLAIN, pruned) have no
 * state and are skipped.
 */
static bool
sync_walker(PlanState *ps, void *context)
{
	int			level = *(int *) context;
	EState	   *estate;

	if (ps == NULL)
		return false;
	estate = ps->state;
	if (IsA(ps, ForeignScanState))
	{
		ForeignScanState *fss = (ForeignScanState *) ps;
		ForeignScan *fs = (ForeignScan *) ps->plan;

		if (fss->fdw_state != NULL)
		{
			Index		rti;

			if (fs->scan.scanrelid > 0)
				rti = fs->scan.scanrelid;
			else if (fs->operation != CMD_SELECT && fss->resultRelInfo)
				rti = fss->resultRelInfo->ri_RangeTableIndex;
			else
				rti = bms_next_member(fs->fs_relids, -1);
			if (rti > 0)
				sync_connection(rte_user(exec_rt_fetch(rti, estate)), fs->fs_server, level);
		}
	}
	else if (IsA(ps, ModifyTableState))
	{
		ModifyTableState *mt = (ModifyTableState *) ps;
		int			i;

		if (mt->mt_partition_tuple_routing && mt->rootResultRelInfo)
			wrap_partitions(mt->rootResultRelInfo->ri_RelationDesc);
		for (i = 0; i < mt->mt_nrels; i++)
		{
			ResultRelInfo *rri = &mt->resultRelInfo[i];

			if (rri->ri_FdwRoutine && !rri->ri_usesFdwDirectModify && rri->ri_FdwState &&
				rri->ri_RangeTableIndex > 0)
				sync_connection(rte_user(exec_rt_fetch(rri->ri_RangeTableIndex, estate)),
								GetForeignServerIdByRelId(RelationGetRelid(rri->ri_RelationDesc)), level);
		}
	}
	return planstate_tree_walker(ps, sync_walker, context);
}

/*
 * adb_ExecutorStart: after the nodes began their remote transactions
 * (standard_ExecutorStart), before any remote query ran, every remote
 * session of the plan is brought to this transaction's level.
 */
static void
adb_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	int			level;
	ListCell   *lc;

	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) || MyProc == NULL)
		return;
	level = wanted_level();
	if (level == REMOTE_ISO_DEFAULT)
		return;
	sync_walker(queryDesc->planstate, &level);
	foreach(lc, queryDesc->estate->es_subplanstates)
		sync_walker(lfirst(lc), &level);
}

/*
 * adb_ExecutorEnd: an INSERT (or COPY) routes rows to partitions opened
 * at run time, whose remote transactions began and ran their first query
 * inside the executor, at postgres_fdw's level: this transaction keeps
 * it there, but their remote sessions are set now for the next ones.
 */
static void
adb_ExecutorEnd(QueryDesc *queryDesc)
{
	int			level = wanted_level();
	ListCell   *lc;

	if (level != REMOTE_ISO_DEFAULT && MyProc != NULL && queryDesc->estate)
	{
		foreach(lc, queryDesc->estate->es_tuple_routing_result_relations)
		{
			ResultRelInfo *rri = lfirst(lc);
			Index		rti = rri->ri_RangeTableIndex;

			if (rti == 0 && rri->ri_RootResultRelInfo)
				rti = rri->ri_RootResultRelInfo->ri_RangeTableIndex;
			if (rri->ri_FdwRoutine && rri->ri_FdwState && rti > 0)
				sync_connection(rte_user(exec_rt_fetch(rti, queryDesc->estate)),
								GetForeignServerIdByRelId(RelationGetRelid(rri->ri_RelationDesc)), level);
		}
	}
	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
}

/*
 * remote_xact_callback confirms the levels set in a transaction that
 * committed (the remote sessions keep them) and forgets those of one
 * that aborted (their SET was rolled back with it).
 */
static void
remote_xact_callback(XactEvent event, void *arg)
{
	HASH_SEQ_STATUS seq;
	RemoteSession *rs;
	bool		keep;

	if (remote_sessions == NULL)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PREPARE)
		keep = true;
	else if (event == XACT_EVENT_ABORT)
		keep = false;
	else
		return;
	hash_seq_init(&seq, remote_sessions);
	while ((rs = hash_seq_search(&seq)) != NULL)
	{
		if (rs->pending >= 0 && keep)
			rs->level = rs->pending;
		rs->pending = -1;
		rs->checked = InvalidLocalTransactionId;
	}
}

/*
 * remote_subxact_callback: a SET sent inside a subtransaction that
 * aborts is rolled back on the remote side too (postgres_fdw's ROLLBACK
 * TO SAVEPOINT).
 */
static void
remote_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	HASH_SEQ_STATUS seq;
	RemoteSession *rs;
	int			nest = GetCurrentTransactionNestLevel();

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	ndone = 0;
	if (remote_sessions == NULL)
		return;
	hash_seq_init(&seq, remote_sessions);
	while ((rs = hash_seq_search(&seq)) != NULL)
	{
		if (rs->pending >= 0 && rs->pending_nest >= nest)
		{
			rs->pending = -1;
			rs->checked = InvalidLocalTransactionId;
		}
	}
}

/* ---------------------------------------------------------------------
 * 3. Deadlock victims.
 * ---------------------------------------------------------------------
 */

#define VICTIM_SLOTS	32
#define VICTIM_DETAIL	1024

/* Victim is one backend the manager cancelled as a deadlock's victim. */
typedef struct Victim
{
	int			pid;			/* 0: free */
	LocalTransactionId lxid;	/* the transaction chosen */
	TimestampTz at;				/* when: the oldest slot is reused first */
	char		detail[VICTIM_DETAIL];
} Victim;

typedef struct VictimTable
{
	slock_t		mutex;
	Victim		slots[VICTIM_SLOTS];
} VictimTable;

static VictimTable *victims = NULL;

static void
adb_dml_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(sizeof(VictimTable));
}

static void
adb_dml_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	victims = ShmemInitStruct("adb deadlock victims", sizeof(VictimTable), &found);
	if (!found)
	{
		SpinLockInit(&victims->mutex);
		memset(victims->slots, 0, sizeof(victims->slots));
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * adb_cancel_deadlock(pid int, detail text) marks backend pid's current
 * transaction as a deadlock's victim and cancels it as pg_cancel_backend
 * does; its cancellation error then reads "deadlock detected" with
 * detail. False when pid is no backend (it ended meanwhile). Superuser
 * only (the manager): it cancels any backend.
 */
PG_FUNCTION_INFO_V1(adb_cancel_deadlock);
Datum
adb_cancel_deadlock(PG_FUNCTION_ARGS)
{
	int			pid = PG_GETARG_INT32(0);
	char	   *detail = text_to_cstring(PG_GETARG_TEXT_PP(1));
	PGPROC	   *proc;
	Victim	   *slot = NULL;
	LocalTransactionId lxid;
	TimestampTz now;
	int			i;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser may cancel a deadlock's victim")));
	if (victims == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("adb must be loaded by shared_preload_libraries to cancel deadlocks")));
	proc = BackendPidGetProc(pid);
	if (proc == NULL || pid == MyProcPid)
		PG_RETURN_BOOL(false);
	lxid = proc->lxid;
	now = GetCurrentTimestamp();
	/* No other lock may be taken under the spinlock: slots are chosen by age. */
	SpinLockAcquire(&victims->mutex);
	for (i = 0; i < VICTIM_SLOTS; i++)
	{
		Victim	   *v = &victims->slots[i];

		if (v->pid == pid)
		{
			slot = v;
			break;
		}
		if (slot == NULL || (slot->pid != 0 && (v->pid == 0 || v->at < slot->at)))
			slot = v;
	}
	slot->pid = pid;
	slot->lxid = lxid;
	slot->at = now;
	strlcpy(slot->detail, detail, VICTIM_DETAIL);
	SpinLockRelease(&victims->mutex);
	if (kill(pid, SIGINT) != 0)
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(true);
}

/*
 * adb_emit_log: the cancellation error of a backend the manager chose as
 * a deadlock's victim (this transaction, marked by adb_cancel_deadlock)
 * is reported as PostgreSQL reports its own deadlocks: 40P01.
 */
static void
adb_emit_log(ErrorData *edata)
{
	if (victims != NULL && MyProc != NULL && edata->elevel == ERROR &&
		edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
	{
		char		detail[VICTIM_DETAIL];
		bool		mine = false;
		int			i;

		SpinLockAcquire(&victims->mutex);
		for (i = 0; i < VICTIM_SLOTS; i++)
		{
			Victim	   *v = &victims->slots[i];

			if (v->pid == MyProcPid)
			{
				mine = v->lxid == MyProc->lxid;
				if (mine)
					memcpy(detail, v->detail, VICTIM_DETAIL);
				v->pid = 0;
				break;
			}
		}
		SpinLockRelease(&victims->mutex);
		if (mine)
		{
			edata->sqlerrcode = ERRCODE_T_R_DEADLOCK_DETECTED;
			edata->message = pstrdup("deadlock detected");
			edata->detail = detail[0] ? pstrdup(detail) : NULL;
			edata->hint = pstrdup("The transaction waited across datanodes for another one that waited for it; it was cancelled to break the cycle. Retry it.");
		}
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
adb_dml_init(void)
{
	DefineCustomEnumVariable("adb.remote_isolation",
							 "Isolation level of the transactions a coordinator runs in this session.",
							 "Set by coordinators on their postgres_fdw sessions: the transactions that session starts run at this level rather than the one START TRANSACTION names.",
							 &remote_isolation, REMOTE_ISO_DEFAULT, remote_isolation_options,
							 PGC_USERSET, 0, NULL, assign_remote_isolation, NULL);

	prev_planner_hook = planner_hook;
	planner_hook = adb_planner;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = adb_ExecutorStart;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = adb_ExecutorEnd;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = adb_ProcessUtility;
	RegisterXactCallback(remote_xact_callback, NULL);
	RegisterSubXactCallback(remote_subxact_callback, NULL);

	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = adb_emit_log;
	if (process_shared_preload_libraries_in_progress)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = adb_dml_shmem_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = adb_dml_shmem_startup;
	}
}
