/*
 * ddl.c — DDL on distributed tables reaching every shard and coordinator
 * (see adb.h), and the cluster-wide sequences of their serial columns.
 *
 * A distributed table (internal/coord/ddl.sql: adb.dist_table) is, on each
 * coordinator, a hash-partitioned parent over postgres_fdw foreign tables,
 * one per slot, each over a shard table on a datanode. DDL a DBA runs on
 * the parent must reach the shards and the other coordinators, in the same
 * transaction (adb.remote_exec commits with it), or be refused by name:
 * this ProcessUtility hook applies the statement here, then sends it on —
 * to each shard with the relation's name replaced by the shard's (the
 * statement's own text, cut at RangeVar->location, never re-quoted user
 * text), to each coordinator as it is, with adb.propagating on there so
 * that they do not send it on again. What PostgreSQL does not allow on a
 * parent with foreign partitions (primary keys, unique constraints and
 * indexes) goes to the shards only and is listed in adb.dist_constraint.
 * The SQL functions this calls are in ddl.sql.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "common/keywords.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "libpq-fe.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "parser/scanner.h"
#include "tcop/cmdtag.h"
#include "tcop/utility.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"

#include "adb.h"

/* adb.propagating: this transaction applies DDL another coordinator sent. */
static bool adb_propagating = false;

/* adb.sequence_block: how many values of a sequence a session takes at once. */
static int	sequence_block = 100;

/* Set while the hook runs its own statements, which pass through. */
static int	ddl_depth = 0;

static ProcessUtility_hook_type prev_utility = NULL;

/*
 * An insertion into a statement's text: a name given to an unnamed
 * constraint, so that the parent and every shard call it alike.
 */
typedef struct Insertion
{
	int			pos;
	char	   *text;
} Insertion;

/* run_local runs the statement here, as PostgreSQL would. */
static void
run_local(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
		  ProcessUtilityContext context, ParamListInfo params,
		  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (prev_utility)
		prev_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

/*
 * catalog_present says whether this node holds the coordinators' catalog
 * (a datanode does not: the hook leaves its DDL alone).
 */
static bool
catalog_present(void)
{
	Oid			nsp = get_namespace_oid("adb", true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid("dist_table", nsp));
}

/*
 * spi_value runs sql with arguments (nulls as SPI wants them) and is the
 * first column of its first row, copied into the caller's memory, or NULL.
 * as_owner runs it as the bootstrap superuser: the hook's look-ups in the
 * adb schema (is this table distributed?) run for every user's DDL, and a
 * user without rights on schema adb must still be able to drop a table of
 * their own.
 */
static char *
spi_value(bool as_owner, const char *sql, int nargs, Oid *types, Datum *values, const char *nulls)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *res = NULL;
	Oid			save_user;
	int			save_sec;
	int			rc;

	GetUserIdAndSecContext(&save_user, &save_sec);
	if (as_owner)
		SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
		if (rc < 0)
			elog(ERROR, "SPI_execute_with_args failed: %d", rc);
		if (SPI_tuptable != NULL && SPI_processed > 0)
		{
			char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

			if (v)
				res = MemoryContextStrdup(cxt, v);
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
	return res;
}

/* spi_args runs sql with up to five arguments of the given types. */
static char *
spi_args(bool as_owner, const char *sql, Oid t1, Datum v1, Oid t2, Datum v2, Oid t3, Datum v3,
		 Oid t4, Datum v4, Oid t5, Datum v5, const char *nulls)
{
	Oid			types[5] = {t1, t2, t3, t4, t5};
	Datum		values[5] = {v1, v2, v3, v4, v5};
	int			n = 0;

	while (n < 5 && OidIsValid(types[n]))
		n++;
	return spi_value(as_owner, sql, n, types, values, nulls);
}

/* spi_call runs sql as the user; lookup reads the adb schema as its owner. */
#define spi_call(...) spi_args(false, __VA_ARGS__)
#define lookup(...) spi_args(true, __VA_ARGS__)

#define TXT(s) CStringGetTextDatum(s)

/* dist_column is relid's distribution column, or NULL if it is not distributed. */
static char *
dist_column(Oid relid)
{
	if (!OidIsValid(relid))
		return NULL;
	return lookup("SELECT dist_column FROM adb.dist_table WHERE rel = $1::regclass",
					OIDOID, ObjectIdGetDatum(relid), InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, NULL);
}

/* rangevar_dist is the distributed table rv names, or InvalidOid. */
static Oid
rangevar_dist(RangeVar *rv)
{
	Oid			relid;

	if (rv == NULL)
		return InvalidOid;
	relid = RangeVarGetRelid(rv, NoLock, true);
	return dist_column(relid) ? relid : InvalidOid;
}

/* refuse is the error for DDL a distributed table does not support. */
static void
refuse(const char *what, Oid relid)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s is not supported on distributed table \"%s\"", what, get_rel_name(relid))));
}

/* refuse_stmt refuses parsetree, named by its command tag. */
static void
refuse_stmt(Node *parsetree, Oid relid)
{
	refuse(GetCommandTagName(CreateCommandTag(parsetree)), relid);
}

/*
 * name_end is where the (possibly qualified) name starting at start in
 * query ends: the start of the token after it, found with PostgreSQL's own
 * lexer, so that quoted names and comments are read as the parser reads
 * them.
 */
static int
name_end(const char *query, int start, int end)
{
	char	   *s = pnstrdup(query + start, end - start);
	core_yy_extra_type extra;
	core_YYSTYPE lval;
	YYLTYPE		lloc;
	core_yyscan_t sc;
	bool		want_name = true;
	int			result = end - start;

	sc = scanner_init(s, &extra, &ScanKeywords, ScanKeywordTokens);
	for (;;)
	{
		int			tok = core_yylex(&lval, &lloc, sc);

		if (tok == 0)
			break;
		if (want_name)
		{
			want_name = false;
			continue;
		}
		if (tok == '.')
		{
			want_name = true;
			continue;
		}
		result = lloc;
		break;
	}
	scanner_finish(sc);
	pfree(s);
	return start + result;
}

/* text_with is query[from, to) with the insertions that fall in it. */
static char *
text_with(const char *query, int from, int to, List *insertions)
{
	StringInfoData b;
	int			cur = from;
	ListCell   *lc;

	initStringInfo(&b);
	foreach(lc, insertions)
	{
		Insertion  *ins = lfirst(lc);

		if (ins->pos < from || ins->pos >= to)
			continue;
		appendBinaryStringInfo(&b, query + cur, ins->pos - cur);
		appendStringInfoString(&b, ins->text);
		cur = ins->pos;
	}
	appendBinaryStringInfo(&b, query + cur, to - cur);
	return b.data;
}

static int
insertion_cmp(const ListCell *a, const ListCell *b)
{
	return ((Insertion *) lfirst(a))->pos - ((Insertion *) lfirst(b))->pos;
}

/*
 * check_text_sendable refuses to send a statement's own text to the other
 * nodes while standard_conforming_strings is off here: they read string
 * literals with it on, so a backslash would end a literal there that goes
 * on here.
 */
