/*
 * copy.c — bulk COPY FROM into a distributed table (issue 10, item 7).
 *
 * PostgreSQL 15 routes a COPY into a partitioned table row by row, and a
 * postgres_fdw partition takes one remote INSERT per row (COPY does not
 * batch into foreign tables), so a COPY through a coordinator ran at about
 * 1% of a plain server's speed. This ProcessUtility hook takes COPY
 * <distributed table> [(cols)] FROM STDIN|file|PROGRAM [WITH (options)]
 * and loads it in bulk instead: PostgreSQL's own COPY reader
 * (BeginCopyFrom/NextCopyFrom) parses the input here, with the user's
 * options and settings, and evaluates the defaults of the columns not
 * given (adb.dist_nextval of serial columns); each row's partition is the
 * one PostgreSQL's hash partitioning would route it to
 * (compute_partition_hash_value over the parent's partition key); the rows
 * are written out in COPY text form, grouped by partition, and sent to the
 * partition's shard with one COPY … FROM STDIN per shard over postgres_fdw's
 * own connection to the datanode — in postgres_fdw's remote transaction,
 * the one this transaction's other reads and writes of the table use,
 * with the datanodes counted as writers (adb_twophase_note_write) so that
 * several of them commit by two-phase commit. The datanodes load at once,
 * each at its own pace: a datanode gets the COPYs of all its shards in one
 * query string, and each shard's rows as soon as it asks for them (one
 * round trip a shard). Rows are held up to adb.copy_buffer, then sent.
 * Any error (a bad input line, with its line number; a duplicate
 * key on a shard, with the shard's SQLSTATE) aborts the transaction, and
 * with it every remote one: nothing stays anywhere.
 *
 * An INSERT … SELECT into such a table takes the same path (an
 * ExecutorRun hook, bulk_insert): PostgreSQL plans and runs the SELECT
 * (defaults filled by the planner), and its rows are routed, written out
 * and sent as COPY's are, instead of postgres_fdw's batches of
 * batch_size rows, one round trip each, shard after shard. A SELECT that
 * reads distributed tables is read whole first (see bulk_insert_rel).
 *
 * What this does not handle goes PostgreSQL's way, row by row: COPY TO,
 * COPY of a query, COPY FROM with WHERE or FREEZE, tables with triggers,
 * generated columns or row-level security, partition keys on expressions,
 * and everything when adb.copy_bulk is off.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/partition.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "commands/copy.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "executor/instrument.h"
#include "fmgr.h"
#include "catalog/namespace.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "parser/parsetree.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "tcop/cmdtag.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"
#include "utils/wait_event.h"

#include "adb.h"

/* adb.copy_bulk: COPY FROM into a distributed table loads shard by shard. */
static bool copy_bulk = true;

static ProcessUtility_hook_type prev_utility = NULL;
static ExecutorRun_hook_type prev_run = NULL;
static ExecutorStart_hook_type prev_start = NULL;

static void next_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						 ProcessUtilityContext context, ParamListInfo params,
						 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc);

/* An INSERT of fewer rows (estimated) goes through postgres_fdw's batches. */
#define BULK_INSERT_ROWS 100

/* Values of a serial column's sequence taken at once during a bulk load. */
#define BULK_SEQUENCE_BLOCK 10000

/* Rows parsed before they are written out (under postgres_fdw's settings). */
#define BATCH_ROWS 1000

/*
 * adb.copy_buffer: kilobytes of rows held here before they are sent to the
 * shards (the memory a bulk COPY takes; tests make it small to see several
 * rounds).
 */
static int	copy_buffer_kb = 16 * 1024;

/* The size of each CopyData message to a shard. */
#define CHUNK_BYTES (64 * 1024)


/* Where a datanode connection is in a flush. */
typedef enum ConnState
{
	CONN_IDLE,					/* nothing sent, or every COPY answered */
	CONN_SENT,					/* COPYs sent: reading their results */
	CONN_COPYIN					/* sending a shard's rows */
} ConnState;

/* A datanode (foreign server) rows go to, and postgres_fdw's connection. */
typedef struct Target
{
	Oid			serverid;
	PGconn	   *conn;
	ConnState	state;
	int		   *queue;			/* the partitions of this flush, in order */
	int			nqueue;
	int			pos;			/* the next one to send rows to */
	PGresult   *err;			/* the first error of this flush */
} Target;

/* A partition (a shard on a datanode) and its rows waiting to be sent. */
typedef struct Shard
{
	int			target;			/* index in BulkCopy.targets */
	char	   *sql;			/* COPY <shard> (<columns>) FROM STDIN */
	StringInfoData buf;			/* rows in COPY text form */
} Shard;

/* One bulk COPY's state. */
typedef struct BulkCopy
{
	Relation	rel;
	PartitionDesc pd;
	int			natts;
	FmgrInfo   *out;			/* output function of each column */
	Shard	  **shards;			/* by partition index, made on first use */
	Target	   *targets;
	int			ntargets;
	Size		buffered;		/* bytes in the shards' buffers */
	Oid			userid;
	MemoryContext cxt;			/* the shards' buffers and the rest */
} BulkCopy;

/*
 * bulk_table says whether rel is a table this file loads: a distributed
 * table (adb_is_distributed) with no trigger on it or its partitions
 * (which the bulk path would not fire), no generated column (the shards
 * compute none) and no row-level security (which PostgreSQL refuses for
 * COPY FROM).
 */
