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
 * one PostgreSQL's hash partitioning would route it to (adb_route_row,
 * fdw.c); the rows are written out in COPY text form, each after its
 * shard's position, and each datanode gets one COPY for all its shards
 * (shardcopy.c takes it there) over postgres_fdw's own connection — in
 * postgres_fdw's remote transaction, the one this transaction's other
 * reads and writes of the table use, with the datanodes counted as
 * writers (adb_twophase_note_write) so that several of them commit by
 * two-phase commit. The rows stream out as they are read (CHUNK_BYTES at
 * a time), the datanodes loading meanwhile, unless something run for a
 * row might query a datanode through those connections (stream_safe):
 * then they are held up to adb.copy_buffer and sent in rounds, each
 * finished before more rows are read. Any error (a bad input line, with
 * its line number; a duplicate key on a shard, with the shard's SQLSTATE)
 * aborts the transaction, and with it every remote one: nothing stays
 * anywhere.
 *
 * An INSERT … SELECT into such a table takes the same path (an
 * ExecutorRun hook, bulk_insert): PostgreSQL plans and runs the SELECT
 * (defaults filled by the planner), and its rows are routed, written out
 * and sent as COPY's are, in rounds (a function of the SELECT may query
 * a datanode), instead of postgres_fdw's batches of batch_size rows, one
 * round trip each, shard after shard. A SELECT that
 * reads distributed tables is read whole first (see bulk_insert_rel).
 *
 * What this does not handle goes PostgreSQL's way, row by row: COPY TO,
 * COPY of a query, COPY FROM with WHERE or FREEZE, tables with triggers,
 * generated columns or row-level security, partition keys on expressions
 * or several columns, and everything when adb.copy_bulk is off.
 */
#include "postgres.h"

#include <sys/socket.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/transam.h"
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
#include "rewrite/rewriteHandler.h"
#include "storage/ipc.h"
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

/* adb.copy_stream: a bulk COPY's rows go out as they are read (stream_safe). */
static bool copy_stream = true;

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
 * datanodes, when they cannot stream (the memory such a load takes; tests
 * make it small to see several rounds).
 */
static int	copy_buffer_kb = 16 * 1024;

/* How long an aborted load waits for a datanode to ask for rows (abandon). */
#define ABANDON_WAIT_MS 10000

/* The size of each CopyData message to a shard. */
#define CHUNK_BYTES (64 * 1024)


/* Where a datanode connection is in a load. */
typedef enum ConnState
{
	CONN_IDLE,					/* no COPY sent, or its result read */
	CONN_SENT,					/* COPY sent: waiting to be asked for rows,
								 * or (after CopyDone) for its result */
	CONN_COPYIN					/* sending rows */
} ConnState;

/*
 * A datanode (foreign server) rows go to, postgres_fdw's connection, and
 * its COPY: one for all its shards (shardcopy.c), each line the shard's
 * position in the COPY's adb_shards, a tab and the row.
 */
typedef struct Target
{
	Oid			serverid;
	PGconn	   *conn;
	ConnState	state;
	StringInfoData sql;			/* COPY <shard> (<columns>) FROM STDIN WITH
								 * (adb_shards (…)) */
	char	   *columns;		/* (<columns>) of its first shard */
	char	   *label;			/* the COPY in errors' context, shards not listed */
	int			nshards;
	StringInfoData rows;		/* lines not sent yet */
	PGresult   *err;			/* the first error */
} Target;

/* A partition (a shard on a datanode). */
typedef struct Shard
{
	int			target;			/* index in BulkCopy.targets */
	char		prefix[16];		/* its position in the target's adb_shards, a tab */
	int			prefixlen;
} Shard;