static void
check_text_sendable(Oid relid)
{
	if (!standard_conforming_strings)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("DDL on distributed table \"%s\" needs standard_conforming_strings on", get_rel_name(relid)),
				 errhint("SET standard_conforming_strings = on, then run it again.")));
}

/*
 * split_statement cuts the statement pstmt (of query) at the relation rv
 * names: head is the text before the name, tail the text after it, each
 * with insertions made. A shard's statement is head, its name, tail.
 */
static void
split_statement(PlannedStmt *pstmt, const char *query, RangeVar *rv, List *insertions,
				char **head, char **tail)
{
	int			start = pstmt->stmt_location >= 0 ? pstmt->stmt_location : 0;
	int			end = pstmt->stmt_len > 0 ? start + pstmt->stmt_len : (int) strlen(query);
	int			nstart = rv->location;

	check_text_sendable(RangeVarGetRelid(rv, NoLock, true));

	if (nstart < start || nstart >= end)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot send this statement to the shards of distributed table \"%s\": its text is not available",
						rv->relname)));
	list_sort(insertions, insertion_cmp);
	*head = text_with(query, start, nstart, insertions);
	*tail = text_with(query, name_end(query, nstart, end), end, insertions);
}

/*
 * name_check names an unnamed CHECK constraint c of relid (as PostgreSQL
 * would: <table>_<column>_check, made unique) and records where its name
 * goes in the statement's text, so that the shards get the same name.
 */
static void
name_check(Constraint *c, Oid relid, const char *colname, List **insertions, List **used)
{
	Insertion  *ins;

	if (c->conname != NULL)
		return;
	if (c->location < 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("name the CHECK constraint on distributed table \"%s\"", get_rel_name(relid))));
	c->conname = ChooseConstraintName(get_rel_name(relid), colname, "check", get_rel_namespace(relid), *used);
	*used = lappend(*used, c->conname);
	ins = palloc(sizeof(Insertion));
	ins->pos = c->location;
	ins->text = psprintf("CONSTRAINT %s ", quote_identifier(c->conname));
	*insertions = lappend(*insertions, ins);
}

/* is_serial says whether type name t is one of the serial pseudo-types. */
static bool
is_serial(TypeName *t)
{
	char	   *name;

	if (t == NULL || t->names == NIL || list_length(t->names) > 2)
		return false;
	if (list_length(t->names) == 2 && strcmp(strVal(linitial(t->names)), "pg_catalog") != 0)
		return false;
	name = strVal(llast(t->names));
	return strcmp(name, "serial") == 0 || strcmp(name, "bigserial") == 0 || strcmp(name, "smallserial") == 0 ||
		strcmp(name, "serial2") == 0 || strcmp(name, "serial4") == 0 || strcmp(name, "serial8") == 0;
}

/*
 * check_new_column refuses what a column added to a distributed table may
 * not carry (a key, a sequence, a reference…) and names its CHECKs.
 */
static void
check_new_column(ColumnDef *def, Oid relid, List **insertions, List **used)
{
	ListCell   *lc;

	if (is_serial(def->typeName))
		refuse("ADD COLUMN of a serial type", relid);
	foreach(lc, def->constraints)
	{
		Constraint *c = lfirst_node(Constraint, lc);

		switch (c->contype)
		{
			case CONSTR_NULL:
			case CONSTR_NOTNULL:
			case CONSTR_DEFAULT:
				break;
			case CONSTR_CHECK:
				name_check(c, relid, def->colname, insertions, used);
				break;
			case CONSTR_PRIMARY:
			case CONSTR_UNIQUE:
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("ADD COLUMN with PRIMARY KEY or UNIQUE is not supported on distributed table \"%s\"", get_rel_name(relid)),
						 errhint("Add the column, then ALTER TABLE … ADD PRIMARY KEY or UNIQUE (it must include the distribution column).")));
				break;
			case CONSTR_IDENTITY:
				refuse("ADD COLUMN … GENERATED AS IDENTITY", relid);
				break;
			case CONSTR_GENERATED:
				refuse("ADD COLUMN … GENERATED ALWAYS AS", relid);
				break;
			case CONSTR_FOREIGN:
				refuse("REFERENCES (a foreign key)", relid);
				break;
			default:
				refuse("this column constraint", relid);
		}
	}
}

/* subcommand_name names an ALTER TABLE subcommand for an error. */
static const char *
subcommand_name(AlterTableType t)
{
	switch (t)
	{
		case AT_DropExpression:
			return "ALTER TABLE … DROP EXPRESSION";
		case AT_SetStatistics:
			return "ALTER TABLE … SET STATISTICS";
		case AT_SetOptions:
		case AT_ResetOptions:
			return "ALTER TABLE … ALTER COLUMN … SET/RESET (…)";
		case AT_SetStorage:
			return "ALTER TABLE … SET STORAGE";
		case AT_SetCompression:
			return "ALTER TABLE … SET COMPRESSION";
		case AT_AlterConstraint:
			return "ALTER TABLE … ALTER CONSTRAINT";
		case AT_AddIndexConstraint:
			return "ALTER TABLE … ADD CONSTRAINT … USING INDEX";
		case AT_ChangeOwner:
			return "ALTER TABLE … OWNER TO";
		case AT_ClusterOn:
			return "ALTER TABLE … CLUSTER ON";
		case AT_DropCluster:
			return "ALTER TABLE … SET WITHOUT CLUSTER";
		case AT_SetLogged:
			return "ALTER TABLE … SET LOGGED";
		case AT_SetUnLogged:
			return "ALTER TABLE … SET UNLOGGED";
		case AT_SetAccessMethod:
			return "ALTER TABLE … SET ACCESS METHOD";
		case AT_SetTableSpace:
			return "ALTER TABLE … SET TABLESPACE";
		case AT_SetRelOptions:
		case AT_ResetRelOptions:
		case AT_ReplaceRelOptions:
			return "ALTER TABLE … SET/RESET (storage parameters)";
		case AT_EnableTrig:
		case AT_EnableAlwaysTrig:
		case AT_EnableReplicaTrig:
		case AT_DisableTrig:
		case AT_EnableTrigAll:
		case AT_DisableTrigAll:
		case AT_EnableTrigUser:
		case AT_DisableTrigUser:
			return "ALTER TABLE … ENABLE/DISABLE TRIGGER";
		case AT_EnableRule:
		case AT_EnableAlwaysRule:
		case AT_EnableReplicaRule:
		case AT_DisableRule:
			return "ALTER TABLE … ENABLE/DISABLE RULE";
		case AT_AddInherit:
			return "ALTER TABLE … INHERIT";
		case AT_DropInherit:
			return "ALTER TABLE … NO INHERIT";
		case AT_AddOf:
			return "ALTER TABLE … OF";
		case AT_DropOf:
			return "ALTER TABLE … NOT OF";
		case AT_ReplicaIdentity:
			return "ALTER TABLE … REPLICA IDENTITY";
		case AT_EnableRowSecurity:
		case AT_DisableRowSecurity:
		case AT_ForceRowSecurity:
		case AT_NoForceRowSecurity:
			return "ALTER TABLE … ROW LEVEL SECURITY";
		case AT_GenericOptions:
		case AT_AlterColumnGenericOptions:
			return "ALTER TABLE … OPTIONS";
		case AT_DetachPartitionFinalize:
			return "ALTER TABLE … DETACH PARTITION … FINALIZE";
		case AT_AddIdentity:
		case AT_SetIdentity:
		case AT_DropIdentity:
			return "ALTER TABLE … ADD/SET/DROP IDENTITY";
		default:
			return "this ALTER TABLE subcommand";
	}
}