static bool
bulk_table(Relation rel)
{
	PartitionDesc pd;
	int			i;

	if (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE || rel->trigdesc != NULL ||
		(rel->rd_att->constr && rel->rd_att->constr->has_generated_stored) ||
		!adb_is_distributed(rel) ||
		check_enable_rls(RelationGetRelid(rel), InvalidOid, true) == RLS_ENABLED)
		return false;
	pd = RelationGetPartitionDesc(rel, true);
	for (i = 0; i < pd->nparts; i++)
	{
		HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(pd->oids[i]));
		bool		triggers;

		if (!HeapTupleIsValid(tup))
			return false;
		triggers = ((Form_pg_class) GETSTRUCT(tup))->relhastriggers;
		ReleaseSysCache(tup);
		if (triggers)
			return false;
	}
	return true;
}

/* has_option says whether a list of DefElems has option name. */
static bool
has_option(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
		if (strcmp(lfirst_node(DefElem, lc)->defname, name) == 0)
			return true;
	return false;
}

/* option_value is the value of option name in a list of DefElems, or NULL. */
static char *
option_value(List *options, const char *name)
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
 * make_shard sets up partition idx: its datanode (a target), the COPY
 * statement for its shard — the remote name and columns as postgres_fdw
 * names them (schema_name, table_name and column_name options, else the
 * local names) — and an empty buffer. The partition is locked as routing
 * a row to it would lock it.
 */
static Shard *
make_shard(BulkCopy *bc, int idx)
{
	Oid			part = bc->pd->oids[idx];
	ForeignTable *ft;
	TupleDesc	desc = RelationGetDescr(bc->rel);
	MemoryContext old = MemoryContextSwitchTo(bc->cxt);
	Shard	   *s = palloc0(sizeof(Shard));
	StringInfoData sql;
	char	   *nsp,
			   *name;
	bool		first = true;
	int			i;

	LockRelationOid(part, RowExclusiveLock);
	ft = GetForeignTable(part);
	for (i = 0; i < bc->ntargets; i++)
		if (bc->targets[i].serverid == ft->serverid)
			break;
	if (i == bc->ntargets)
	{
		bc->targets = repalloc(bc->targets, sizeof(Target) * (bc->ntargets + 1));
		memset(&bc->targets[i], 0, sizeof(Target));
		bc->targets[i].serverid = ft->serverid;
		bc->targets[i].state = CONN_IDLE;
		bc->ntargets++;
	}
	s->target = i;
	nsp = option_value(ft->options, "schema_name");
	name = option_value(ft->options, "table_name");
	initStringInfo(&sql);
	appendStringInfo(&sql, "COPY %s (",
					 quote_qualified_identifier(nsp ? nsp : get_namespace_name(get_rel_namespace(part)),
												name ? name : get_rel_name(part)));
	for (i = 0; i < bc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		AttrNumber	pattnum;
		char	   *col;

		if (att->attisdropped)
			continue;
		pattnum = get_attnum(part, NameStr(att->attname));
		if (pattnum == InvalidAttrNumber)
			elog(ERROR, "column \"%s\" of partition \"%s\" not found", NameStr(att->attname), get_rel_name(part));
		col = option_value(GetForeignColumnOptions(part, pattnum), "column_name");
		appendStringInfo(&sql, "%s%s", first ? "" : ", ", quote_identifier(col ? col : NameStr(att->attname)));
		first = false;
	}
	appendStringInfoString(&sql, ") FROM STDIN");
	s->sql = sql.data;
	initStringInfo(&s->buf);
	MemoryContextSwitchTo(old);
	bc->shards[idx] = s;
	return s;
}

/*
 * append_text appends s to buf as a COPY text field: backslash, newline,
 * carriage return and tab (the delimiter) escaped. The server encodings
 * are ASCII-safe: no byte of a multibyte character is one of those.
 */
static void
append_text(StringInfo buf, const char *s)
{
	const char *start = s;

	for (; *s; s++)
	{
		const char *esc;

		switch (*s)
		{
			case '\\':
				esc = "\\\\";
				break;
			case '\n':
				esc = "\\n";
				break;
			case '\r':
				esc = "\\r";
				break;
			case '\t':
				esc = "\\t";
				break;
			default:
				continue;
		}
		appendBinaryStringInfo(buf, start, s - start);
		appendBinaryStringInfo(buf, esc, 2);
		start = s + 1;
	}
	appendBinaryStringInfo(buf, start, s - start);
}

/* add_row writes a row in COPY text form into its partition's buffer. */
static void
add_row(BulkCopy *bc, int idx, Datum *values, bool *nulls)
{
	Shard	   *s = bc->shards[idx] ? bc->shards[idx] : make_shard(bc, idx);
	TupleDesc	desc = RelationGetDescr(bc->rel);
	int			before = s->buf.len;
	bool		first = true;
	int			i;

	for (i = 0; i < bc->natts; i++)
	{
		if (TupleDescAttr(desc, i)->attisdropped)
			continue;
		if (!first)
			appendStringInfoChar(&s->buf, '\t');
		first = false;
		if (nulls[i])
			appendBinaryStringInfo(&s->buf, "\\N", 2);
		else
			append_text(&s->buf, OutputFunctionCall(&bc->out[i], values[i]));
	}
	appendStringInfoChar(&s->buf, '\n');
	bc->buffered += s->buf.len - before;
}

/*
 * abandon leaves no connection inside a COPY when a flush is cut short by
 * an error (or a cancel): a datanode waiting for COPY data does not answer
 * postgres_fdw's cancel at abort, so its COPY is failed here (the rest of
 * the batch is skipped), and the abort rolls the remote transaction back.
 */