/* One bulk load's state. */
typedef struct BulkCopy
{
	Relation	rel;
	PartitionDesc pd;
	int			natts;
	FmgrInfo   *out;			/* output function of each column */
	Shard	   *shards;			/* by partition index */
	Target	   *targets;
	int			ntargets;
	Size		buffered;		/* bytes in the targets' lines not sent */
	bool		stream;			/* lines go out as they are written */
	Oid			userid;
	MemoryContext cxt;			/* the targets' lines and the rest */
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

/*
 * make_shards sets up each partition: its datanode (a target), whose COPY
 * names it — the remote name and columns as postgres_fdw names them
 * (schema_name, table_name and column_name options, else the local
 * names). The partitions are locked as routing rows to them would lock
 * them.
 */
static void
make_shards(BulkCopy *bc)
{
	TupleDesc	desc = RelationGetDescr(bc->rel);
	MemoryContext old = MemoryContextSwitchTo(bc->cxt);
	int			idx;

	bc->shards = palloc0(sizeof(Shard) * bc->pd->nparts);
	bc->targets = palloc0(sizeof(Target) * bc->pd->nparts);
	for (idx = 0; idx < bc->pd->nparts; idx++)
	{
		Oid			part = bc->pd->oids[idx];
		ForeignTable *ft;
		Target	   *t;
		StringInfoData cols;
		char	   *shard;
		bool		first = true;
		int			i;

		LockRelationOid(part, RowExclusiveLock);
		ft = GetForeignTable(part);
		for (i = 0; i < bc->ntargets; i++)
			if (bc->targets[i].serverid == ft->serverid)
				break;
		t = &bc->targets[i];
		if (i == bc->ntargets)
		{
			t->serverid = ft->serverid;
			t->state = CONN_IDLE;
			initStringInfo(&t->sql);
			initStringInfo(&t->rows);
			bc->ntargets++;
		}
		shard = adb_remote_name_of(ft, get_namespace_name(get_rel_namespace(part)), get_rel_name(part));
		initStringInfo(&cols);
		appendStringInfoChar(&cols, '(');
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
			col = adb_option_value(GetForeignColumnOptions(part, pattnum), "column_name");
			appendStringInfo(&cols, "%s%s", first ? "" : ", ", quote_identifier(col ? col : NameStr(att->attname)));
			first = false;
		}
		appendStringInfoChar(&cols, ')');
		if (t->nshards == 0)
		{
			t->columns = cols.data;
			appendStringInfo(&t->sql, "COPY %s %s FROM STDIN WITH (adb_shards (", shard, cols.data);
			t->label = pstrdup(t->sql.data);
		}
		else if (strcmp(t->columns, cols.data) != 0)
			elog(ERROR, "shards of \"%s\" on one datanode name their columns differently", RelationGetRelationName(bc->rel));
		appendStringInfo(&t->sql, "%s%s", t->nshards > 0 ? ", " : "", quote_literal_cstr(shard));
		bc->shards[idx].target = t - bc->targets;
		bc->shards[idx].prefixlen = snprintf(bc->shards[idx].prefix, sizeof(bc->shards[idx].prefix), "%d\t", t->nshards);
		t->nshards++;
	}
	for (idx = 0; idx < bc->ntargets; idx++)
	{
		Target	   *t = &bc->targets[idx];

		appendStringInfoString(&t->sql, "))");
		t->label = psprintf("%s… %d shards))", t->label, t->nshards);
	}
	MemoryContextSwitchTo(old);
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

/*
 * add_row writes a row in COPY text form, after its shard's position, into
 * its datanode's lines.
 */
static void
add_row(BulkCopy *bc, int idx, Datum *values, bool *nulls)
{
	Shard	   *s = &bc->shards[idx];
	StringInfo	buf = &bc->targets[s->target].rows;
	TupleDesc	desc = RelationGetDescr(bc->rel);
	int			before = buf->len;
	bool		first = true;
	int			i;

	appendBinaryStringInfo(buf, s->prefix, s->prefixlen);
	for (i = 0; i < bc->natts; i++)
	{
		if (TupleDescAttr(desc, i)->attisdropped)
			continue;
		if (!first)
			appendStringInfoChar(buf, '\t');
		first = false;
		if (nulls[i])
			appendBinaryStringInfo(buf, "\\N", 2);
		else
			append_text(buf, OutputFunctionCall(&bc->out[i], values[i]));
	}
	appendStringInfoChar(buf, '\n');
	bc->buffered += buf->len - before;
}

/*
 * end_abandoned fails target t's COPY (the connection in non-blocking
 * mode, see copy_started). A datanode that does not read (its COPY waits
 * for a lock) gets a cancel, so that it takes what is queued, until end.
 */
static void
end_abandoned(Target *t, TimestampTz end)
{
	bool		cancelled = false;

	(void) PQputCopyEnd(t->conn, "COPY of the coordinator aborted");
	while (PQflush(t->conn) == 1)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);

		if (left <= 0)
			return;				/* abandon cuts the connection */
		if (!cancelled)
		{
			PGcancel   *cancel = PQgetCancel(t->conn);
			char		errbuf[256];

			if (cancel)
			{
				(void) PQcancel(cancel, errbuf, sizeof(errbuf));
				PQfreeCancel(cancel);
			}
			cancelled = true;
		}
		(void) WaitLatchOrSocket(NULL, WL_SOCKET_WRITEABLE | WL_SOCKET_READABLE | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 PQsocket(t->conn), left, PG_WAIT_EXTENSION);
		(void) PQconsumeInput(t->conn);
	}
}