/* text_array is the text[] of the names in list (String nodes). */
static Datum
text_array(List *names)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(list_length(names), 1));
	int			n = 0;
	ListCell   *lc;

	foreach(lc, names)
		d[n++] = TXT(strVal(lfirst(lc)));
	return PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* name_list is "a, b" of the names in list, quoted. */
static char *
name_list(List *names)
{
	StringInfoData b;
	ListCell   *lc;

	initStringInfo(&b);
	foreach(lc, names)
	{
		if (b.len > 0)
			appendStringInfoString(&b, ", ");
		appendStringInfoString(&b, quote_identifier(strVal(lfirst(lc))));
	}
	return b.data;
}

/*
 * add_key gives distributed table relid the PRIMARY KEY or UNIQUE
 * constraint c (ALTER TABLE … ADD): on its shards, listed on every
 * coordinator (adb.add_dist_constraint), refused as Citus does when it
 * leaves out the distribution column.
 */
static void
add_key(Constraint *c, Oid relid)
{
	StringInfoData def;
	char	   *name;
	List	   *cols;
	bool		primary = c->contype == CONSTR_PRIMARY;

	if (c->indexname || c->options || c->indexspace || c->deferrable || c->initdeferred)
		refuse(primary ? "PRIMARY KEY with USING INDEX, WITH, TABLESPACE or DEFERRABLE" :
			   "UNIQUE with USING INDEX, WITH, TABLESPACE or DEFERRABLE", relid);
	initStringInfo(&def);
	appendStringInfoString(&def, primary ? "PRIMARY KEY" : "UNIQUE");
	if (c->nulls_not_distinct)
		appendStringInfoString(&def, " NULLS NOT DISTINCT");
	appendStringInfo(&def, " (%s)", name_list(c->keys));
	if (c->including)
		appendStringInfo(&def, " INCLUDE (%s)", name_list(c->including));
	if (c->conname)
		name = c->conname;
	else if (primary)
		name = ChooseConstraintName(get_rel_name(relid), NULL, "pkey", get_rel_namespace(relid), NIL);
	else
	{
		StringInfoData cn;
		ListCell   *lc;

		initStringInfo(&cn);
		foreach(lc, c->keys)
		{
			if (cn.len > 0)
				appendStringInfoChar(&cn, '_');
			appendStringInfoString(&cn, strVal(lfirst(lc)));
		}
		name = ChooseConstraintName(get_rel_name(relid), cn.data, "key", get_rel_namespace(relid), NIL);
	}
	cols = list_concat_copy(c->keys, c->including);
	spi_call("SELECT adb.add_dist_constraint($1::regclass, $2, $3, $4, $5)",
			 OIDOID, ObjectIdGetDatum(relid), TEXTOID, TXT(name), TEXTOID, TXT(primary ? "primary key" : "unique"),
			 TEXTOID, TXT(def.data), TEXTARRAYOID, text_array(cols), NULL);
}

/* catalog_constraint is the kind of the listed key or unique index name of relid, or NULL. */
static char *
catalog_constraint(Oid relid, const char *name)
{
	return lookup("SELECT kind FROM adb.dist_constraint WHERE rel = $1::regclass AND name = $2",
					OIDOID, ObjectIdGetDatum(relid), TEXTOID, TXT(name), InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, NULL);
}

/*
 * ddl_lock takes the cluster-wide lock of DDL on distributed table relid
 * (adb.ddl_lock, on the gtmcoord master) before any lock here.
 */
static void
ddl_lock(Oid relid)
{
	spi_call("SELECT adb.ddl_lock(adb.qualified($1::regclass))", OIDOID, ObjectIdGetDatum(relid),
			 InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, NULL);
}

/*
 * alter_table runs ALTER TABLE on distributed table relid: here, then on
 * its shards and the other coordinators; keys go through add_key and
 * drop_key; attaching and detaching partitions (the manager re-pointing
 * slots) stay here; what the shards cannot follow is refused by name.
 */
static void
alter_table(PlannedStmt *pstmt, const char *queryString, ProcessUtilityContext context,
			ParamListInfo params, QueryEnvironment *queryEnv, DestReceiver *dest,
			QueryCompletion *qc, AlterTableStmt *stmt, Oid relid)
{
	List	   *insertions = NIL;
	List	   *used = NIL;
	StringInfoData catalog;
	int			nkeys = 0,
				nparts = 0,
				nother = 0;
	Constraint *key = NULL;
	char	   *dropkey = NULL;
	ListCell   *lc;
	char	   *head,
			   *tail;

	initStringInfo(&catalog);
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		switch (cmd->subtype)
		{
			case AT_AttachPartition:
			case AT_DetachPartition:
				nparts++;
				break;
			case AT_AddColumn:
				check_new_column(castNode(ColumnDef, cmd->def), relid, &insertions, &used);
				nother++;
				break;
			case AT_ColumnDefault:
			case AT_DropNotNull:
			case AT_SetNotNull:
			case AT_AlterColumnType:
			case AT_ValidateConstraint:
				nother++;
				break;
			case AT_DropColumn:
				{
					char	   *sql = spi_call("SELECT adb.column_catalog_sql($1::regclass, $2, NULL, $3)",
											   OIDOID, ObjectIdGetDatum(relid), TEXTOID, TXT(cmd->name),
											   BOOLOID, BoolGetDatum(cmd->behavior == DROP_CASCADE),
											   InvalidOid, 0, InvalidOid, 0, NULL);

					appendStringInfo(&catalog, "%s%s", catalog.len > 0 ? ";\n" : "", sql);
					nother++;
					break;
				}
			case AT_AddConstraint:
				{
					Constraint *c = castNode(Constraint, cmd->def);

					switch (c->contype)
					{
						case CONSTR_CHECK:
							name_check(c, relid, NULL, &insertions, &used);
							nother++;
							break;
						case CONSTR_PRIMARY:
						case CONSTR_UNIQUE:
							key = c;
							nkeys++;
							break;
						case CONSTR_EXCLUSION:
							ereport(ERROR,
									(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
									 errmsg("ADD EXCLUDE is not supported on distributed table \"%s\"", get_rel_name(relid)),
									 errhint("Declare the exclusion constraint before create_distributed_table.")));
							break;
						case CONSTR_FOREIGN:
							refuse("ADD FOREIGN KEY", relid);
							break;
						default:
							refuse("this ADD CONSTRAINT", relid);
					}
					break;
				}
			case AT_DropConstraint:
				if (catalog_constraint(relid, cmd->name))
				{
					dropkey = cmd->name;
					nkeys++;
				}
				else
					nother++;
				break;
			default:
				refuse(subcommand_name(cmd->subtype), relid);
		}
	}
	if (nkeys > 0 && (nkeys > 1 || nother > 0 || nparts > 0))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("on distributed table \"%s\", a key or unique constraint is added or dropped by an ALTER TABLE of its own",
						get_rel_name(relid))));
	if (nparts > 0 && nother > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("on distributed table \"%s\", ATTACH or DETACH PARTITION goes in an ALTER TABLE of its own",
						get_rel_name(relid))));
	if (nparts > 0)
	{
		/*
		 * The manager re-pointing slots (EXPAND) on each coordinator, in
		 * transactions it holds open together: no cluster-wide lock.
		 */
		run_local(pstmt, queryString, false, context, params, queryEnv, dest, qc);
		return;
	}
	ddl_lock(relid);
	if (key)
	{
		add_key(key, relid);
		return;
	}
	if (dropkey)
	{
		spi_call("SELECT adb.drop_dist_constraint($1::regclass, $2)",
				 OIDOID, ObjectIdGetDatum(relid), TEXTOID, TXT(dropkey), InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, NULL);
		return;
	}
	split_statement(pstmt, queryString, stmt->relation, insertions, &head, &tail);
	if (catalog.len > 0)
		spi_call("SELECT adb.locally($1)", TEXTOID, TXT(catalog.data), InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, NULL);
	run_local(pstmt, queryString, false, context, params, queryEnv, dest, qc);
	CommandCounterIncrement();
	spi_call("SELECT adb.alter_dist_table($1::regclass, $2, $3, $4)",
			 OIDOID, ObjectIdGetDatum(relid), TEXTOID, TXT(head), TEXTOID, TXT(tail),
			 TEXTOID, TXT(catalog.len > 0 ? catalog.data : ""), InvalidOid, 0, catalog.len > 0 ? "    " : "   n");
}

