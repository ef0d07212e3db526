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
 * A shard's COPY runs with the shard's descriptor swapped for one that is
 * not reference-counted: see unpin.
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
#include "utils/typcache.h"
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

/* All shards' rows put aside are loaded once there are this many bytes. */
#define SHARD_LOAD_TOTAL (32 * 1024 * 1024)

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
 * A descriptor that is never pinned nor freed by reference counting:
 * PinTupleDesc and ReleaseTupleDesc skip a negative count, and the typcache
 * and relcache's own increments and decrements (which do not check) cannot
 * bring it to zero.
 */
#define UNCOUNTED (INT_MIN / 2)

/*
 * Unpinned is a shard's relcache entry while its rows load: its
 * descriptor swapped for an uncounted copy (unpin).
 */
typedef struct Unpinned
{
	Relation	rel;
	TupleDesc	own;			/* the relcache's descriptor */
	TupleDesc	copy;			/* the one in place, or NULL */
} Unpinned;

/*
 * unpin puts an uncounted copy of rel's descriptor in place for the length
 * of a shard's COPY. PostgreSQL 15's COPY makes up to 1000 tuple slots
 * (MAX_BUFFERED_TUPLES), each pinning the relation's descriptor in the
 * resource owner, whose hash takes linear probes for each add and remove
 * of the same entry: a COPY of 1000 rows or more costs about a million
 * probes, whatever its size, which was more than half of a datanode's
 * time in a bulk load. Slots of the copy pin nothing, and COPY drops every
 * slot it makes before it returns. The descriptor itself is left alone:
 * the row type's typcache entry shares it (a whole-row reference in a
 * CHECK or an index takes it there), so the entry is loaded first, with
 * the relcache's own. Were the entry reloaded meanwhile (an invalidation:
 * ANALYZE), it would take the copy, which is then never freed; were the
 * relcache entry rebuilt with another descriptor (ALTER … SET STATISTICS
 * takes a weaker lock than the COPY's), both stay as the relcache left
 * them. Tables with triggers are left alone: trigger slots may outlive the
 * statement.
 */
static void
unpin(Unpinned *u, Relation rel)
{
	TupleDesc	td;
	MemoryContext old;

	u->rel = rel;
	u->own = RelationGetDescr(rel);
	u->copy = NULL;
	if (rel->trigdesc != NULL || u->own->tdrefcount < 0)
		return;
	td = lookup_rowtype_tupdesc(rel->rd_rel->reltype, -1);
	ReleaseTupleDesc(td);
	/* In the cache's context: the typcache may keep it (see above). */
	old = MemoryContextSwitchTo(CacheMemoryContext);
	u->copy = CreateTupleDescCopyConstr(u->own);
	MemoryContextSwitchTo(old);
	u->copy->tdrefcount = UNCOUNTED;
	rel->rd_att = u->copy;
}

/* repin puts the relcache's descriptor back (see unpin). */
static void
repin(Unpinned *u)
{
	if (u->copy == NULL || u->rel->rd_att != u->copy)
		return;
	u->rel->rd_att = u->own;
	if (lookup_type_cache(u->rel->rd_rel->reltype, 0)->tupDesc != u->copy)
		FreeTupleDesc(u->copy);
	u->copy = NULL;
}

/*
 * load_shard loads the rows put aside for shard sr with PostgreSQL's COPY
 * of the columns attlist, and empties them.
 */