/*
 * abandon leaves no connection inside a COPY when a load is cut short by
 * an error (a bad input line, a datanode's error) or a cancel: a datanode
 * waiting for COPY data does not answer postgres_fdw's cancel at abort,
 * so a connection whose COPY was sent is read (up to ABANDON_WAIT_MS in
 * all) until its datanode asks for rows, and each COPY still asking for
 * rows is failed; every connection goes back to blocking mode; the abort
 * rolls the remote transaction back.
 */
static void
abandon(BulkCopy *bc)
{
	TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ABANDON_WAIT_MS);
	int			i;

	for (i = 0; i < bc->ntargets; i++)
	{
		Target	   *t = &bc->targets[i];

		if (t->conn == NULL)
			continue;
		while (t->state == CONN_SENT && PQconsumeInput(t->conn))
		{
			PGresult   *res;

			if (PQisBusy(t->conn))
			{
				long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);

				if (left <= 0)
					break;
				(void) WaitLatchOrSocket(NULL, WL_SOCKET_READABLE | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
										 PQsocket(t->conn), left, PG_WAIT_EXTENSION);
				continue;
			}
			res = PQgetResult(t->conn);
			if (res == NULL)
				t->state = CONN_IDLE;
			else if (PQresultStatus(res) == PGRES_COPY_IN)
				t->state = CONN_COPYIN;
			PQclear(res);
		}
		if (t->state == CONN_COPYIN)
			end_abandoned(t, end);

		/*
		 * postgres_fdw keeps the connection and expects blocking mode; one
		 * that cannot be given back so (what is queued was not sent in
		 * time) is cut, and postgres_fdw drops it at abort.
		 */
		if (PQisnonblocking(t->conn) && PQsetnonblocking(t->conn, 0) != 0 && PQsocket(t->conn) >= 0)
			(void) shutdown(PQsocket(t->conn), SHUT_RDWR);
		if (t->err)
			PQclear(t->err);
		t->err = NULL;
		t->state = CONN_IDLE;
	}
}

/*
 * abandon_at_exit is abandon for PG_ENSURE_ERROR_CLEANUP: on an error, and
 * on a FATAL (pg_terminate_backend, a fast shutdown) before postgres_fdw's
 * abort cleanup, which would wait forever on a connection inside COPY.
 */
static void
abandon_at_exit(int code, Datum arg)
{
	abandon((BulkCopy *) DatumGetPointer(arg));
}

/*
 * wait_target waits until target t's datanode has answered something (or
 * the latch is set: a cancel).
 */