/* rename runs ALTER TABLE … RENAME COLUMN on a distributed table everywhere. */
static void
rename_column(PlannedStmt *pstmt, const char *queryString, ProcessUtilityContext context,
			  ParamListInfo params, QueryEnvironment *queryEnv, DestReceiver *dest,
			  QueryCompletion *qc, RenameStmt *stmt, Oid relid)
{
	char	   *catalog;
	char	   *head,
			   *tail;

	catalog = spi_call("SELECT adb.column_catalog_sql($1::regclass, $2, $3, false)",
					   OIDOID, ObjectIdGetDatum(relid), TEXTOID, TXT(stmt->subname), TEXTOID, TXT(stmt->newname),
					   InvalidOid, 0, InvalidOid, 0, NULL);
	split_statement(pstmt, queryString, stmt->relation, NIL, &head, &tail);
	spi_call("SELECT adb.locally($1)", TEXTOID, TXT(catalog), InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, NULL);
	run_local(pstmt, queryString, false, context, params, queryEnv, dest, qc);
	CommandCounterIncrement();
	spi_call("SELECT adb.alter_dist_table($1::regclass, $2, $3, $4)",
			 OIDOID, ObjectIdGetDatum(relid), TEXTOID, TXT(head), TEXTOID, TXT(tail), TEXTOID, TXT(catalog),
			 InvalidOid, 0, NULL);
}

/* index_list is relid's indexes. */
static List *
index_list(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	List	   *l = list_copy(RelationGetIndexList(rel));

	table_close(rel, AccessShareLock);
	return l;
}

/* new_index is the index of relid not in before, or InvalidOid. */
static Oid
new_index(Oid relid, List *before)
{
	List	   *after = index_list(relid);
	ListCell   *lc;

	foreach(lc, after)
		if (!list_member_oid(before, lfirst_oid(lc)))
			return lfirst_oid(lc);
	return InvalidOid;
}

/*
 * create_index runs CREATE INDEX on distributed table relid. A plain index
 * is made here (a partitioned index, which the foreign partitions skip),
 * then on every shard and coordinator. A unique one cannot be made here:
 * it is built as a plain index in a subtransaction that is rolled back,
 * only to read its definition as PostgreSQL writes it, then made on every
 * shard and listed on every coordinator (adb.add_dist_constraint).
 */
static void
create_index(PlannedStmt *pstmt, const char *queryString, ProcessUtilityContext context,
			 ParamListInfo params, QueryEnvironment *queryEnv, DestReceiver *dest,
			 QueryCompletion *qc, IndexStmt *stmt, Oid relid)
{
	List	   *before;
	Oid			idx;

	if (stmt->concurrent)
		refuse("CREATE INDEX CONCURRENTLY", relid);
	/* The definition goes out as pg_get_indexdef writes it, by these rules. */
	check_text_sendable(relid);
	before = index_list(relid);
	if (!stmt->unique)
	{
		run_local(pstmt, queryString, false, context, params, queryEnv, dest, qc);
		CommandCounterIncrement();
		idx = new_index(relid, before);
		if (OidIsValid(idx))
			spi_call("SELECT adb.create_dist_index($1::regclass, $2)",
					 OIDOID, ObjectIdGetDatum(relid), OIDOID, ObjectIdGetDatum(idx),
					 InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, NULL);
		return;
	}
	if (stmt->idxname && stmt->if_not_exists &&
		lookup("SELECT 1 FROM adb.dist_constraint d JOIN pg_class c ON c.oid = d.rel WHERE d.name = $1 AND c.relnamespace = $2",
				 TEXTOID, TXT(stmt->idxname), OIDOID, ObjectIdGetDatum(get_rel_namespace(relid)),
				 InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, NULL))
	{
		ereport(NOTICE,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("relation \"%s\" already exists, skipping", stmt->idxname)));
		return;
	}
	{
		MemoryContext cxt = CurrentMemoryContext;
		ResourceOwner owner = CurrentResourceOwner;
		IndexStmt  *plain = copyObject(stmt);
		PlannedStmt *p2 = copyObject(pstmt);
		char	   *name = NULL,
				   *def = NULL,
				   *cols = NULL,
				   *hasdist = NULL;

		plain->unique = false;
		plain->nulls_not_distinct = false;
		p2->utilityStmt = (Node *) plain;
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		run_local(p2, queryString, false, context, params, queryEnv, None_Receiver, NULL);
		CommandCounterIncrement();
		idx = new_index(relid, before);
		if (OidIsValid(idx))
		{
			name = spi_call("SELECT relname FROM pg_class WHERE oid = $1", OIDOID, ObjectIdGetDatum(idx),
							InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, NULL);
			def = spi_call("SELECT adb.index_using($1)", OIDOID, ObjectIdGetDatum(idx),
						   InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, NULL);
			cols = spi_call("SELECT adb.index_cols($1)::text", OIDOID, ObjectIdGetDatum(idx),
							InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, NULL);
			hasdist = spi_call("SELECT (SELECT a.attnum FROM pg_attribute a JOIN adb.dist_table d ON d.rel = a.attrelid AND d.dist_column = a.attname"
							   " WHERE a.attrelid = i.indrelid) = ANY (i.indkey::int2[]) FROM pg_index i WHERE i.indexrelid = $1",
							   OIDOID, ObjectIdGetDatum(idx), InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, NULL);
		}
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (name == NULL)
			return;
		if (hasdist == NULL || strcmp(hasdist, "t") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("creating unique indexes on non-partition columns is currently unsupported"),
					 errdetail("Unique index \"%s\" does not include the distribution column of \"%s\".", name, get_rel_name(relid))));
		spi_call("SELECT adb.add_dist_constraint($1::regclass, $2, 'unique index', $3, $4::text[])",
				 OIDOID, ObjectIdGetDatum(relid), TEXTOID, TXT(name), TEXTOID, TXT(def), TEXTOID, TXT(cols),
				 InvalidOid, 0, NULL);
	}
}