static void
abandon(BulkCopy *bc)
{
	int			i;

	for (i = 0; i < bc->ntargets; i++)
	{
		Target	   *t = &bc->targets[i];

		if (t->state == CONN_SENT && PQconsumeInput(t->conn))
		{
			while (!PQisBusy(t->conn))
			{
				PGresult   *res = PQgetResult(t->conn);
				bool		copyin = PQresultStatus(res) == PGRES_COPY_IN;

				if (res == NULL)
					break;
				PQclear(res);
				if (copyin)
				{
					t->state = CONN_COPYIN;
					break;
				}
			}
		}
		if (t->state == CONN_COPYIN)
			(void) PQputCopyEnd(t->conn, "COPY of the coordinator aborted");
		if (t->err)
			PQclear(t->err);
		t->err = NULL;
		t->state = CONN_IDLE;
	}
}

/*
 * send_rows sends shard s's rows over a connection in COPY IN state, in
 * CopyData messages of CHUNK_BYTES, and ends the COPY.
 */
static void
send_rows(Target *t, Shard *s)
{
	int			off;

	t->state = CONN_COPYIN;
	for (off = 0; off < s->buf.len; off += CHUNK_BYTES)
	{
		CHECK_FOR_INTERRUPTS();
		if (PQputCopyData(t->conn, s->buf.data + off, Min(CHUNK_BYTES, s->buf.len - off)) != 1)
			adb_fdw_report_error(ERROR, NULL, t->conn, false, s->sql);
	}
	if (PQputCopyEnd(t->conn, NULL) != 1)
		adb_fdw_report_error(ERROR, NULL, t->conn, false, s->sql);
	t->state = CONN_SENT;
}

/*
 * start sends target t the COPYs of its partitions with rows, all in one
 * query string: the datanode answers each one's rows with its result and
 * the next one's CopyInResponse at once, one round trip a shard.
 */
static void
start(BulkCopy *bc, Target *t)
{
	StringInfoData sql;
	int			i;

	t->nqueue = t->pos = 0;
	for (i = 0; i < bc->pd->nparts; i++)
		if (bc->shards[i] && bc->shards[i]->target == t - bc->targets && bc->shards[i]->buf.len > 0)
			t->queue[t->nqueue++] = i;
	if (t->nqueue == 0)
		return;
	if (t->conn == NULL)
	{
		t->conn = adb_fdw_GetConnection(GetUserMapping(bc->userid, t->serverid), false, NULL);
		/* After: postgres_fdw's first connection registers its callback. */
		adb_twophase_note_write(t->serverid, bc->userid);
		adb_dml_sync_connection(bc->userid, t->serverid);
	}
	initStringInfo(&sql);
	for (i = 0; i < t->nqueue; i++)
		appendStringInfo(&sql, "%s%s", i > 0 ? "; " : "", bc->shards[t->queue[i]]->sql);
	if (!PQsendQuery(t->conn, sql.data))
		adb_fdw_report_error(ERROR, NULL, t->conn, false, sql.data);
	pfree(sql.data);
	t->state = CONN_SENT;
}

/*
 * advance reads what target t has answered without waiting: each
 * CopyInResponse gets the next shard's rows, errors are kept. It is
 * whether anything was read.
 */
static bool
advance(BulkCopy *bc, Target *t)
{
	bool		progress = false;

	if (!PQconsumeInput(t->conn))
		adb_fdw_report_error(ERROR, NULL, t->conn, false, bc->shards[t->queue[Max(t->pos - 1, 0)]]->sql);
	while (t->state == CONN_SENT && !PQisBusy(t->conn))
	{
		PGresult   *res = PQgetResult(t->conn);

		progress = true;
		if (res == NULL)
		{
			t->state = CONN_IDLE;
			break;
		}
		switch (PQresultStatus(res))
		{
			case PGRES_COPY_IN:
				PQclear(res);
				if (t->pos < t->nqueue)
					send_rows(t, bc->shards[t->queue[t->pos++]]);
				else
				{
					t->state = CONN_COPYIN;
					(void) PQputCopyEnd(t->conn, "no rows for this COPY");
					t->state = CONN_SENT;
				}
				break;
			case PGRES_COMMAND_OK:
				PQclear(res);
				break;
			default:
				if (t->err == NULL)
					t->err = res;
				else
					PQclear(res);
				break;
		}
	}
	return progress;
}

/*
 * wait_any waits until one of the datanodes still answering (or the
 * latch: a cancel) has something to read.
 */