static void
wait_target(Target *t)
{
	(void) WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH,
							 PQsocket(t->conn), -1L, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/*
 * next_result is target t's datanode's next answer, waited for
 * (interruptibly).
 */
static PGresult *
next_result(Target *t)
{
	for (;;)
	{
		if (!PQconsumeInput(t->conn))
			adb_fdw_report_error(ERROR, NULL, t->conn, false, t->label);
		if (!PQisBusy(t->conn))
			return PQgetResult(t->conn);
		wait_target(t);
	}
}

/*
 * send_copy sends target t its COPY, connecting first: postgres_fdw's
 * connection, in postgres_fdw's remote transaction, the datanode counted
 * as a writer (two-phase commit), at the client's isolation level.
 */
static void
send_copy(BulkCopy *bc, Target *t)
{
	if (t->conn == NULL)
	{
		t->conn = adb_fdw_GetConnection(GetUserMapping(bc->userid, t->serverid), false, NULL);
		/* After: postgres_fdw's first connection registers its callback. */
		adb_twophase_note_write(t->serverid, bc->userid);
		adb_dml_sync_connection(bc->userid, t->serverid);
	}
	if (!PQsendQuery(t->conn, t->sql.data))
		adb_fdw_report_error(ERROR, NULL, t->conn, false, t->label);
	t->state = CONN_SENT;
}

/*
 * copy_started waits for target t's datanode to ask for rows; an error
 * (the COPY refused) is raised.
 */
static void
copy_started(Target *t)
{
	PGresult   *res = next_result(t);

	if (PQresultStatus(res) == PGRES_COPY_IN)
	{
		PQclear(res);
		t->state = CONN_COPYIN;
		/* Sends wait interruptibly (flush_out), not inside libpq. */
		if (PQsetnonblocking(t->conn, 1) != 0)
			adb_fdw_report_error(ERROR, NULL, t->conn, false, t->label);
		return;
	}
	t->state = CONN_IDLE;
	adb_fdw_report_error(ERROR, res, t->conn, true, t->label);
}

/*
 * flush_out sends what libpq holds for target t (non-blocking), waiting
 * for the socket, interruptibly: a datanode that stops reading (its COPY
 * waits for a lock) does not hold a cancel or a timeout up. What the
 * datanode sends meanwhile is taken in, for its COPY's result.
 */
static void
flush_out(Target *t)
{
	int			r;

	while ((r = PQflush(t->conn)) == 1)
	{
		int			ev = WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_SOCKET_WRITEABLE | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH,
										   PQsocket(t->conn), -1L, PG_WAIT_EXTENSION);

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if ((ev & WL_SOCKET_READABLE) && !PQconsumeInput(t->conn))
			break;
	}
	if (r < 0 || PQstatus(t->conn) == CONNECTION_BAD)
		adb_fdw_report_error(ERROR, NULL, t->conn, false, t->label);
}

/*
 * copy_failed raises the error of target t's COPY that libpq could not
 * send to (the connection lost).
 */
static void
copy_failed(Target *t)
{
	PGresult   *res = PQgetResult(t->conn);

	t->state = CONN_IDLE;
	(void) PQsetnonblocking(t->conn, 0);
	adb_fdw_report_error(ERROR, res, t->conn, true, t->label);
}

/*
 * send_lines sends target t's lines (its COPY started), in CopyData
 * messages of CHUNK_BYTES, and empties them. A datanode that failed
 * meanwhile (a shard's rows refused) discards them; its error comes
 * with its COPY's result (end_copies).
 */
static void
send_lines(BulkCopy *bc, Target *t)
{
	int			off;

	for (off = 0; off < t->rows.len; off += CHUNK_BYTES)
	{
		int			r;

		CHECK_FOR_INTERRUPTS();
		while ((r = PQputCopyData(t->conn, t->rows.data + off, Min(CHUNK_BYTES, t->rows.len - off))) == 0)
			flush_out(t);
		if (r < 0)
			copy_failed(t);
	}
	flush_out(t);
	bc->buffered -= t->rows.len;
	resetStringInfo(&t->rows);
}

/*
 * end_copies ends the COPY of every target sending rows, after its last
 * lines, and reads every answer; the first error is raised once every
 * connection is out of its COPY.
 */