/*
 * drop_index runs DROP INDEX of an index of a distributed table: a plain
 * one here, then on its shards and the other coordinators; a listed unique
 * index through adb.drop_dist_constraint. Other DROP INDEX run as they are.
 */
static bool
drop_index(PlannedStmt *pstmt, const char *queryString, ProcessUtilityContext context,
		   ParamListInfo params, QueryEnvironment *queryEnv, DestReceiver *dest,
		   QueryCompletion *qc, DropStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->objects)
	{
		RangeVar   *rv = makeRangeVarFromNameList(castNode(List, lfirst(lc)));
		Oid			idx = RangeVarGetRelid(rv, NoLock, true);
		Oid			relid = OidIsValid(idx) ? IndexGetRelation(idx, true) : InvalidOid;
		Oid			types[2] = {TEXTOID, TEXTOID};
		Datum		values[2];
		char		nulls[2] = {' ', ' '};
		char	   *found;

		if (OidIsValid(relid) && dist_column(relid))
		{
			char	   *nsp = get_namespace_name(get_rel_namespace(idx));
			char	   *name = get_rel_name(idx);

			if (list_length(stmt->objects) > 1)
				refuse("DROP INDEX of several indexes at once", relid);
			if (stmt->concurrent)
				refuse("DROP INDEX CONCURRENTLY", relid);
			ddl_lock(relid);
			run_local(pstmt, queryString, false, context, params, queryEnv, dest, qc);
			spi_call("SELECT adb.drop_dist_index($1::regclass, $2, $3, $4)",
					 OIDOID, ObjectIdGetDatum(relid), TEXTOID, TXT(nsp), TEXTOID, TXT(name),
					 BOOLOID, BoolGetDatum(stmt->behavior == DROP_CASCADE), InvalidOid, 0, NULL);
			return true;
		}
		if (OidIsValid(idx))
			continue;
		values[0] = rv->schemaname ? TXT(rv->schemaname) : (Datum) 0;
		nulls[0] = rv->schemaname ? ' ' : 'n';
		values[1] = TXT(rv->relname);
		found = spi_value(true, "SELECT rel::oid || ' ' || kind FROM adb.find_dist_constraint($1, $2) WHERE rel IS NOT NULL",
						  2, types, values, nulls);
		if (found)
		{
			Oid			rel = (Oid) strtoul(found, NULL, 10);
			char	   *kind = strchr(found, ' ') + 1;

			if (list_length(stmt->objects) > 1)
				refuse("DROP INDEX of several indexes at once", rel);
			if (strcmp(kind, "unique index") != 0)
				ereport(ERROR,
						(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
						 errmsg("cannot drop index %s because constraint %s on table %s requires it",
								rv->relname, rv->relname, get_rel_name(rel)),
						 errhint("You can drop constraint %s on table %s instead.", rv->relname, get_rel_name(rel))));
			spi_call("SELECT adb.drop_dist_constraint($1::regclass, $2)",
					 OIDOID, ObjectIdGetDatum(rel), TEXTOID, TXT(rv->relname), InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, NULL);
			return true;
		}
	}
	return false;
}

/*
 * drop_tables runs DROP TABLE: the distributed tables it names are dropped
 * everywhere (adb.drop_table_everywhere), the others here as PostgreSQL
 * would.
 */
static void
drop_tables(PlannedStmt *pstmt, const char *queryString, ProcessUtilityContext context,
			ParamListInfo params, QueryEnvironment *queryEnv, DestReceiver *dest,
			QueryCompletion *qc, DropStmt *stmt)
{
	List	   *rest = NIL;
	ListCell   *lc;
	bool		any = false;

	foreach(lc, stmt->objects)
	{
		Oid			relid = rangevar_dist(makeRangeVarFromNameList(castNode(List, lfirst(lc))));

		if (!OidIsValid(relid))
		{
			rest = lappend(rest, lfirst(lc));
			continue;
		}
		any = true;
		spi_call("SELECT adb.drop_table_everywhere($1::regclass, $2)",
				 OIDOID, ObjectIdGetDatum(relid), BOOLOID, BoolGetDatum(stmt->behavior == DROP_CASCADE),
				 InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, NULL);
	}
	if (!any)
		run_local(pstmt, queryString, false, context, params, queryEnv, dest, qc);
	else if (rest != NIL)
	{
		PlannedStmt *p2 = copyObject(pstmt);
		DropStmt   *d2 = (DropStmt *) p2->utilityStmt;

		d2->objects = rest;
		run_local(p2, queryString, false, context, params, queryEnv, dest, qc);
	}
}

/* first_dist is the first distributed table in a list of RangeVars, or InvalidOid. */
static Oid
first_dist(List *rangevars)
{
	ListCell   *lc;

	foreach(lc, rangevars)
	{
		Oid			relid;

		if (!IsA(lfirst(lc), RangeVar))
			continue;
		relid = rangevar_dist(lfirst_node(RangeVar, lc));
		if (OidIsValid(relid))
			return relid;
	}
	return InvalidOid;
}

/* schema_dist is a distributed table in schema nsp (its name), or NULL. */
static char *
schema_dist(const char *nsp)
{
	return lookup("SELECT d.rel::text FROM adb.dist_table d JOIN pg_class c ON c.oid = d.rel"
				  " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 LIMIT 1",
				  TEXTOID, TXT(nsp), InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, NULL);
}

/*
 * forward runs a statement on distributed tables here, then as it is
 * (its own text) on every other coordinator, in this transaction: GRANT,
 * REVOKE and COMMENT, which concern the coordinators' parent tables only
 * (the shards are reached through the user mappings, whatever the
 * client's role).
 */
