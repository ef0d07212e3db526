/*
 * shardcopy.c — a datanode's side of a bulk load (issue 10, item 7).
 *
 * A coordinator's bulk COPY or INSERT … SELECT (copy.c) sends each
 * datanode the rows of all its shards in one COPY:
 *
 *   COPY <first shard> (<columns>) FROM STDIN
 *     WITH (adb_shards ('<shard>', '<shard>', …))
 *
 * each line of which is the position of the row's shard in adb_shards, a
 * tab, and the row in COPY text form. The ProcessUtility hook of copy.c
 * hands such a COPY here: the lines are read from the client (the
 * CopyData messages, as PostgreSQL's COPY reads them), put aside per
 * shard, and each shard's are loaded by PostgreSQL's own COPY
 * (BeginCopyFrom over a callback, CopyFrom: its constraints, indexes and
 * errors, "COPY <shard>, line n"), once a shard has enough of them
 * (SHARD_LOAD_FIRST), and the rest at the end. One COPY a datanode instead of one a
 * shard: the coordinator streams the rows as it reads them, with no round
 * trip per shard.
 *
 * A COPY into any plain table (a shard's, or a table of the node's own)
 * runs with the table's row type unpinned: see adb_unpinned.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/copy.h"
#include "commands/defrem.h"
#include "executor/executor.h"
/*
 * libpq/libpq.h brings in libpq-be.h, whose GSSAPI part needs krb5's
 * headers; this file uses no field of Port, which is all that changes.
 */
#undef ENABLE_GSS
#include "libpq/libpq.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "tcop/cmdtag.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rls.h"
#include "utils/rel.h"
#include "utils/varlena.h"

#include "adb.h"

/*
 * A shard's rows put aside are loaded once there are SHARD_LOAD_FIRST
 * bytes of them, then twice as many each time up to SHARD_LOAD_MOST: the
 * datanode loads while the coordinator still reads rows, and a long load
 * does not pay a COPY's set-up every few hundred rows.
 */
#define SHARD_LOAD_FIRST (8 * 1024)
#define SHARD_LOAD_MOST (1024 * 1024)

/* One shard of a multi-shard COPY and its rows put aside. */
typedef struct ShardRows
{
	Relation	rel;
	StringInfoData rows;		/* lines in COPY text form */
	int			limit;			/* loaded at this many bytes */
} ShardRows;

/* The rows a shard's COPY reads (load_read: CopyFrom's callback has no argument). */
static StringInfo load_src = NULL;
static int	load_pos = 0;

/* load_read is the data source of a shard's COPY: the rows put aside. */
static int
load_read(void *outbuf, int minread, int maxread)
{
	int			n = Min(maxread, load_src->len - load_pos);

	memcpy(outbuf, load_src->data + load_pos, n);
	load_pos += n;
	return n;
}

/*
 * adb_unpinned runs fn(arg), a COPY into plain table rel, with rel's row
 * type unpinned. PostgreSQL 15's COPY makes up to 1000 tuple slots
 * (MAX_BUFFERED_TUPLES), each pinning the relation's TupleDesc in the
 * resource owner, whose hash takes linear probes for each add and remove
 * of the same entry: a COPY of 1000 rows or more costs about a million
 * probes, whatever its size, which was more than half of a datanode's
 * time in a bulk load of one COPY per shard. Slots of a descriptor whose
 * tdrefcount is -1 neither pin nor unpin it, and COPY drops every slot it
 * makes before it returns. The caller holds RowExclusiveLock on rel (as
 * COPY takes it), so its columns cannot change; were the relcache entry
 * rebuilt with another descriptor meanwhile (ALTER … SET STATISTICS takes
 * a weaker lock), the old one would only stay allocated. Tables with
 * triggers are left alone: trigger slots may outlive the statement.
 */
void
adb_unpinned(Relation rel, void (*fn) (void *arg), void *arg)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			refcount = desc->tdrefcount;

	if (rel->trigdesc != NULL || refcount < 0)
	{
		fn(arg);
		return;
	}
	desc->tdrefcount = -1;
	PG_TRY();
	{
		fn(arg);
	}
	PG_FINALLY();
	{
		desc->tdrefcount = refcount;
	}
	PG_END_TRY();
}