static void
end_copies(BulkCopy *bc)
{
	Target	   *failed = NULL;
	int			r;
	int			i;

	for (i = 0; i < bc->ntargets; i++)
	{
		Target	   *t = &bc->targets[i];

		if (t->state != CONN_COPYIN)
			continue;
		send_lines(bc, t);
		while ((r = PQputCopyEnd(t->conn, NULL)) == 0)
			flush_out(t);
		if (r < 0)
			copy_failed(t);
		flush_out(t);
		t->state = CONN_SENT;
	}
	for (i = 0; i < bc->ntargets; i++)
	{
		Target	   *t = &bc->targets[i];
		PGresult   *res;

		while (t->state == CONN_SENT)
		{
			res = next_result(t);
			if (res == NULL)
			{
				t->state = CONN_IDLE;
				(void) PQsetnonblocking(t->conn, 0);
			}
			else if (PQresultStatus(res) != PGRES_COMMAND_OK && t->err == NULL)
				t->err = res;
			else
				PQclear(res);
		}
		if (t->err && failed == NULL)
			failed = t;
	}
	if (failed)
	{
		PGresult   *err = failed->err;

		failed->err = NULL;
		adb_fdw_report_error(ERROR, err, failed->conn, true, failed->label);
	}
}

/*
 * start_copies starts the COPY of every target with lines that has none
 * going: all are sent, then each is waited for.
 */
static void
start_copies(BulkCopy *bc, Size least)
{
	int			i;

	for (i = 0; i < bc->ntargets; i++)
		if (bc->targets[i].state == CONN_IDLE && bc->targets[i].rows.len > least)
			send_copy(bc, &bc->targets[i]);
	for (i = 0; i < bc->ntargets; i++)
		if (bc->targets[i].state == CONN_SENT)
			copy_started(&bc->targets[i]);
}

/*
 * rows_added is called after each batch of rows written: streaming, each
 * datanode with CHUNK_BYTES of lines gets them (its COPY started at its
 * first); otherwise, once adb.copy_buffer of lines are held, they go out
 * in one COPY a datanode, ended and answered before more rows are read.
 */
static void
rows_added(BulkCopy *bc)
{
	int			i;

	if (bc->stream)
	{
		start_copies(bc, CHUNK_BYTES - 1);
		for (i = 0; i < bc->ntargets; i++)
			if (bc->targets[i].state == CONN_COPYIN && bc->targets[i].rows.len >= CHUNK_BYTES)
				send_lines(bc, &bc->targets[i]);
	}
	else if (bc->buffered >= (Size) copy_buffer_kb * 1024)
	{
		start_copies(bc, 0);
		end_copies(bc);
	}
}

/* send_rest sends the lines left and ends every COPY. */
static void
send_rest(BulkCopy *bc)
{
	start_copies(bc, 0);
	end_copies(bc);
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
	make_shards(bc);
	nest = NewGUCNestLevel();
	block = GetConfigOption("adb.sequence_block", true, false);
	if (block != NULL && atoi(block) < BULK_SEQUENCE_BLOCK)
		(void) set_config_option("adb.sequence_block", CppAsString2(BULK_SEQUENCE_BLOCK), PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

/*
 * copy_rows reads cstate's rows into bc's buffers, sending rounds as they
 * fill, and is the number of rows.
 */
static uint64
copy_rows(BulkCopy *bc, CopyFromState cstate, EState *estate)
{
	ExprContext *econtext = GetPerTupleExprContext(estate);
	ErrorContextCallback errcallback;
	Datum	   *values;
	bool	   *nulls;
	int		   *parts;
	uint64		processed = 0;
	bool		done = false;
	int			i;

	values = MemoryContextAlloc(bc->cxt, sizeof(Datum) * bc->natts * BATCH_ROWS);
	nulls = MemoryContextAlloc(bc->cxt, sizeof(bool) * bc->natts * BATCH_ROWS);
	parts = MemoryContextAlloc(bc->cxt, sizeof(int) * BATCH_ROWS);
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
			if (!NextCopyFrom(cstate, econtext, values + n * bc->natts, nulls + n * bc->natts))
			{
				done = true;
				break;
			}
			parts[n] = adb_route_row(bc->rel, bc->pd, values + n * bc->natts, nulls + n * bc->natts);
			n++;
		}
		error_context_stack = errcallback.previous;
		nest = adb_fdw_set_transmission_modes();
		for (i = 0; i < n; i++)
			add_row(bc, parts[i], values + i * bc->natts, nulls + i * bc->natts);
		adb_fdw_reset_transmission_modes(nest);
		MemoryContextSwitchTo(old);
		ResetPerTupleExprContext(estate);
		processed += n;
		rows_added(bc);
	}
	send_rest(bc);
	return processed;
}