static void
forward(PlannedStmt *pstmt, const char *queryString, ProcessUtilityContext context,
		ParamListInfo params, QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc, Oid relid)
{
	int			start = pstmt->stmt_location >= 0 ? pstmt->stmt_location : 0;
	int			len = pstmt->stmt_len > 0 ? pstmt->stmt_len : (int) strlen(queryString + start);
	char	   *sql = pnstrdup(queryString + start, len);

	check_text_sendable(relid);
	/* The other coordinators run it as the adb connection's superuser. */
	if (IsA(pstmt->utilityStmt, GrantStmt) && !superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser can GRANT or REVOKE privileges on distributed table \"%s\"", get_rel_name(relid)),
				 errhint("Ask a superuser to run it.")));
	run_local(pstmt, queryString, false, context, params, queryEnv, dest, qc);
	CommandCounterIncrement();
	spi_call("SELECT adb.on_coordinators($1)", TEXTOID, TXT(sql), InvalidOid, 0, InvalidOid, 0,
			 InvalidOid, 0, InvalidOid, 0, NULL);
}

/*
 * seq_dist is the distributed table whose serial column owns the sequence
 * rv names, or InvalidOid.
 */
static Oid
seq_dist(RangeVar *rv)
{
	Oid			seq = RangeVarGetRelid(rv, NoLock, true);
	Oid			tab;
	int32		col;

	if (!OidIsValid(seq) || !sequenceIsOwned(seq, DEPENDENCY_AUTO, &tab, &col) || !dist_column(tab))
		return InvalidOid;
	return tab;
}

/*
 * grant_dist_sequences is the distributed table a GRANT or REVOKE on
 * sequences concerns (one of its serial columns' sequences: adb.dist_nextval
 * checks their USAGE on each coordinator), or InvalidOid; such sequences
 * named with others are refused, as tables are.
 */
static Oid
grant_dist_sequences(GrantStmt *s)
{
	Oid			relid = InvalidOid;
	ListCell   *lc;

	foreach(lc, s->objects)
		if (!OidIsValid(relid))
			relid = seq_dist(lfirst_node(RangeVar, lc));
	if (!OidIsValid(relid))
		return InvalidOid;
	foreach(lc, s->objects)
		if (!OidIsValid(seq_dist(lfirst_node(RangeVar, lc))))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("%s on a sequence of distributed table \"%s\" together with sequence \"%s\" is not supported",
							s->is_grant ? "GRANT" : "REVOKE", get_rel_name(relid), lfirst_node(RangeVar, lc)->relname),
					 errhint("Name the distributed tables' sequences in a %s of their own.", s->is_grant ? "GRANT" : "REVOKE")));
	return relid;
}

/*
 * grant_dist is the distributed table a GRANT or REVOKE on tables names,
 * or InvalidOid. One that names a distributed table with other tables, or
 * all tables of a schema holding one, is refused: the other coordinators
 * hold the distributed tables only.
 */
static Oid
grant_dist(GrantStmt *s)
{
	Oid			relid = InvalidOid;
	ListCell   *lc;

	if (s->objtype == OBJECT_SEQUENCE && s->targtype == ACL_TARGET_OBJECT)
		return grant_dist_sequences(s);
	if (s->objtype != OBJECT_TABLE)
		return InvalidOid;
	if (s->targtype == ACL_TARGET_ALL_IN_SCHEMA)
	{
		foreach(lc, s->objects)
		{
			char	   *t = schema_dist(strVal(lfirst(lc)));

			if (t)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("%s … ON ALL TABLES IN SCHEMA is not supported on schema \"%s\": it holds distributed table %s",
								s->is_grant ? "GRANT" : "REVOKE", strVal(lfirst(lc)), t),
						 errhint("Name the distributed tables in a %s of their own, and the other tables in another.",
								 s->is_grant ? "GRANT" : "REVOKE")));
		}
		return InvalidOid;
	}
	if (s->targtype != ACL_TARGET_OBJECT)
		return InvalidOid;
	relid = first_dist(s->objects);
	if (!OidIsValid(relid))
		return InvalidOid;
	foreach(lc, s->objects)
		if (!OidIsValid(rangevar_dist(lfirst_node(RangeVar, lc))))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("%s on distributed table \"%s\" together with table \"%s\" is not supported",
							s->is_grant ? "GRANT" : "REVOKE", get_rel_name(relid),
							lfirst_node(RangeVar, lc)->relname),
					 errhint("Name the distributed tables in a %s of their own, and the other tables in another.",
							 s->is_grant ? "GRANT" : "REVOKE")));
	return relid;
}

/* comment_dist is the distributed table a COMMENT ON TABLE or COLUMN is on, or InvalidOid. */
static Oid
comment_dist(CommentStmt *s)
{
	List	   *names;

	if (s->objtype != OBJECT_TABLE && s->objtype != OBJECT_COLUMN)
		return InvalidOid;
	names = castNode(List, s->object);
	if (s->objtype == OBJECT_COLUMN)
	{
		if (list_length(names) < 2)
			return InvalidOid;
		names = list_truncate(list_copy(names), list_length(names) - 1);
	}
	return rangevar_dist(makeRangeVarFromNameList(names));
}

/*
 * dispatch handles DDL that touches a distributed table; it is the hook's
 * body once the hook knows this node holds the catalog.
 */