static void
wait_any(BulkCopy *bc)
{
	WaitEventSet *set = CreateWaitEventSet(CurrentMemoryContext, bc->ntargets + 2);
	WaitEvent	ev;
	int			i;

	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (i = 0; i < bc->ntargets; i++)
		if (bc->targets[i].state == CONN_SENT)
			AddWaitEventToSet(set, WL_SOCKET_READABLE, PQsocket(bc->targets[i].conn), NULL, NULL);
	(void) WaitEventSetWait(set, -1, &ev, 1, PG_WAIT_EXTENSION);
	FreeWaitEventSet(set);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/*
 * send_all sends every partition's buffered rows to its shard, the
 * datanodes at once, each at its own pace. The first error is raised once
 * every connection is out of its COPYs.
 */
static void
send_all(BulkCopy *bc)
{
	Target	   *failed = NULL;
	int			i;

	for (i = 0; i < bc->ntargets; i++)
		start(bc, &bc->targets[i]);
	for (;;)
	{
		bool		busy = false;
		bool		progress = false;

		for (i = 0; i < bc->ntargets; i++)
			if (bc->targets[i].state == CONN_SENT)
			{
				progress |= advance(bc, &bc->targets[i]);
				busy |= bc->targets[i].state == CONN_SENT;
			}
		if (!busy)
			break;
		if (!progress)
			wait_any(bc);
	}
	for (i = 0; i < bc->ntargets; i++)
		if (bc->targets[i].err && failed == NULL)
			failed = &bc->targets[i];
	if (failed)
	{
		PGresult   *err = failed->err;

		failed->err = NULL;
		adb_fdw_report_error(ERROR, err, failed->conn, true, bc->shards[failed->queue[Max(failed->pos - 1, 0)]]->sql);
	}
}

/*
 * flush sends every partition's buffered rows to its shard and empties
 * the buffers.
 */
static void
flush(BulkCopy *bc)
{
	int			i;

	if (bc->buffered == 0)
		return;
	for (i = 0; i < bc->ntargets; i++)
		if (bc->targets[i].queue == NULL)
			bc->targets[i].queue = MemoryContextAlloc(bc->cxt, sizeof(int) * bc->pd->nparts);
	PG_TRY();
	{
		send_all(bc);
	}
	PG_CATCH();
	{
		abandon(bc);
		PG_RE_THROW();
	}
	PG_END_TRY();
	for (i = 0; i < bc->pd->nparts; i++)
		if (bc->shards[i])
			resetStringInfo(&bc->shards[i]->buf);
	bc->buffered = 0;
}

/*
 * bulk_begin sets up bc for a bulk load into rel and is the GUC nest
 * level to end with AtEOXact_GUC: a serial column's default,
 * adb.dist_nextval (ddl.c), takes adb.sequence_block values per round
 * trip to the gtmcoord master (a commit there that waits for its sync
 * slave), so for the length of a bulk load it takes BULK_SEQUENCE_BLOCK
 * at least: 10 round trips for 100,000 rows instead of 1,000.
 */
static int
bulk_begin(BulkCopy *bc, Relation rel)
{
	const char *block;
	int			nest;
	int			i;

	memset(bc, 0, sizeof(*bc));
	bc->cxt = AllocSetContextCreate(CurrentMemoryContext, "adb bulk load", ALLOCSET_DEFAULT_SIZES);
	bc->rel = rel;
	bc->pd = RelationGetPartitionDesc(rel, true);
	bc->natts = RelationGetDescr(rel)->natts;
	bc->userid = GetUserId();
	bc->shards = MemoryContextAllocZero(bc->cxt, sizeof(Shard *) * bc->pd->nparts);
	bc->targets = MemoryContextAllocZero(bc->cxt, sizeof(Target));
	bc->out = MemoryContextAllocZero(bc->cxt, sizeof(FmgrInfo) * bc->natts);
	for (i = 0; i < bc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), i);
		Oid			func;
		bool		varlena;

		if (att->attisdropped)
			continue;
		getTypeOutputInfo(att->atttypid, &func, &varlena);
		fmgr_info_cxt(func, &bc->out[i], bc->cxt);
	}
	nest = NewGUCNestLevel();
	block = GetConfigOption("adb.sequence_block", true, false);
	if (block != NULL && atoi(block) < BULK_SEQUENCE_BLOCK)
		(void) set_config_option("adb.sequence_block", CppAsString2(BULK_SEQUENCE_BLOCK), PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

/*
 * bulk_copy loads COPY stmt into rel (opened and locked) and is the
 * number of rows. The checks are DoCopy's: INSERT on the columns, a
 * read-write transaction.
 */
static uint64
bulk_copy(CopyStmt *stmt, Relation rel, const char *queryString, QueryEnvironment *queryEnv)
{
	ParseState *pstate = make_parsestate(NULL);
	ParseNamespaceItem *nsitem;
	RangeTblEntry *rte;
	ListCell   *lc;
	CopyFromState cstate;
	EState	   *estate;
	ExprContext *econtext;
	ErrorContextCallback errcallback;
	BulkCopy	bc;
	Datum	   *values;
	bool	   *nulls;
	int		   *parts;
	uint64		processed = 0;
	bool		done = false;
	int			guc_nest;
	int			i;

	pstate->p_sourcetext = queryString;
	pstate->p_queryEnv = queryEnv;
	nsitem = addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, NULL, false, false);
	rte = nsitem->p_rte;
	rte->requiredPerms = ACL_INSERT;
	foreach(lc, CopyGetAttnums(RelationGetDescr(rel), rel, stmt->attlist))
		rte->insertedCols = bms_add_member(rte->insertedCols, lfirst_int(lc) - FirstLowInvalidHeapAttributeNumber);
	ExecCheckRTPerms(pstate->p_rtable, true);
	if (XactReadOnly && !rel->rd_islocaltemp)
		PreventCommandIfReadOnly("COPY FROM");

	guc_nest = bulk_begin(&bc, rel);
	values = MemoryContextAlloc(bc.cxt, sizeof(Datum) * bc.natts * BATCH_ROWS);
	nulls = MemoryContextAlloc(bc.cxt, sizeof(bool) * bc.natts * BATCH_ROWS);
	parts = MemoryContextAlloc(bc.cxt, sizeof(int) * BATCH_ROWS);

	cstate = BeginCopyFrom(pstate, rel, NULL, stmt->filename, stmt->is_program, NULL,
						   stmt->attlist, stmt->options);
	estate = CreateExecutorState();
	econtext = GetPerTupleExprContext(estate);
	errcallback.callback = CopyFromErrorCallback;
	errcallback.arg = (void *) cstate;
	while (!done)
	{
		MemoryContext old;
		int			n = 0;
		int			nest;

		/*
		 * Parse a batch with the user's settings (DateStyle…), then write
		 * it out with postgres_fdw's, which the datanodes read back.
		 */
		old = MemoryContextSwitchTo(GetPerTupleMemoryContext(estate));
		errcallback.previous = error_context_stack;
		error_context_stack = &errcallback;
		while (n < BATCH_ROWS)
		{
			CHECK_FOR_INTERRUPTS();
			if (!NextCopyFrom(cstate, econtext, values + n * bc.natts, nulls + n * bc.natts))
			{
				done = true;
				break;
			}
			parts[n] = adb_route_row(bc.rel, bc.pd, values + n * bc.natts, nulls + n * bc.natts);
			n++;
		}
		error_context_stack = errcallback.previous;
		nest = adb_fdw_set_transmission_modes();
		for (i = 0; i < n; i++)
			add_row(&bc, parts[i], values + i * bc.natts, nulls + i * bc.natts);
		adb_fdw_reset_transmission_modes(nest);
		MemoryContextSwitchTo(old);
		ResetPerTupleExprContext(estate);
		processed += n;
		if (bc.buffered >= (Size) copy_buffer_kb * 1024)
			flush(&bc);
	}
	flush(&bc);
	AtEOXact_GUC(true, guc_nest);
	EndCopyFrom(cstate);
	FreeExecutorState(estate);
	MemoryContextDelete(bc.cxt);
	return processed;
}