/*
 * runs_queries says whether built-in function func runs a query it is
 * given, or one over a table or schema it is given, which may read a
 * distributed table: the XML exports, ts_stat and ts_rewrite.
 */
static bool
runs_queries(Oid func)
{
	static const char *const names[] = {
		"query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema",
		"table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema",
		"schema_to_xml", "schema_to_xmlschema", "schema_to_xml_and_xmlschema",
		"database_to_xml", "database_to_xmlschema", "database_to_xml_and_xmlschema",
		"cursor_to_xml", "cursor_to_xmlschema", "ts_stat", "ts_rewrite"
	};
	char	   *name = get_func_name(func);
	int			i;

	for (i = 0; name != NULL && i < lengthof(names); i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

/*
 * user_function is check_functions_in_node's test for stream_safe: a
 * function that is not built in, other than adb.dist_nextval, or a
 * built-in one that runs queries.
 */
static bool
user_function(Oid func, void *context)
{
	char	   *nsp;

	if (func < FirstNormalObjectId)
		return runs_queries(func);
	nsp = get_namespace_name(get_func_namespace(func));
	return nsp == NULL || strcmp(nsp, "adb") != 0 || strcmp(get_func_name(func), "dist_nextval") != 0;
}

/*
 * stream_safe says whether a COPY into rel of the columns attnums may
 * send its rows as it reads them: postgres_fdw's connections to the
 * datanodes are then inside COPY, and a query that reached a datanode
 * through them, from a function run for a row, would fail ("another
 * command is already in progress"). So only when every column is of a
 * built-in type that is not a domain (whose checks may call anything),
 * and the defaults of the columns not given call built-in functions that
 * run no queries, and adb.dist_nextval, only.
 */
static bool
stream_safe(Relation rel, List *attnums)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Node	   *def;

		if (att->attisdropped)
			continue;
		if (att->atttypid >= FirstNormalObjectId || get_typtype(att->atttypid) == TYPTYPE_DOMAIN)
			return false;
		if (list_member_int(attnums, att->attnum))
			continue;
		def = build_column_default(rel, att->attnum);
		if (def != NULL && check_functions_in_node(def, user_function, NULL))
			return false;
	}
	return true;
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
	List	   *attnums;
	ListCell   *lc;
	CopyFromState cstate;
	EState	   *estate;
	BulkCopy	bc;
	uint64		processed;
	int			guc_nest;

	pstate->p_sourcetext = queryString;
	pstate->p_queryEnv = queryEnv;
	nsitem = addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, NULL, false, false);
	rte = nsitem->p_rte;
	rte->requiredPerms = ACL_INSERT;
	attnums = CopyGetAttnums(RelationGetDescr(rel), rel, stmt->attlist);
	foreach(lc, attnums)
		rte->insertedCols = bms_add_member(rte->insertedCols, lfirst_int(lc) - FirstLowInvalidHeapAttributeNumber);
	ExecCheckRTPerms(pstate->p_rtable, true);
	if (XactReadOnly && !rel->rd_islocaltemp)
		PreventCommandIfReadOnly("COPY FROM");

	guc_nest = bulk_begin(&bc, rel);
	bc.stream = copy_stream && stream_safe(rel, attnums);
	cstate = BeginCopyFrom(pstate, rel, NULL, stmt->filename, stmt->is_program, NULL,
						   stmt->attlist, stmt->options);
	estate = CreateExecutorState();
	PG_ENSURE_ERROR_CLEANUP(abandon_at_exit, PointerGetDatum(&bc));
	{
		processed = copy_rows(&bc, cstate, estate);
	}
	PG_END_ENSURE_ERROR_CLEANUP(abandon_at_exit, PointerGetDatum(&bc));
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
 * insert_rows reads src's rows into bc's buffers, sending rounds as they
 * fill, and is the number of rows. A round is sent whole before more rows
 * are read (bc->stream is off): a function of the SELECT may query a
 * datanode through postgres_fdw's connections.
 */