static void
dispatch(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
		 ProcessUtilityContext context, ParamListInfo params,
		 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	Oid			relid = InvalidOid;

	switch (nodeTag(parsetree))
	{
		case T_AlterTableStmt:
			{
				AlterTableStmt *s = (AlterTableStmt *) parsetree;

				if (s->objtype == OBJECT_TABLE && OidIsValid(relid = rangevar_dist(s->relation)))
				{
					alter_table(pstmt, queryString, context, params, queryEnv, dest, qc,
								(AlterTableStmt *) pstmt->utilityStmt, relid);
					return;
				}
				break;
			}
		case T_RenameStmt:
			{
				RenameStmt *s = (RenameStmt *) parsetree;

				if (s->renameType == OBJECT_INDEX && s->relation)
				{
					Oid			idx = RangeVarGetRelid(s->relation, NoLock, true);

					if (OidIsValid(idx) && OidIsValid(IndexGetRelation(idx, true)) && dist_column(IndexGetRelation(idx, true)))
						refuse("ALTER INDEX … RENAME", IndexGetRelation(idx, true));
					break;
				}
				if (!OidIsValid(relid = rangevar_dist(s->relation)))
					break;
				if (s->renameType == OBJECT_COLUMN)
				{
					ddl_lock(relid);
					rename_column(pstmt, queryString, context, params, queryEnv, dest, qc, s, relid);
					return;
				}
				refuse(s->renameType == OBJECT_TABLE ? "ALTER TABLE … RENAME TO" :
					   s->renameType == OBJECT_TABCONSTRAINT ? "ALTER TABLE … RENAME CONSTRAINT" :
					   GetCommandTagName(CreateCommandTag(parsetree)), relid);
				break;
			}
		case T_IndexStmt:
			{
				IndexStmt  *s = (IndexStmt *) parsetree;

				if (OidIsValid(relid = rangevar_dist(s->relation)))
				{
					ddl_lock(relid);
					create_index(pstmt, queryString, context, params, queryEnv, dest, qc, s, relid);
					return;
				}
				break;
			}
		case T_DropStmt:
			{
				DropStmt   *s = (DropStmt *) parsetree;

				if (s->removeType == OBJECT_TABLE)
				{
					drop_tables(pstmt, queryString, context, params, queryEnv, dest, qc, s);
					return;
				}
				if (s->removeType == OBJECT_INDEX)
				{
					if (drop_index(pstmt, queryString, context, params, queryEnv, dest, qc, s))
						return;
					break;
				}
				if (s->removeType == OBJECT_SCHEMA && s->behavior == DROP_CASCADE)
				{
					ListCell   *lc;

					foreach(lc, s->objects)
					{
						char	   *t = schema_dist(strVal(lfirst(lc)));

						if (t)
							ereport(ERROR,
									(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
									 errmsg("schema \"%s\" holds distributed table %s", strVal(lfirst(lc)), t),
									 errhint("Drop the distributed tables first (DROP TABLE).")));
					}
				}
				break;
			}
		case T_TruncateStmt:
			{
				TruncateStmt *s = (TruncateStmt *) parsetree;

				/*
				 * TRUNCATE reaches the shards by itself: postgres_fdw
				 * truncates foreign partitions, in its remote transactions.
				 * Restarting sequences would restart only this copy.
				 */
				if (s->restart_seqs && OidIsValid(relid = first_dist(s->relations)))
					refuse("TRUNCATE … RESTART IDENTITY", relid);
				break;
			}
		case T_GrantStmt:
			if (OidIsValid(relid = grant_dist((GrantStmt *) parsetree)))
			{
				forward(pstmt, queryString, context, params, queryEnv, dest, qc, relid);
				return;
			}
			break;
		case T_CommentStmt:
			if (OidIsValid(relid = comment_dist((CommentStmt *) parsetree)))
			{
				forward(pstmt, queryString, context, params, queryEnv, dest, qc, relid);
				return;
			}
			break;
		case T_CreateTrigStmt:
			relid = rangevar_dist(((CreateTrigStmt *) parsetree)->relation);
			break;
		case T_RuleStmt:
			relid = rangevar_dist(((RuleStmt *) parsetree)->relation);
			break;
		case T_CreatePolicyStmt:
			relid = rangevar_dist(((CreatePolicyStmt *) parsetree)->table);
			break;
		case T_CreateStatsStmt:
			relid = first_dist(((CreateStatsStmt *) parsetree)->relations);
			break;
		case T_ClusterStmt:
			relid = rangevar_dist(((ClusterStmt *) parsetree)->relation);
			break;
		case T_ReindexStmt:
			if (((ReindexStmt *) parsetree)->kind == REINDEX_OBJECT_TABLE)
				relid = rangevar_dist(((ReindexStmt *) parsetree)->relation);
			break;
		case T_AlterObjectSchemaStmt:
			if (((AlterObjectSchemaStmt *) parsetree)->objectType == OBJECT_TABLE)
				relid = rangevar_dist(((AlterObjectSchemaStmt *) parsetree)->relation);
			break;
		case T_CreateStmt:
			relid = first_dist(((CreateStmt *) parsetree)->inhRelations);
			break;
		default:
			break;
	}
	if (OidIsValid(relid))
		refuse_stmt(parsetree, relid);
	run_local(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

/*
 * adb_ddl_utility is the ProcessUtility hook. DDL that arrives from another
 * coordinator (adb.propagating), the hook's own statements, nodes without
 * the catalog (datanodes) and standbys run as PostgreSQL would.
 */
static void
adb_ddl_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				ProcessUtilityContext context, ParamListInfo params,
				QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (adb_propagating || ddl_depth > 0 || RecoveryInProgress() || !IsTransactionState() ||
		!catalog_present())
	{
		run_local(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		return;
	}
	/* The hook may name a constraint in the tree: work on a copy. */
	if (readOnlyTree)
		pstmt = copyObject(pstmt);
	ddl_depth++;
	PG_TRY();
	{
		dispatch(pstmt, queryString, false, context, params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		ddl_depth--;
	}
	PG_END_TRY();
}


/*
 * fdw_conn is postgres_fdw's connection to server node, as this user, for
 * statements that write there: the two-phase commit counts the node among
 * this transaction's writers.
 */
static PGconn *
fdw_conn(const char *node)
{
	ForeignServer *srv = GetForeignServerByName(node, false);
	PGconn	   *conn;

	conn = adb_fdw_GetConnection(GetUserMapping(GetUserId(), srv->serverid), false, NULL);
	/* After: postgres_fdw's first connection registers its callback. */
	adb_twophase_note_write(srv->serverid, GetUserId());
	return conn;
}

/*
 * short_sql is a batch cut for an error's context: its first lines, not
 * the same statement for each of the datanode's 32 shards.
 */
static char *
short_sql(const char *sql)
{
	int			len = strlen(sql);

	if (len <= 300)
		return (char *) sql;
	return psprintf("%.*s …", pg_mbcliplen(sql, len, 300), sql);
}

PG_FUNCTION_INFO_V1(adb_shards_exec);

/*
 * adb.shards_exec(nodes, sqls) runs sqls[i] on datanode nodes[i] for every
 * i, over postgres_fdw's own connection to it, in postgres_fdw's remote
 * transaction — the one the distributed tables' reads and writes in this
 * transaction use. On a connection of its own (adb.remote_exec's), a shard
 * made by create_distributed_table would not be seen by an INSERT in the
 * same transaction, and an ALTER TABLE's lock would wait forever for a
 * write through postgres_fdw in the same transaction, which waits for the
 * ALTER. The remote transactions commit or roll back with this one (by
 * two-phase commit when several nodes wrote: fdw_conn makes
 * ext/adb/twophase.c count the datanodes among the writers). The datanodes
 * work at once: every batch is sent before any answer is read (building 64
 * shards' indexes is mostly the datanodes' fsyncs). The first error is
 * this statement's, with the remote SQLSTATE; postgres_fdw cancels what is
 * still running on the others when the transaction aborts.
 */
Datum
adb_shards_exec(PG_FUNCTION_ARGS)
{
	Datum	   *nodes,
			   *sqls;
	bool	   *nnulls,
			   *snulls;
	int			n,
				m,
				i;
	PGconn	  **conns;
	char	  **q;

	deconstruct_array(PG_GETARG_ARRAYTYPE_P(0), TEXTOID, -1, false, TYPALIGN_INT, &nodes, &nnulls, &n);
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), TEXTOID, -1, false, TYPALIGN_INT, &sqls, &snulls, &m);
	if (n != m)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("adb.shards_exec: %d nodes, %d statements", n, m)));
	conns = palloc0(sizeof(PGconn *) * Max(n, 1));
	q = palloc0(sizeof(char *) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		if (nnulls[i] || snulls[i])
			continue;
		q[i] = TextDatumGetCString(sqls[i]);
		conns[i] = fdw_conn(TextDatumGetCString(nodes[i]));
	}
	for (i = 0; i < n; i++)
		if (conns[i] && !PQsendQuery(conns[i], q[i]))
			adb_fdw_report_error(ERROR, NULL, conns[i], false, q[i]);
	for (i = 0; i < n; i++)
	{
		PGresult   *res;

		if (conns[i] == NULL)
			continue;
		res = adb_fdw_get_result(conns[i], q[i]);
		if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
			adb_fdw_report_error(ERROR, res, conns[i], true, short_sql(q[i]));
		PQclear(res);
	}
	PG_RETURN_VOID();
}