/*
 * bulk_insert_rel is the table an INSERT of qd loads in bulk, or NULL.
 * Only the plain shape is: one ModifyTable inserting into a table
 * bulk_table takes, with no RETURNING, ON CONFLICT or WITH CHECK OPTION,
 * not under EXPLAIN ANALYZE; no connection to the datanodes has a scan's
 * fetch pending (the rows go out on those connections); the source
 * returns the table's columns first, in order (as the planner makes an
 * INSERT's). A source that reads foreign tables (*drain: read whole
 * first, see wrap_walker) takes this path whatever its size; otherwise
 * only BULK_INSERT_ROWS rows or more (estimated) do: below that
 * postgres_fdw's batches do as well.
 */
static Relation
bulk_insert_rel(QueryDesc *qd, bool *drain)
{
	PlannedStmt *ps = qd->plannedstmt;
	ModifyTable *mt = (ModifyTable *) ps->planTree;
	Plan	   *src = outerPlan(mt);
	Relation	rel;
	TupleDesc	desc;
	PartitionDesc pd;
	List	   *servers = NIL;
	ListCell   *lc;
	int			i = 0;

	if (!copy_bulk || qd->operation != CMD_INSERT || qd->instrument_options != 0 ||
		ps->hasReturning || ps->hasModifyingCTE || !IsA(mt, ModifyTable) ||
		mt->operation != CMD_INSERT || list_length(mt->resultRelations) != 1 ||
		mt->returningLists != NIL || mt->onConflictAction != ONCONFLICT_NONE ||
		mt->withCheckOptionLists != NIL || src == NULL)
		return NULL;
	*drain = adb_plan_foreign_scans(src) != 0;
	foreach(lc, ps->subplans)
		*drain |= adb_plan_foreign_scans(lfirst(lc)) != 0;
	if (!*drain && src->plan_rows < BULK_INSERT_ROWS)
		return NULL;
	rel = ((ModifyTableState *) qd->planstate)->resultRelInfo[0].ri_RelationDesc;
	if (!bulk_table(rel))
		return NULL;
	desc = RelationGetDescr(rel);
	foreach(lc, src->targetlist)
	{
		TargetEntry *te = lfirst(lc);

		if (i >= desc->natts)
		{
			if (!te->resjunk)
				return NULL;
			continue;
		}
		if (te->resjunk || te->resno != i + 1 ||
			(!TupleDescAttr(desc, i)->attisdropped &&
			 exprType((Node *) te->expr) != TupleDescAttr(desc, i)->atttypid))
			return NULL;
		i++;
	}
	if (i != desc->natts)
		return NULL;
	pd = RelationGetPartitionDesc(rel, true);
	for (i = 0; i < pd->nparts; i++)
		servers = list_append_unique_oid(servers, GetForeignServerIdByRelId(pd->oids[i]));
	foreach(lc, servers)
	{
		PgFdwConnState *state;

		(void) adb_fdw_GetConnection(GetUserMapping(GetUserId(), lfirst_oid(lc)), false, &state);
		if (adb_fdw_pending(state))
			return NULL;
	}
	return rel;
}

/*
 * bulk_insert runs the INSERT of qd into rel (bulk_insert_rel) as a bulk
 * COPY does: the source's rows, a batch at a time, evaluated with the
 * user's settings (DateStyle…) and kept, then routed and written out in
 * COPY form with postgres_fdw's, and sent to the shards. A source that
 * reads foreign tables was drained by adb_copy_start: read whole (into a
 * tuplestore, work_mem then disk) at its first row. Constraints are the shards' (as through postgres_fdw); the row count is
 * the statement's.
 */