static uint64
insert_rows(BulkCopy *bc, PlanState *src)
{
	TupleDesc	desc = RelationGetDescr(bc->rel);
	MemoryContext batch;
	HeapTuple  *rows;
	int		   *parts;
	Datum	   *values;
	bool	   *nulls;
	uint64		processed = 0;
	bool		done = false;

	batch = AllocSetContextCreate(bc->cxt, "adb bulk INSERT rows", ALLOCSET_DEFAULT_SIZES);
	rows = MemoryContextAlloc(bc->cxt, sizeof(HeapTuple) * BATCH_ROWS);
	parts = MemoryContextAlloc(bc->cxt, sizeof(int) * BATCH_ROWS);
	values = MemoryContextAlloc(bc->cxt, sizeof(Datum) * bc->natts);
	nulls = MemoryContextAlloc(bc->cxt, sizeof(bool) * bc->natts);
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
			parts[n] = adb_route_row(bc->rel, bc->pd, slot->tts_values, slot->tts_isnull);
			prev = MemoryContextSwitchTo(batch);
			rows[n++] = heap_form_tuple(desc, slot->tts_values, slot->tts_isnull);
			MemoryContextSwitchTo(prev);
		}
		nest = adb_fdw_set_transmission_modes();
		prev = MemoryContextSwitchTo(batch);
		for (i = 0; i < n; i++)
		{
			heap_deform_tuple(rows[i], desc, values, nulls);
			add_row(bc, parts[i], values, nulls);
		}
		MemoryContextSwitchTo(prev);
		adb_fdw_reset_transmission_modes(nest);
		MemoryContextReset(batch);
		processed += n;
		rows_added(bc);
	}
	send_rest(bc);
	return processed;
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
	MemoryContext old = MemoryContextSwitchTo(estate->es_query_cxt);
	BulkCopy	bc;
	uint64		processed;
	int			guc_nest = bulk_begin(&bc, rel);

	PG_ENSURE_ERROR_CLEANUP(abandon_at_exit, PointerGetDatum(&bc));
	{
		processed = insert_rows(&bc, outerPlanState(qd->planstate));
	}
	PG_END_ENSURE_ERROR_CLEANUP(abandon_at_exit, PointerGetDatum(&bc));
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
	else if (IsA(stmt, CopyStmt) && stmt->is_from && stmt->relation != NULL && has_option(stmt->options, "adb_shards"))
	{
		/* A coordinator's bulk load, on a datanode. */
		uint64		processed = adb_shard_copy(stmt, queryString);

		if (qc)
			SetQueryCompletion(qc, CMDTAG_COPY, processed);
		CommandCounterIncrement();
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
	DefineCustomBoolVariable("adb.copy_stream",
							 "A bulk COPY into a distributed table sends its rows to the datanodes as it reads them.",
							 "Off, or when a column's type or default could query a datanode: rounds of adb.copy_buffer.",
							 &copy_stream, true, PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("adb.copy_buffer",
							"How much of a bulk load's rows a coordinator holds before it sends them to the datanodes, when they cannot stream.",
							"Rows stream unless a column's type or default, or the SELECT of an INSERT, could query a datanode.", &copy_buffer_kb, 16 * 1024, 64, 1024 * 1024, PGC_USERSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
	prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = adb_copy_utility;
	prev_run = ExecutorRun_hook;
	ExecutorRun_hook = adb_copy_run;
	prev_start = ExecutorStart_hook;
	ExecutorStart_hook = adb_copy_start;
}