static uint64
load_shard(ShardRows *sr, List *attlist, const char *queryString)
{
	ParseState *pstate = make_parsestate(NULL);
	CopyFromState cstate;
	Unpinned	u;
	uint64		processed = 0;

	pstate->p_sourcetext = queryString;
	/* CopyFrom's result relation is the range table's first. */
	(void) addRangeTableEntryForRelation(pstate, sr->rel, RowExclusiveLock, NULL, false, false);
	load_src = &sr->rows;
	load_pos = 0;
	unpin(&u, sr->rel);
	PG_TRY();
	{
		cstate = BeginCopyFrom(pstate, sr->rel, NULL, NULL, false, load_read, attlist, NIL);
		processed = CopyFrom(cstate);
		EndCopyFrom(cstate);
	}
	PG_FINALLY();
	{
		repin(&u);
	}
	PG_END_TRY();
	free_parsestate(pstate);
	load_src = NULL;
	resetStringInfo(&sr->rows);
	return processed;
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

/* The lines read and not put aside yet (put_aside). */
typedef struct Pending
{
	StringInfoData buf;
	int			start;			/* the first line not put aside */
	int			scanned;		/* no newline in buf from start up to here */
	bool		ended;			/* a \. line was read: the rest is ignored */
	Size		aside;			/* bytes put aside in all shards */
} Pending;

/*
 * load_all loads every shard's rows put aside: a datanode holds at most
 * SHARD_LOAD_TOTAL of them, whatever the number of shards.
 */
static uint64
load_all(Pending *pd, ShardRows *shards, int nshards, List *attlist, const char *queryString)
{
	uint64		processed = 0;
	int			i;

	for (i = 0; i < nshards; i++)
		if (shards[i].rows.len > 0)
			processed += load_shard(&shards[i], attlist, queryString);
	pd->aside = 0;
	return processed;
}

/*
 * put_aside puts the complete lines of pd aside, each for its shard,
 * loading a shard that has enough (or all, past SHARD_LOAD_TOTAL); what
 * is left is a line not complete yet, searched once only however long it
 * grows. It is the rows loaded. A line "\." ends the data, as in COPY.
 */
static uint64
put_aside(Pending *pd, ShardRows *shards, int nshards, List *attlist, const char *queryString)
{
	uint64		processed = 0;

	for (;;)
	{
		char	   *line = pd->buf.data + pd->start;
		char	   *nl = memchr(pd->buf.data + pd->scanned, '\n', pd->buf.len - pd->scanned);
		char	   *q;
		long		pos;
		ShardRows  *sr;

		if (nl == NULL)
			break;
		pd->start = pd->scanned = nl + 1 - pd->buf.data;
		if (pd->ended)
			continue;
		if (nl - line == 2 && line[0] == '\\' && line[1] == '.')
		{
			pd->ended = true;
			continue;
		}
		errno = 0;
		pos = strtol(line, &q, 10);
		if (q == line || !isdigit((unsigned char) line[0]) || *q != '\t' || pos >= nshards || errno != 0)
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("a multi-shard COPY line does not start with a shard's position")));
		sr = &shards[pos];
		appendBinaryStringInfo(&sr->rows, q + 1, nl + 1 - (q + 1));
		pd->aside += nl - q;
		if (sr->rows.len >= sr->limit)
		{
			pd->aside -= sr->rows.len;
			processed += load_shard(sr, attlist, queryString);
			sr->limit = Min(sr->limit * 2, SHARD_LOAD_MOST);
		}
		if (pd->aside >= SHARD_LOAD_TOTAL)
			processed += load_all(pd, shards, nshards, attlist, queryString);
	}
	pd->scanned = pd->buf.len;
	/* Drop the lines put aside once they are half of the buffer. */
	if (pd->start > 0 && pd->start >= pd->buf.len / 2)
	{
		memmove(pd->buf.data, pd->buf.data + pd->start, pd->buf.len - pd->start);
		pd->buf.len -= pd->start;
		pd->scanned -= pd->start;
		pd->start = 0;
		pd->buf.data[pd->buf.len] = '\0';
	}
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
	Pending		pending;
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
	memset(&pending, 0, sizeof(pending));
	initStringInfo(&pending.buf);
	while (next_message(&msg) == 'd')
	{
		appendBinaryStringInfo(&pending.buf, msg.data, msg.len);
		processed += put_aside(&pending, shards, nshards, stmt->attlist, queryString);
	}
	if (pending.start < pending.buf.len && !pending.ended)
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