static void
bulk_insert(QueryDesc *qd, Relation rel)
{
	EState	   *estate = qd->estate;
	PlanState  *src = outerPlanState(qd->planstate);
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext old = MemoryContextSwitchTo(estate->es_query_cxt);
	MemoryContext batch;
	BulkCopy	bc;
	HeapTuple  *rows;
	int		   *parts;
	Datum	   *values;
	bool	   *nulls;
	uint64		processed = 0;
	bool		done = false;
	int			guc_nest = bulk_begin(&bc, rel);

	batch = AllocSetContextCreate(bc.cxt, "adb bulk INSERT rows", ALLOCSET_DEFAULT_SIZES);
	rows = MemoryContextAlloc(bc.cxt, sizeof(HeapTuple) * BATCH_ROWS);
	parts = MemoryContextAlloc(bc.cxt, sizeof(int) * BATCH_ROWS);
	values = MemoryContextAlloc(bc.cxt, sizeof(Datum) * bc.natts);
	nulls = MemoryContextAlloc(bc.cxt, sizeof(bool) * bc.natts);
	while (!done)
	{
		MemoryContext prev;
		int			n = 0;
		int			nest;
		int			i;

		while (n < BATCH_ROWS)
		{
			TupleTableSlot *slot;

			CHECK_FOR_INTERRUPTS();
			slot = ExecProcNode(src);
			if (TupIsNull(slot))
			{
				done = true;
				break;
			}
			slot_getallattrs(slot);
			parts[n] = adb_route_row(bc.rel, bc.pd, slot->tts_values, slot->tts_isnull);
			prev = MemoryContextSwitchTo(batch);
			rows[n++] = heap_form_tuple(desc, slot->tts_values, slot->tts_isnull);
			MemoryContextSwitchTo(prev);
		}
		nest = adb_fdw_set_transmission_modes();
		prev = MemoryContextSwitchTo(batch);
		for (i = 0; i < n; i++)
		{
			heap_deform_tuple(rows[i], desc, values, nulls);
			add_row(&bc, parts[i], values, nulls);
		}
		MemoryContextSwitchTo(prev);
		adb_fdw_reset_transmission_modes(nest);
		MemoryContextReset(batch);
		processed += n;
		if (bc.buffered >= (Size) copy_buffer_kb * 1024)
			flush(&bc);
	}
	flush(&bc);
	AtEOXact_GUC(true, guc_nest);
	MemoryContextDelete(bc.cxt);
	estate->es_processed += processed;
	MemoryContextSwitchTo(old);
}

/*
 * Drain is an INSERT's source read whole before the INSERT gets its first
 * row (see wrap_sources), kept in a tuplestore.
 */
typedef struct Drain
{
	PlanState  *ps;
	ExecProcNodeMtd real;		/* the source's own ExecProcNodeReal */
	Tuplestorestate *store;
	TupleTableSlot *slot;
	bool		filled;
	MemoryContextCallback forget;
} Drain;

/* The drains of the queries running (TopMemoryContext). */
static List *drains = NIL;

/* drain_exec stands for a drained source's ExecProcNode. */
static TupleTableSlot *
drain_exec(PlanState *ps)
{
	Drain	   *d = NULL;
	ListCell   *lc;

	foreach(lc, drains)
	{
		if (((Drain *) lfirst(lc))->ps == ps)
		{
			d = lfirst(lc);
			break;
		}
	}
	if (d == NULL)
		elog(ERROR, "adb: drained plan node not found");
	if (!d->filled)
	{
		MemoryContext old = MemoryContextSwitchTo(ps->state->es_query_cxt);

		for (;;)
		{
			TupleTableSlot *slot;

			CHECK_FOR_INTERRUPTS();
			slot = d->real(ps);
			if (TupIsNull(slot))
				break;
			tuplestore_puttupleslot(d->store, slot);
		}
		d->filled = true;
		MemoryContextSwitchTo(old);
	}
	if (d->store == NULL || !tuplestore_gettupleslot(d->store, true, false, d->slot))
	{
		/* Read to the end: its temporary files go now (an error's, at abort). */
		if (d->store != NULL)
			tuplestore_end(d->store);
		d->store = NULL;
		return NULL;
	}
	return d->slot;
}

/* drain_forget takes a drain out of the list when its query ends. */
static void
drain_forget(void *arg)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	drains = list_delete_ptr(drains, arg);
	MemoryContextSwitchTo(old);
}

/*
 * wrap_walker drains the source of each INSERT into a distributed table
 * in the plan: through postgres_fdw, a slot's scan that starts after rows
 * were sent to its shard, in the same remote transaction, reads them too,
 * so an INSERT … SELECT reading the table it writes (with RETURNING,
 * inside WITH, through a view WITH CHECK OPTION: the shapes bulk_insert
 * does not take) copied rows twice. Only statements that read foreign
 * tables get here (adb_copy_start).
 */
static bool
wrap_walker(PlanState *ps, void *context)
{
	if (ps == NULL)
		return false;
	/* (A WITH's plan is both an init plan here and one of es_subplanstates.) */
	if (IsA(ps, ModifyTableState) && ((ModifyTableState *) ps)->operation == CMD_INSERT &&
		outerPlanState(ps) != NULL && outerPlanState(ps)->ExecProcNodeReal != drain_exec &&
		adb_looks_distributed(((ModifyTableState *) ps)->resultRelInfo[0].ri_RelationDesc))
	{
		PlanState  *src = outerPlanState(ps);
		EState	   *estate = ps->state;
		MemoryContext old = MemoryContextSwitchTo(estate->es_query_cxt);
		Drain	   *d = palloc0(sizeof(Drain));

		d->ps = src;
		d->real = src->ExecProcNodeReal;
		d->store = tuplestore_begin_heap(false, false, work_mem);
		d->slot = ExecAllocTableSlot(&estate->es_tupleTable, ExecGetResultType(src), &TTSOpsMinimalTuple);
		d->forget.func = drain_forget;
		d->forget.arg = d;
		MemoryContextRegisterResetCallback(estate->es_query_cxt, &d->forget);
		MemoryContextSwitchTo(TopMemoryContext);
		drains = lappend(drains, d);
		MemoryContextSwitchTo(old);
		src->ExecProcNodeReal = drain_exec;
	}
	return planstate_tree_walker(ps, wrap_walker, context);
}

/* A ModifyTable of a statement: its command and the relations it writes. */
typedef struct Write
{
	CmdType		op;
	Bitmapset  *rels;			/* range table indexes */
} Write;