/* A shard's COPY, for adb_unpinned. */
typedef struct ShardLoad
{
	CopyFromState cstate;
	uint64		processed;
} ShardLoad;

static void
run_copy_from(void *arg)
{
	ShardLoad  *sl = arg;

	sl->processed = CopyFrom(sl->cstate);
}

/*
 * load_shard loads the rows put aside for shard sr with PostgreSQL's COPY
 * of the columns attlist, and empties them.
 */
static uint64
load_shard(ShardRows *sr, List *attlist, const char *queryString)
{
	ParseState *pstate = make_parsestate(NULL);
	ShardLoad	sl;

	pstate->p_sourcetext = queryString;
	/* CopyFrom's result relation is the range table's first. */
	(void) addRangeTableEntryForRelation(pstate, sr->rel, RowExclusiveLock, NULL, false, false);
	load_src = &sr->rows;
	load_pos = 0;
	sl.cstate = BeginCopyFrom(pstate, sr->rel, NULL, NULL, false, load_read, attlist, NIL);
	adb_unpinned(sr->rel, run_copy_from, &sl);
	EndCopyFrom(sl.cstate);
	free_parsestate(pstate);
	load_src = NULL;
	resetStringInfo(&sr->rows);
	return sl.processed;
}

/*
 * open_shards opens (RowExclusiveLock) the shards named in adb_shards
 * (qualified names, as strings) and checks, as DoCopy does, INSERT on the
 * columns and that no row-level security applies.
 */
static ShardRows *
open_shards(List *names, List *attlist, int *nshards)
{
	ShardRows  *shards = palloc0(sizeof(ShardRows) * list_length(names));
	ListCell   *lc;
	int			n = 0;

	foreach(lc, names)
	{
		ParseState *pstate = make_parsestate(NULL);
		RangeVar   *rv = makeRangeVarFromNameList(stringToQualifiedNameList(strVal(lfirst(lc))));
		Relation	rel = table_openrv(rv, RowExclusiveLock);
		ParseNamespaceItem *nsitem = addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, NULL, false, false);
		ListCell   *ac;

		if (rel->rd_rel->relkind != RELKIND_RELATION)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("\"%s\" is not a shard table", RelationGetRelationName(rel))));
		nsitem->p_rte->requiredPerms = ACL_INSERT;
		foreach(ac, CopyGetAttnums(RelationGetDescr(rel), rel, attlist))
			nsitem->p_rte->insertedCols = bms_add_member(nsitem->p_rte->insertedCols,
														 lfirst_int(ac) - FirstLowInvalidHeapAttributeNumber);
		ExecCheckRTPerms(pstate->p_rtable, true);
		/* As DoCopy: COPY FROM would skip the policies' checks. */
		if (check_enable_rls(RelationGetRelid(rel), InvalidOid, false) == RLS_ENABLED)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("COPY FROM not supported with row-level security"),
					 errhint("Use INSERT statements instead.")));
		free_parsestate(pstate);
		shards[n].rel = rel;
		initStringInfo(&shards[n].rows);
		shards[n].limit = SHARD_LOAD_FIRST;
		n++;
	}
	*nshards = n;
	return shards;
}

/*
 * next_message reads the client's next COPY message into buf and is its
 * type: 'd' (data) or 'c' (done); a CopyFail is raised as an error, Flush
 * and Sync are skipped (as PostgreSQL's COPY does: copyfromparse.c,
 * CopyGetData).
 */
static int
next_message(StringInfo buf)
{
	for (;;)
	{
		int			mtype;
		int			maxmsglen;

		HOLD_CANCEL_INTERRUPTS();
		pq_startmsgread();
		mtype = pq_getbyte();
		if (mtype == EOF)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("unexpected EOF on client connection with an open transaction")));
		switch (mtype)
		{
			case 'd':
				maxmsglen = PQ_LARGE_MESSAGE_LIMIT;
				break;
			case 'c':
			case 'f':
			case 'H':
			case 'S':
				maxmsglen = PQ_SMALL_MESSAGE_LIMIT;
				break;
			default:
				ereport(ERROR,
						(errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("unexpected message type 0x%02X during COPY from stdin", mtype)));
				maxmsglen = 0;	/* keep compiler quiet */
				break;
		}
		resetStringInfo(buf);
		if (pq_getmessage(buf, maxmsglen))
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("unexpected EOF on client connection with an open transaction")));
		RESUME_CANCEL_INTERRUPTS();
		switch (mtype)
		{
			case 'd':
			case 'c':
				return mtype;
			case 'f':
				ereport(ERROR,
						(errcode(ERRCODE_QUERY_CANCELED),
						 errmsg("COPY from stdin failed: %s", pq_getmsgstring(buf))));
				break;
			default:
				break;			/* Flush, Sync: ignored in COPY */
		}
	}
}