/*
 * The values of a sequence of a distributed table a session holds: the
 * rest of the last block it took from the gtmcoord master.
 */
typedef struct SeqBlock
{
	Oid			seq;
	int			next;
	int			n;
	int64	   *vals;
	Oid			checked_user;	/* USAGE checked for this user … */
	LocalTransactionId checked_lxid;	/* … in this transaction */
} SeqBlock;

static HTAB *seq_blocks = NULL;
static PGconn *gtm_conn = NULL;
static char *gtm_conninfo = NULL;

/* gtm_fetch takes n values of sequence name from the gtmcoord master into b. */
static void
gtm_fetch(SeqBlock *b, const char *conninfo, const char *name, int n)
{
	char		nbuf[16];
	const char *params[2] = {name, nbuf};
	PGresult   *res = NULL;
	int			attempt;

	snprintf(nbuf, sizeof(nbuf), "%d", n);
	for (attempt = 0; attempt < 2; attempt++)
	{
		if (gtm_conn == NULL || PQstatus(gtm_conn) != CONNECTION_OK ||
			gtm_conninfo == NULL || strcmp(gtm_conninfo, conninfo) != 0)
		{
			if (gtm_conn)
				PQfinish(gtm_conn);
			if (gtm_conninfo)
				pfree(gtm_conninfo);
			gtm_conn = PQconnectdb(conninfo);
			gtm_conninfo = MemoryContextStrdup(TopMemoryContext, conninfo);
			if (PQstatus(gtm_conn) != CONNECTION_OK)
			{
				char	   *msg = pstrdup(PQerrorMessage(gtm_conn));

				PQfinish(gtm_conn);
				gtm_conn = NULL;
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("cannot reach the gtmcoord master for values of sequence %s", name),
						 errdetail_internal("%s", msg)));
			}
		}
		res = PQexecParams(gtm_conn, "SELECT nextval($1::regclass) FROM generate_series(1, $2::integer)",
						   2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			break;
		if (PQstatus(gtm_conn) == CONNECTION_OK || attempt == 1)
		{
			char	   *msg = pstrdup(PQresultErrorMessage(res));

			PQclear(res);
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("the gtmcoord master did not hand out values of sequence %s", name),
					 errdetail_internal("%s", msg)));
		}
		PQclear(res);
		res = NULL;
	}
	if (b->vals)
		pfree(b->vals);
	b->n = PQntuples(res);
	b->vals = MemoryContextAlloc(TopMemoryContext, sizeof(int64) * Max(b->n, 1));
	for (b->next = 0; b->next < b->n; b->next++)
		b->vals[b->next] = strtoll(PQgetvalue(res, b->next, 0), NULL, 10);
	b->next = 0;
	PQclear(res);
}

PG_FUNCTION_INFO_V1(adb_dist_nextval);

/*
 * check_sequence_use checks, once per user and transaction, what nextval
 * checks: USAGE or UPDATE on a serial column's sequence. An identity
 * column's sequence needs none, as in PostgreSQL.
 */
static void
check_sequence_use(SeqBlock *b)
{
	Oid			tab;
	int32		col;

	if (b->checked_user == GetUserId() && b->checked_lxid == MyProc->lxid)
		return;
	if (!sequenceIsOwned(b->seq, DEPENDENCY_INTERNAL, &tab, &col) &&
		pg_class_aclcheck(b->seq, GetUserId(), ACL_USAGE | ACL_UPDATE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for sequence %s", get_rel_name(b->seq))));
	b->checked_user = GetUserId();
	b->checked_lxid = MyProc->lxid;
}

/*
 * adb.dist_nextval(seq) is the next value of sequence seq of a distributed
 * table, unique across the cluster: the gtmcoord master's copy of seq
 * hands them out, a block at a time, which this session keeps (sequences
 * promise no order across sessions, nor no gaps). On the gtmcoord master
 * itself it is nextval(seq).
 */
Datum
adb_dist_nextval(PG_FUNCTION_ARGS)
{
	Oid			seq = PG_GETARG_OID(0);
	SeqBlock   *b;
	bool		found;
	char	   *gtm;
	char	   *conninfo;
	char	   *name;

	if (seq_blocks == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(SeqBlock);
		ctl.hcxt = TopMemoryContext;
		seq_blocks = hash_create("adb sequence blocks", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	b = hash_search(seq_blocks, &seq, HASH_ENTER, &found);
	if (!found)
	{
		b->vals = NULL;
		b->n = b->next = 0;
		b->checked_user = InvalidOid;
		b->checked_lxid = InvalidLocalTransactionId;
	}
	check_sequence_use(b);
	if (b->next < b->n)
		PG_RETURN_INT64(b->vals[b->next++]);

	gtm = lookup("SELECT name FROM adb.node WHERE type = 'gtmcoord master'", InvalidOid, 0, InvalidOid, 0,
				   InvalidOid, 0, InvalidOid, 0, InvalidOid, 0, NULL);
	if (gtm == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the cluster has no gtmcoord master to hand out values of sequence %s", get_rel_name(seq))));
	if (cluster_name != NULL && strcmp(gtm, cluster_name) == 0)
		return DirectFunctionCall1(nextval_oid, ObjectIdGetDatum(seq));
	conninfo = lookup("SELECT adb.conninfo($1)", TEXTOID, TXT(gtm), InvalidOid, 0, InvalidOid, 0,
						InvalidOid, 0, InvalidOid, 0, NULL);
	if (conninfo == NULL)
		elog(ERROR, "no connection string for %s", gtm);
	name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(seq)), get_rel_name(seq));
	gtm_fetch(b, conninfo, name, sequence_block);
	if (b->n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("the gtmcoord master handed out no value of sequence %s", name)));
	PG_RETURN_INT64(b->vals[b->next++]);
}

/*
 * adb_ddl_init defines adb.propagating and adb.sequence_block and installs
 * the hook.
 */
void
adb_ddl_init(void)
{
	DefineCustomBoolVariable("adb.propagating",
							 "This transaction applies DDL another coordinator sent: it is not sent on again.",
							 NULL, &adb_propagating, false, PGC_USERSET, GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("adb.sequence_block",
							"How many values of a distributed table's sequence a session takes from the gtmcoord master at once.",
							NULL, &sequence_block, 100, 1, 1000000, PGC_USERSET, 0,
							NULL, NULL, NULL);
	prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = adb_ddl_utility;
}