/* result_rels adds plan's ModifyTables to *writes. */
static void
result_rels(Plan *plan, List **writes)
{
	List	   *more = NIL;
	ListCell   *lc;

	if (plan == NULL)
		return;
	if (IsA(plan, ModifyTable))
	{
		ModifyTable *mt = (ModifyTable *) plan;
		Write	   *w = palloc0(sizeof(Write));

		w->op = mt->operation;
		foreach(lc, mt->resultRelations)
			w->rels = bms_add_member(w->rels, lfirst_int(lc));
		if (mt->rootRelation > 0)
			w->rels = bms_add_member(w->rels, mt->rootRelation);
		*writes = lappend(*writes, w);
	}
	result_rels(plan->lefttree, writes);
	result_rels(plan->righttree, writes);
	if (IsA(plan, Append))
		more = ((Append *) plan)->appendplans;
	else if (IsA(plan, MergeAppend))
		more = ((MergeAppend *) plan)->mergeplans;
	else if (IsA(plan, SubqueryScan))
		more = list_make1(((SubqueryScan *) plan)->subplan);
	else if (IsA(plan, CustomScan))
		more = ((CustomScan *) plan)->custom_plans;
	foreach(lc, more)
		result_rels(lfirst(lc), writes);
}

/* dist_of is the distributed table relid is or is a partition of, or InvalidOid. */
static Oid
dist_of(Oid relid)
{
	Relation	rel;
	bool		dist;

	if (get_rel_relkind(relid) == RELKIND_FOREIGN_TABLE && get_rel_relispartition(relid))
		relid = get_partition_parent(relid, true);
	if (get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return InvalidOid;
	rel = relation_open(relid, NoLock);
	dist = adb_looks_distributed(rel);
	relation_close(rel, NoLock);
	return dist ? relid : InvalidOid;
}

/* refuse_with_parts is check_with_parts' refusal, for table dist. */
static void
refuse_with_parts(Oid dist)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("a statement whose WITH writes distributed table \"%s\" and that reads or changes it in another part is not supported",
					get_rel_name(dist)),
			 errdetail("Its parts would see each other's writes on the datanodes."),
			 errhint("Run the parts as statements of their own, in one transaction.")));
}

/*
 * check_with_parts refuses a statement with data-modifying WITH in which
 * one part writes a distributed table another part reads, or two parts
 * write it and one of them updates or deletes. Each part reads as of the
 * statement's start, and PostgreSQL lets only one of two changes of a
 * row take effect; through postgres_fdw the parts run one after the
 * other in the same remote transactions, so a later part sees, and
 * changes again, what an earlier one wrote. (This also refuses an INSERT
 * in WITH from the table it writes, which its drained source would have
 * made safe.)
 */
static void
check_with_parts(PlannedStmt *ps)
{
	Bitmapset  *written = NULL;
	List	   *writes = NIL;
	List	   *wrote = NIL;
	List	   *changed = NIL;		/* by an UPDATE or DELETE */
	ListCell   *lc;
	ListCell   *wc;
	int			i = 0;

	result_rels(ps->planTree, &writes);
	foreach(lc, ps->subplans)
		result_rels(lfirst(lc), &writes);
	foreach(wc, writes)
	{
		Write	   *w = lfirst(wc);
		List	   *mine = NIL;

		written = bms_union(written, w->rels);
		i = -1;
		while ((i = bms_next_member(w->rels, i)) >= 0)
		{
			RangeTblEntry *rte = rt_fetch(i, ps->rtable);
			Oid			dist;

			if (rte->rtekind == RTE_RELATION && OidIsValid(dist = dist_of(rte->relid)))
				mine = list_append_unique_oid(mine, dist);
		}
		foreach(lc, mine)
		{
			Oid			dist = lfirst_oid(lc);

			if (list_member_oid(wrote, dist) &&
				(w->op != CMD_INSERT || list_member_oid(changed, dist)))
				refuse_with_parts(dist);
			wrote = lappend_oid(wrote, dist);
			if (w->op != CMD_INSERT)
				changed = lappend_oid(changed, dist);
		}
	}
	i = 0;
	foreach(lc, ps->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);
		Oid			dist;

		i++;
		if (rte->rtekind == RTE_RELATION && !bms_is_member(i, written) &&
			OidIsValid(dist = dist_of(rte->relid)) && list_member_oid(wrote, dist))
			refuse_with_parts(dist);
	}
}

/*
 * adb_copy_start is the ExecutorStart hook: an INSERT (or a WITH holding
 * one) that reads foreign tables gets its sources drained (wrap_walker).
 */
static void
adb_copy_start(QueryDesc *qd, int eflags)
{
	PlannedStmt *ps = qd->plannedstmt;
	ListCell   *lc;
	int			n;

	if (prev_start)
		prev_start(qd, eflags);
	else
		standard_ExecutorStart(qd, eflags);
	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) || (ps->commandType != CMD_INSERT && !ps->hasModifyingCTE))
		return;
	n = adb_plan_foreign_scans(ps->planTree);
	foreach(lc, ps->subplans)
		n += adb_plan_foreign_scans(lfirst(lc));
	if (n == 0)
		return;
	if (ps->hasModifyingCTE)
		check_with_parts(ps);
	wrap_walker(qd->planstate, NULL);
	foreach(lc, qd->estate->es_subplanstates)
		wrap_walker(lfirst(lc), NULL);
}

/*
 * adb_copy_run is the ExecutorRun hook: an INSERT that bulk_insert_rel
 * takes is loaded by bulk_insert; everything else runs as it would.
 */