/*
 * put_aside puts the complete lines at the start of pending aside, each
 * for its shard, loading a shard that has enough; the rest (a
 * line not complete yet) stays in pending. It is the rows loaded.
 */
static uint64
put_aside(StringInfo pending, ShardRows *shards, int nshards, List *attlist, const char *queryString)
{
	uint64		processed = 0;
	char	   *p = pending->data;
	char	   *end = pending->data + pending->len;
	int			rest;

	for (;;)
	{
		char	   *nl = memchr(p, '\n', end - p);
		char	   *q;
		long		pos;
		ShardRows  *sr;

		if (nl == NULL)
			break;
		errno = 0;
		pos = strtol(p, &q, 10);
		if (q == p || *q != '\t' || pos < 0 || pos >= nshards || errno != 0)
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("a multi-shard COPY line does not start with a shard's position")));
		sr = &shards[pos];
		appendBinaryStringInfo(&sr->rows, q + 1, nl + 1 - (q + 1));
		p = nl + 1;
		if (sr->rows.len >= sr->limit)
		{
			processed += load_shard(sr, attlist, queryString);
			sr->limit = Min(sr->limit * 2, SHARD_LOAD_MOST);
		}
	}
	rest = end - p;
	memmove(pending->data, p, rest);
	pending->len = rest;
	pending->data[rest] = '\0';
	return processed;
}

/*
 * adb_shard_copy runs a multi-shard COPY (see the top of the file) and
 * is the number of rows. The COPY's own target names the shards' columns
 * only (attlist); its options other than adb_shards must be none: the
 * rows are always COPY text, as the coordinator writes them.
 */
uint64
adb_shard_copy(CopyStmt *stmt, const char *queryString)
{
	List	   *names = NIL;
	ListCell   *lc;
	ShardRows  *shards;
	int			nshards;
	StringInfoData msg;
	StringInfoData pending;
	StringInfoData resp;
	uint64		processed = 0;
	int			i;

	foreach(lc, stmt->options)
	{
		DefElem    *opt = lfirst(lc);

		if (strcmp(opt->defname, "adb_shards") != 0 || opt->arg == NULL || !IsA(opt->arg, List))
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("a multi-shard COPY takes adb_shards (a list of shards) and no other option")));
		names = (List *) opt->arg;
	}
	if (stmt->filename != NULL || stmt->is_program || stmt->whereClause != NULL || names == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("a multi-shard COPY reads from STDIN, with no WHERE")));
	if (XactReadOnly)
		PreventCommandIfReadOnly("COPY FROM");
	if (whereToSendOutput != DestRemote)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a multi-shard COPY reads from a client connection")));
	shards = open_shards(names, stmt->attlist, &nshards);

	/* CopyInResponse: text, the columns' formats (all text). */
	pq_beginmessage(&resp, 'G');
	pq_sendbyte(&resp, 0);
	pq_sendint16(&resp, list_length(stmt->attlist));
	for (i = 0; i < list_length(stmt->attlist); i++)
		pq_sendint16(&resp, 0);
	pq_endmessage(&resp);
	pq_flush();

	initStringInfo(&msg);
	initStringInfo(&pending);
	while (next_message(&msg) == 'd')
	{
		appendBinaryStringInfo(&pending, msg.data, msg.len);
		processed += put_aside(&pending, shards, nshards, stmt->attlist, queryString);
	}
	if (pending.len > 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("a multi-shard COPY ended inside a line")));
	for (i = 0; i < nshards; i++)
	{
		if (shards[i].rows.len > 0)
			processed += load_shard(&shards[i], stmt->attlist, queryString);
		table_close(shards[i].rel, NoLock);
	}
	return processed;
}