static void
adb_copy_run(QueryDesc *qd, ScanDirection direction, uint64 count, bool execute_once)
{
	bool		drain = false;
	Relation	rel = ScanDirectionIsForward(direction) ? bulk_insert_rel(qd, &drain) : NULL;
	ErrorContextCallback hide;

	/* A role's errors from the datanodes lose their failing rows (dml.c). */
	hide.callback = adb_hide_failing_row;
	hide.arg = NULL;
	hide.previous = error_context_stack;
	if (!superuser())
		error_context_stack = &hide;
	if (rel == NULL)
	{
		if (prev_run)
			prev_run(qd, direction, count, execute_once);
		else
			standard_ExecutorRun(qd, direction, count, execute_once);
	}
	else
	{
		if (qd->totaltime)
			InstrStartNode(qd->totaltime);
		bulk_insert(qd, rel);
		if (qd->totaltime)
			InstrStopNode(qd->totaltime, qd->estate->es_processed);
	}
	error_context_stack = hide.previous;
}

/*
 * copy_unpinned runs a COPY FROM into a plain table (on a datanode, a
 * shard's, from a coordinator's bulk load) with the table's row type not
 * reference-counted while it runs. PostgreSQL 15's COPY makes up to 1000
 * tuple slots (MAX_BUFFERED_TUPLES), each pinning the relation's
 * TupleDesc in the resource owner, whose hash takes linear probes for
 * each add and remove of the same entry: a COPY of 1000 rows or more
 * costs about a million probes, whatever its size. A bulk load sends each
 * datanode one COPY per shard (32 for 64 slots on two datanodes), and
 * those probes were more than half of a datanode's time. Slots of a
 * descriptor whose tdrefcount is -1 neither pin nor unpin it, and COPY
 * drops every slot it makes before it returns. The table stays locked
 * (RowExclusiveLock, as COPY takes it), so its columns cannot change;
 * were the relcache entry rebuilt with another descriptor meanwhile
 * (ALTER … SET STATISTICS takes a weaker lock), the old one would only
 * stay allocated. Tables with triggers are left alone: trigger slots may
 * outlive the statement.
 */
static void
copy_unpinned(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			  ProcessUtilityContext context, ParamListInfo params,
			  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	CopyStmt   *stmt = (CopyStmt *) pstmt->utilityStmt;
	Relation	rel = table_openrv(stmt->relation, RowExclusiveLock);
	TupleDesc	desc = RelationGetDescr(rel);
	int			refcount = desc->tdrefcount;

	if (rel->trigdesc != NULL || refcount < 0)
	{
		table_close(rel, NoLock);
		next_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		return;
	}
	desc->tdrefcount = -1;
	PG_TRY();
	{
		next_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		desc->tdrefcount = refcount;
	}
	PG_END_TRY();
	table_close(rel, NoLock);
}

/*
 * adb_copy_utility is the ProcessUtility hook: a COPY FROM into a
 * distributed table that bulk_copy can load is loaded there; everything
 * else goes on down the chain.
 */
static void
adb_copy_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				 ProcessUtilityContext context, ParamListInfo params,
				 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	CopyStmt   *stmt = (CopyStmt *) pstmt->utilityStmt;

	if (copy_bulk && IsA(stmt, CopyStmt) && stmt->is_from && stmt->relation != NULL &&
		stmt->query == NULL && stmt->whereClause == NULL && !has_option(stmt->options, "freeze") &&
		IsTransactionState() && !RecoveryInProgress() &&
		get_rel_relkind(RangeVarGetRelid(stmt->relation, NoLock, true)) == RELKIND_PARTITIONED_TABLE &&
		(stmt->filename == NULL ||
		 has_privs_of_role(GetUserId(), stmt->is_program ? ROLE_PG_EXECUTE_SERVER_PROGRAM : ROLE_PG_READ_SERVER_FILES)))
	{
		Relation	rel = table_openrv(stmt->relation, RowExclusiveLock);

		if (bulk_table(rel))
		{
			ErrorContextCallback hide = {error_context_stack, adb_hide_failing_row, NULL};
			uint64		processed;

			if (!superuser())
				error_context_stack = &hide;
			processed = bulk_copy(stmt, rel, queryString, queryEnv);
			error_context_stack = hide.previous;

			table_close(rel, NoLock);
			if (qc)
				SetQueryCompletion(qc, CMDTAG_COPY, processed);
			/* As standard_ProcessUtility ends every statement. */
			CommandCounterIncrement();
			return;
		}
		table_close(rel, NoLock);
	}
	else if (copy_bulk && IsA(stmt, CopyStmt) && stmt->is_from && stmt->relation != NULL &&
			 stmt->query == NULL && IsTransactionState() &&
			 get_rel_relkind(RangeVarGetRelid(stmt->relation, NoLock, true)) == RELKIND_RELATION)
	{
		copy_unpinned(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		return;
	}
	next_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

/* next_utility runs the rest of the ProcessUtility chain. */
static void
next_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			 ProcessUtilityContext context, ParamListInfo params,
			 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (prev_utility)
		prev_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

/* adb_copy_init defines adb.copy_bulk and adb.copy_buffer and installs the hook. */
void
adb_copy_init(void)
{
	DefineCustomBoolVariable("adb.copy_bulk",
							 "COPY FROM and INSERT … SELECT into a distributed table send the rows to each shard in bulk.",
							 "Off: PostgreSQL routes each row to its foreign partition (COPY: one remote INSERT a row; INSERT: postgres_fdw's batches).",
							 &copy_bulk, true, PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("adb.copy_buffer",
							"How much of a bulk COPY's rows a coordinator holds before it sends them to the shards.",
							NULL, &copy_buffer_kb, 16 * 1024, 64, 1024 * 1024, PGC_USERSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
	prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = adb_copy_utility;
	prev_run = ExecutorRun_hook;
	ExecutorRun_hook = adb_copy_run;
	prev_start = ExecutorStart_hook;
	ExecutorStart_hook = adb_copy_start;
}
