/*
 * upsert.c — INSERT … ON CONFLICT (key) … into a distributed table.
 *
 * PostgreSQL infers the arbiter index of ON CONFLICT (cols) on the table
 * the INSERT names, and a distributed table's keys live on its shards
 * (PostgreSQL allows no unique index on a table with foreign partitions),
 * so such an INSERT failed with 42P10; postgres_fdw could not send DO
 * UPDATE anyway. A planner_hook takes an INSERT with a conflict target or
 * DO UPDATE into a distributed table (VALUES or a query; no WITH, no
 * check option or row-level security) and plans it without its ON
 * CONFLICT clause; the plan's ModifyTable is replaced by a CustomScan
 * "AdbUpsert" over its source. At execution the source's rows (defaults
 * filled by the planner, as for any INSERT) are all read first, routed as
 * PostgreSQL's hash routing would route them, and then each shard gets
 * its rows as one statement
 *
 *   INSERT INTO <shard> AS adb_t (<columns>)
 *   VALUES (<row as typed literals>), … <the ON CONFLICT clause>
 *
 * over postgres_fdw's connection: in its remote transaction, at the
 * client's isolation level, counted as a writer by the two-phase commit.
 * The clause is rebuilt from the parse tree (clause_sql), in the forms
 * that mean the same on a datanode — the remote session is its superuser,
 * so nothing that reads a table, a setting or a function of a user goes
 * there. Reading the whole source first keeps the statement from seeing
 * its own rows (an INSERT … SELECT from the same table), and one
 * statement per shard keeps PostgreSQL's rule: rows with one key in one
 * statement fail ("cannot affect row a second time"). The row count is
 * the shards' (a conflict with DO NOTHING counts none). With RETURNING,
 * each shard returns its rows whole (RETURNING every column) and the
 * node computes the statement's RETURNING list from them, as a scan of
 * the table would. dml.c checks the statement before this (a DO UPDATE
 * of the distribution column is refused).
 */
#include "postgres.h"

#include "access/table.h"
#include "access/transam.h"
#include "catalog/pg_proc.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/planner.h"
#include "parser/parsetree.h"
#include "partitioning/partdesc.h"
#include "rewrite/rewriteManip.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"

#include "adb.h"

static planner_hook_type prev_planner_hook = NULL;

/* UpsertState is the upsert node at execution. */
typedef struct UpsertState
{
	CustomScanState css;
	Relation	rel;
	PartitionDesc pd;
	Oid			userid;
	FmgrInfo   *out;			/* output function of each column */
	char	  **casts;			/* "::type" of each column */
	StringInfoData *rows;		/* by partition: rows waiting, "(…), (…)" */
	bool		done;
	bool		returning;		/* the shards return their rows */
	FmgrInfo   *in;				/* input function of each column */
	Oid		   *ioparams;
	List	   *results;		/* the shards' RETURNING rows (PGresult *) */
	ListCell   *cur;
	int			row;
	MemoryContextCallback free_res;
} UpsertState;

static Node *upsert_create_state(CustomScan *cscan);
static void upsert_begin(CustomScanState *node, EState *estate, int eflags);
static TupleTableSlot *upsert_exec(CustomScanState *node);
static void upsert_end(CustomScanState *node);
static void upsert_rescan(CustomScanState *node);
static void upsert_explain(CustomScanState *node, List *ancestors, ExplainState *es);

static CustomScanMethods upsert_scan_methods = {
	"AdbUpsert",
	upsert_create_state,
};

static CustomExecMethods upsert_exec_methods = {
	.CustomName = "AdbUpsert",
	.BeginCustomScan = upsert_begin,
	.ExecCustomScan = upsert_exec,
	.EndCustomScan = upsert_end,
	.ReScanCustomScan = upsert_rescan,
	.ExplainCustomScan = upsert_explain,
};

/* refuse is the error for an upsert of a distributed table this file cannot send. */
static void
refuse(Oid relid, const char *what, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("INSERT … ON CONFLICT %s is not supported on distributed table \"%s\"", what, get_rel_name(relid)),
			 hint ? errhint("%s", hint) : 0));
}

/*
 * Deparse is the building of the clause the shards get, from the parse
 * tree (never the client's text): the conflict target's columns and the
 * DO UPDATE's assignments and WHERE, in the few forms that mean the same
 * on a datanode as here — the table's and EXCLUDED's columns, constants
 * (written as postgres_fdw writes them, with its settings), and built-in
 * immutable operators and functions over them (nothing that reads a
 * setting, a table or the session: those would run on the datanode, as
 * its superuser). Anything else is refused by name.
 */
typedef struct Deparse
{
	StringInfo	buf;
	Oid			relid;
	Index		target;			/* the table's range table index */
	Index		excluded;		/* EXCLUDED's */
} Deparse;

/* unsupported refuses an expression of the clause, naming what it is. */
static void
unsupported(Deparse *d, Node *n)
{
	const char *what;

	switch (nodeTag(n))
	{
		case T_FuncExpr:
			what = psprintf("with function %s in its clause (not a built-in immutable one)",
							get_func_name(((FuncExpr *) n)->funcid));
			break;
		case T_OpExpr:
			what = psprintf("with operator %s in its clause (not a built-in immutable one)",
							get_opname(((OpExpr *) n)->opno));
			break;
		case T_Param:
			what = "with a parameter in its clause";
			break;
		case T_SubLink:
			what = "with a sub-select in its clause";
			break;
		case T_SQLValueFunction:
			what = "with a value of the session (such as current_user) in its clause";
			break;
		case T_CaseTestExpr:
			what = "with a simple CASE (CASE x WHEN …) in its clause";
			break;
		case T_CoerceViaIO:
			what = "with a cast through text in its clause";
			break;
		case T_CollateExpr:
			what = "with COLLATE in its clause";
			break;
		case T_SubscriptingRef:
			what = "with a subscript in its clause";
			break;
		default:
			what = "with this expression in its clause";
			break;
	}
	refuse(d->relid, what,
		   "The ON CONFLICT clause may use the table's and EXCLUDED's columns, constants, built-in immutable operators and functions, searched CASE, COALESCE, GREATEST, LEAST, NULLIF, IS [NOT] DISTINCT FROM, IS [NOT] TRUE, IN, ANY and ARRAY.");
}

/* builtin_immutable says whether function funcid may run on a datanode. */
static bool
builtin_immutable(Oid funcid)
{
	return funcid < FirstGenbkiObjectId && func_volatile(funcid) == PROVOLATILE_IMMUTABLE;
}

static void deparse(Deparse *d, Node *n);

/* deparse_args writes a comma-separated list of expressions. */
static void
deparse_args(Deparse *d, List *args)
{
	ListCell   *lc;

	foreach(lc, args)
	{
		if (lc != list_head(args))
			appendStringInfoString(d->buf, ", ");
		deparse(d, lfirst(lc));
	}
}

/*
 * deparse_operator writes an operator: binary or prefix, IS DISTINCT
 * FROM, NULLIF, ANY/ALL.
 */
static void
deparse_operator(Deparse *d, Node *n)
{
	switch (nodeTag(n))
	{
		case T_OpExpr:
			{
				OpExpr	   *o = (OpExpr *) n;
				char	   *name = get_opname(o->opno);

				if (o->opno >= FirstGenbkiObjectId || !builtin_immutable(get_opcode(o->opno)) || name == NULL ||
					list_length(o->args) < 1 || list_length(o->args) > 2)
					unsupported(d, n);
				appendStringInfoChar(d->buf, '(');
				if (list_length(o->args) == 2)
				{
					deparse(d, linitial(o->args));
					appendStringInfoChar(d->buf, ' ');
				}
				appendStringInfo(d->buf, "OPERATOR(pg_catalog.%s) ", name);
				deparse(d, llast(o->args));
				appendStringInfoChar(d->buf, ')');
				break;
			}
		case T_DistinctExpr:
		case T_NullIfExpr:
			{
				OpExpr	   *o = (OpExpr *) n;	/* both are OpExprs */

				if (o->opno >= FirstGenbkiObjectId || !builtin_immutable(get_opcode(o->opno)) ||
					get_opname(o->opno) == NULL || strcmp(get_opname(o->opno), "=") != 0 ||
					list_length(o->args) != 2)
					unsupported(d, n);
				appendStringInfoString(d->buf, IsA(n, NullIfExpr) ? "NULLIF(" : "(");
				deparse(d, linitial(o->args));
				appendStringInfoString(d->buf, IsA(n, NullIfExpr) ? ", " : " IS DISTINCT FROM ");
				deparse(d, lsecond(o->args));
				appendStringInfoChar(d->buf, ')');
				break;
			}
		case T_ScalarArrayOpExpr:
			{
				ScalarArrayOpExpr *a = (ScalarArrayOpExpr *) n;
				char	   *name = get_opname(a->opno);

				if (a->opno >= FirstGenbkiObjectId || !builtin_immutable(get_opcode(a->opno)) || name == NULL ||
					list_length(a->args) != 2)
					unsupported(d, n);
				appendStringInfoChar(d->buf, '(');
				deparse(d, linitial(a->args));
				appendStringInfo(d->buf, " OPERATOR(pg_catalog.%s) %s (", name, a->useOr ? "ANY" : "ALL");
				deparse(d, lsecond(a->args));
				appendStringInfoString(d->buf, "))");
				break;
			}
		default:
			unsupported(d, n);
	}
}

/*
 * deparse_test writes AND/OR/NOT, IS [NOT] NULL and IS [NOT]
 * TRUE/FALSE/UNKNOWN.
 */
static void
deparse_test(Deparse *d, Node *n)
{
	switch (nodeTag(n))
	{
		case T_BoolExpr:
			{
				BoolExpr   *b = (BoolExpr *) n;
				ListCell   *lc;

				appendStringInfoChar(d->buf, '(');
				foreach(lc, b->args)
				{
					if (b->boolop == NOT_EXPR)
						appendStringInfoString(d->buf, "NOT ");
					else if (lc != list_head(b->args))
						appendStringInfoString(d->buf, b->boolop == AND_EXPR ? " AND " : " OR ");
					deparse(d, lfirst(lc));
				}
				appendStringInfoChar(d->buf, ')');
				break;
			}
		case T_NullTest:
			{
				NullTest   *t = (NullTest *) n;

				if (t->argisrow)
					unsupported(d, n);
				appendStringInfoChar(d->buf, '(');
				deparse(d, (Node *) t->arg);
				appendStringInfoString(d->buf, t->nulltesttype == IS_NULL ? " IS NULL)" : " IS NOT NULL)");
				break;
			}
		case T_BooleanTest:
			{
				static const char *const tests[] = {" IS TRUE", " IS NOT TRUE", " IS FALSE", " IS NOT FALSE",
				" IS UNKNOWN", " IS NOT UNKNOWN"};
				BooleanTest *t = (BooleanTest *) n;

				appendStringInfoChar(d->buf, '(');
				deparse(d, (Node *) t->arg);
				appendStringInfo(d->buf, "%s)", tests[t->booltesttype]);
				break;
			}
		default:
			unsupported(d, n);
	}
}

/* deparse writes expression n of the clause, or refuses it. */
static void
deparse(Deparse *d, Node *n)
{
	switch (nodeTag(n))
	{
		case T_Var:
			{
				Var		   *v = (Var *) n;

				if (v->varlevelsup != 0 || v->varattno <= 0 || (v->varno != d->target && v->varno != d->excluded))
					unsupported(d, n);
				appendStringInfo(d->buf, "%s.%s", v->varno == d->target ? "adb_t" : "excluded",
								 quote_identifier(get_attname(d->relid, v->varattno, false)));
				break;
			}
		case T_Const:
			{
				Const	   *c = (Const *) n;
				char	   *type = format_type_extended(c->consttype, c->consttypmod,
														FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);

				if (c->constisnull)
					appendStringInfo(d->buf, "NULL::%s", type);
				else
				{
					Oid			out;
					bool		varlena;
					int			nest = adb_fdw_set_transmission_modes();

					getTypeOutputInfo(c->consttype, &out, &varlena);
					appendStringInfo(d->buf, "%s::%s", quote_literal_cstr(OidOutputFunctionCall(out, c->constvalue)), type);
					adb_fdw_reset_transmission_modes(nest);
				}
				break;
			}
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
		case T_ScalarArrayOpExpr:
			deparse_operator(d, n);
			break;
		case T_BoolExpr:
		case T_NullTest:
		case T_BooleanTest:
			deparse_test(d, n);
			break;
		case T_FuncExpr:
			{
				FuncExpr   *f = (FuncExpr *) n;

				if (!builtin_immutable(f->funcid) || f->funcvariadic)
					unsupported(d, n);
				appendStringInfo(d->buf, "pg_catalog.%s(", quote_identifier(get_func_name(f->funcid)));
				deparse_args(d, f->args);
				appendStringInfoChar(d->buf, ')');
				break;
			}
		case T_RelabelType:
			{
				RelabelType *r = (RelabelType *) n;

				appendStringInfoChar(d->buf, '(');
				deparse(d, (Node *) r->arg);
				appendStringInfo(d->buf, ")::%s", format_type_extended(r->resulttype, r->resulttypmod,
																	   FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY));
				break;
			}
		case T_CoalesceExpr:
			appendStringInfoString(d->buf, "COALESCE(");
			deparse_args(d, ((CoalesceExpr *) n)->args);
			appendStringInfoChar(d->buf, ')');
			break;
		case T_MinMaxExpr:
			{
				MinMaxExpr *m = (MinMaxExpr *) n;

				appendStringInfoString(d->buf, m->op == IS_GREATEST ? "GREATEST(" : "LEAST(");
				deparse_args(d, m->args);
				appendStringInfoChar(d->buf, ')');
				break;
			}
		case T_CaseExpr:
			{
				CaseExpr   *c = (CaseExpr *) n;
				ListCell   *lc;

				/* Searched CASE only (CASE x WHEN … compares a placeholder). */
				if (c->arg != NULL)
					unsupported(d, n);
				appendStringInfoString(d->buf, "(CASE");
				foreach(lc, c->args)
				{
					CaseWhen   *w = lfirst_node(CaseWhen, lc);

					appendStringInfoString(d->buf, " WHEN ");
					deparse(d, (Node *) w->expr);
					appendStringInfoString(d->buf, " THEN ");
					deparse(d, (Node *) w->result);
				}
				if (c->defresult != NULL)
				{
					appendStringInfoString(d->buf, " ELSE ");
					deparse(d, (Node *) c->defresult);
				}
				appendStringInfoString(d->buf, " END)");
				break;
			}
		case T_ArrayExpr:
			{
				ArrayExpr  *a = (ArrayExpr *) n;

				if (a->multidims)
					unsupported(d, n);
				appendStringInfoString(d->buf, "ARRAY[");
				deparse_args(d, a->elements);
				appendStringInfo(d->buf, "]::%s", format_type_extended(a->array_typeid, -1, FORMAT_TYPE_FORCE_QUALIFY));
				break;
			}
		default:
			unsupported(d, n);
	}
}

/*
 * clause_sql is the ON CONFLICT clause of parse (an upsert of relid) as
 * the shards get it: "ON CONFLICT (cols) DO NOTHING" or "… DO UPDATE SET
 * col = expr, … [WHERE expr]", the table called adb_t.
 */
static char *
clause_sql(Query *parse, Oid relid)
{
	OnConflictExpr *oc = parse->onConflict;
	StringInfoData buf;
	Deparse		d = {&buf, relid, parse->resultRelation, oc->exclRelIndex};
	ListCell   *lc;

	if (oc->arbiterElems == NIL || oc->arbiterWhere != NULL || OidIsValid(oc->constraint))
		refuse(relid, "without a plain conflict target",
			   "Name the key's columns: ON CONFLICT (col, …).");
	initStringInfo(&buf);
	appendStringInfoString(&buf, "ON CONFLICT (");
	foreach(lc, oc->arbiterElems)
	{
		InferenceElem *e = lfirst_node(InferenceElem, lc);
		Var		   *v = (Var *) e->expr;

		if (!IsA(v, Var) || v->varno != parse->resultRelation || v->varattno <= 0 ||
			OidIsValid(e->infercollid) || OidIsValid(e->inferopclass))
			refuse(relid, "with an expression or COLLATE in its conflict target", "Name the key's columns: ON CONFLICT (col, …).");
		appendStringInfo(&buf, "%s%s", lc == list_head(oc->arbiterElems) ? "" : ", ",
						 quote_identifier(get_attname(relid, v->varattno, false)));
	}
	if (oc->action == ONCONFLICT_NOTHING)
	{
		appendStringInfoString(&buf, ") DO NOTHING");
		return buf.data;
	}
	appendStringInfoString(&buf, ") DO UPDATE SET ");
	foreach(lc, oc->onConflictSet)
	{
		TargetEntry *te = lfirst_node(TargetEntry, lc);

		if (te->resjunk)
			continue;
		if (lc != list_head(oc->onConflictSet))
			appendStringInfoString(&buf, ", ");
		appendStringInfo(&buf, "%s = ", quote_identifier(get_attname(relid, te->resno, false)));
		deparse(&d, (Node *) te->expr);
	}
	if (oc->onConflictWhere != NULL)
	{
		appendStringInfoString(&buf, " WHERE ");
		deparse(&d, oc->onConflictWhere);
	}
	return buf.data;
}

/*
 * upsert_planner plans an upsert of a distributed table as the file's top
 * says; everything else goes through the hooks installed before.
 */
static PlannedStmt *
upsert_planner(Query *parse, const char *query_string, int cursorOptions, ParamListInfo boundParams)
{
	PlannedStmt *stmt;
	Query	   *q;
	Oid			relid;
	char	   *clause;
	CustomScan *cs;
	ModifyTable *mt;
	ListCell   *lc;

	/* One inside a WITH would meet PostgreSQL's 42P10: refused by name. */
	foreach(lc, parse->hasModifyingCTE ? parse->cteList : NIL)
	{
		Query	   *cte = (Query *) lfirst_node(CommonTableExpr, lc)->ctequery;

		if (IsA(cte, Query) && cte->commandType == CMD_INSERT && cte->onConflict != NULL &&
			(cte->onConflict->action == ONCONFLICT_UPDATE || cte->onConflict->arbiterElems != NIL) &&
			adb_is_distributed_oid(relid = rt_fetch(cte->resultRelation, cte->rtable)->relid))
			refuse(relid, "in WITH", "Run the INSERT as a statement of its own.");
	}

	if (parse->commandType != CMD_INSERT || parse->onConflict == NULL || parse->resultRelation <= 0 ||
		(parse->onConflict->action != ONCONFLICT_UPDATE && parse->onConflict->arbiterElems == NIL) ||
		!adb_is_distributed_oid(relid = rt_fetch(parse->resultRelation, parse->rtable)->relid))
		return prev_planner_hook ? prev_planner_hook(parse, query_string, cursorOptions, boundParams) :
			standard_planner(parse, query_string, cursorOptions, boundParams);
	if (parse->returningList != NIL && checkExprHasSubLink((Node *) parse->returningList))
		refuse(relid, "… RETURNING with a sub-select", NULL);
	if (parse->cteList != NIL)
		refuse(relid, "with WITH", NULL);
	if (parse->withCheckOptions != NIL || parse->hasRowSecurity)
		refuse(relid, "through a view WITH CHECK OPTION or under row-level security", NULL);
	clause = clause_sql(parse, relid);

	q = copyObject(parse);
	q->onConflict = NULL;
	stmt = prev_planner_hook ? prev_planner_hook(q, query_string, cursorOptions, boundParams) :
		standard_planner(q, query_string, cursorOptions, boundParams);
	mt = (ModifyTable *) stmt->planTree;
	if (!IsA(mt, ModifyTable) || outerPlan(mt) == NULL)
		refuse(relid, "in this statement", NULL);
	cs = makeNode(CustomScan);
	cs->scan.plan.startup_cost = mt->plan.startup_cost;
	cs->scan.plan.total_cost = mt->plan.total_cost;
	cs->scan.plan.plan_rows = mt->plan.plan_rows;
	cs->scan.plan.parallel_safe = false;
	if (mt->returningLists != NIL)
	{
		/*
		 * The table's rows are the scan's: the RETURNING list (the result
		 * relation's Vars, as ModifyTable evaluates it) is its projection.
		 */
		cs->scan.scanrelid = linitial_int(mt->resultRelations);
		cs->scan.plan.targetlist = copyObject(linitial(mt->returningLists));
		cs->scan.plan.plan_width = mt->plan.plan_width;
	}
	cs->custom_plans = list_make1(outerPlan(mt));
	cs->custom_private = list_make3(makeInteger((int) relid), makeInteger(parse->resultRelation),
									makeString(clause));
	cs->methods = &upsert_scan_methods;
	stmt->planTree = (Plan *) cs;
	return stmt;
}

static Node *
upsert_create_state(CustomScan *cscan)
{
	UpsertState *us = (UpsertState *) newNode(sizeof(UpsertState), T_CustomScanState);

	us->css.methods = &upsert_exec_methods;
	return (Node *) us;
}

/* upsert_free_res frees the shards' RETURNING rows (once). */
static void
upsert_free_res(void *arg)
{
	UpsertState *us = arg;
	ListCell   *lc;

	foreach(lc, us->results)
		PQclear(lfirst(lc));
	us->results = NIL;
	us->cur = NULL;
}

/* upsert_begin sets up the source and the routing and writing of its rows. */
static void
upsert_begin(CustomScanState *node, EState *estate, int eflags)
{
	UpsertState *us = (UpsertState *) node;
	CustomScan *cs = (CustomScan *) node->ss.ps.plan;
	RangeTblEntry *rte = exec_rt_fetch(intVal(lsecond(cs->custom_private)), estate);
	TupleDesc	desc;
	int			i;

	node->custom_ps = list_make1(ExecInitNode(linitial(cs->custom_plans), estate, eflags));
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	us->rel = table_open((Oid) intVal(linitial(cs->custom_private)), NoLock);
	us->pd = RelationGetPartitionDesc(us->rel, true);
	us->userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	desc = RelationGetDescr(us->rel);
	us->out = palloc0(sizeof(FmgrInfo) * desc->natts);
	us->casts = palloc0(sizeof(char *) * desc->natts);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Oid			func;
		bool		varlena;

		if (att->attisdropped)
			continue;
		getTypeOutputInfo(att->atttypid, &func, &varlena);
		fmgr_info(func, &us->out[i]);
		us->casts[i] = format_type_extended(att->atttypid, att->atttypmod,
											FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
	}
	us->rows = palloc0(sizeof(StringInfoData) * us->pd->nparts);
	us->returning = cs->scan.scanrelid > 0;
	if (us->returning)
	{
		us->in = palloc0(sizeof(FmgrInfo) * desc->natts);
		us->ioparams = palloc0(sizeof(Oid) * desc->natts);
		for (i = 0; i < desc->natts; i++)
		{
			Oid			func;

			if (TupleDescAttr(desc, i)->attisdropped)
				continue;
			getTypeInputInfo(TupleDescAttr(desc, i)->atttypid, &func, &us->ioparams[i]);
			fmgr_info(func, &us->in[i]);
		}
		us->free_res.func = upsert_free_res;
		us->free_res.arg = us;
		MemoryContextRegisterResetCallback(estate->es_query_cxt, &us->free_res);
	}
}

/* add_row appends a row, as typed literals, to its partition's rows. */
static void
add_row(UpsertState *us, int idx, Datum *values, bool *nulls)
{
	TupleDesc	desc = RelationGetDescr(us->rel);
	StringInfo	buf = &us->rows[idx];
	int			nest = adb_fdw_set_transmission_modes();
	bool		first = true;
	int			i;

	if (buf->data == NULL)
		initStringInfo(buf);
	appendStringInfoString(buf, buf->len > 0 ? ", (" : "(");
	for (i = 0; i < desc->natts; i++)
	{
		if (TupleDescAttr(desc, i)->attisdropped)
			continue;
		appendStringInfo(buf, "%s%s::%s", first ? "" : ", ",
						 nulls[i] ? "NULL" : quote_literal_cstr(OutputFunctionCall(&us->out[i], values[i])),
						 us->casts[i]);
		first = false;
	}
	appendStringInfoChar(buf, ')');
	adb_fdw_reset_transmission_modes(nest);
}

/*
 * flush sends partition idx's rows to its shard, in postgres_fdw's remote
 * transaction, and is the shard's row count.
 */
static uint64
flush(UpsertState *us, int idx)
{
	CustomScan *cs = (CustomScan *) us->css.ss.ps.plan;
	Oid			part = us->pd->oids[idx];
	ForeignTable *ft = GetForeignTable(part);
	TupleDesc	desc = RelationGetDescr(us->rel);
	StringInfoData sql;
	char	   *nsp = NULL;
	char	   *name = NULL;
	bool		first = true;
	PGconn	   *conn;
	PGresult   *res;
	ListCell   *lc;
	uint64		n;
	int			i;

	foreach(lc, ft->options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, "schema_name") == 0)
			nsp = defGetString(d);
		else if (strcmp(d->defname, "table_name") == 0)
			name = defGetString(d);
	}
	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s AS adb_t (",
					 quote_qualified_identifier(nsp ? nsp : get_namespace_name(get_rel_namespace(part)),
												name ? name : get_rel_name(part)));
	for (i = 0; i < desc->natts; i++)
	{
		if (TupleDescAttr(desc, i)->attisdropped)
			continue;
		appendStringInfo(&sql, "%s%s", first ? "" : ", ", quote_identifier(NameStr(TupleDescAttr(desc, i)->attname)));
		first = false;
	}
	appendStringInfo(&sql, ") VALUES %s %s", us->rows[idx].data, strVal(lthird(cs->custom_private)));
	resetStringInfo(&us->rows[idx]);
	if (us->returning)
	{
		first = true;
		for (i = 0; i < desc->natts; i++)
		{
			if (TupleDescAttr(desc, i)->attisdropped)
				continue;
			appendStringInfo(&sql, "%s%s", first ? " RETURNING " : ", ",
							 quote_identifier(NameStr(TupleDescAttr(desc, i)->attname)));
			first = false;
		}
	}

	conn = adb_fdw_GetConnection(GetUserMapping(us->userid, ft->serverid), false, NULL);
	/* After: postgres_fdw's first connection registers its callback. */
	adb_twophase_note_write(ft->serverid, us->userid);
	adb_dml_sync_connection(us->userid, ft->serverid);
	if (!PQsendQuery(conn, sql.data))
		adb_fdw_report_error(ERROR, NULL, conn, false, sql.data);
	res = adb_fdw_get_result(conn, sql.data);
	if (PQresultStatus(res) != (us->returning ? PGRES_TUPLES_OK : PGRES_COMMAND_OK))
		adb_fdw_report_error(ERROR, res, conn, true, sql.data);
	n = strtoul(PQcmdTuples(res), NULL, 10);
	if (us->returning)
		us->results = lappend(us->results, res);
	else
		PQclear(res);
	pfree(sql.data);
	return n;
}

/*
 * upsert_next is the next row a shard returned, in the scan slot (the
 * table's columns, converted by their input functions), or an empty slot.
 */
static TupleTableSlot *
upsert_next(ScanState *ss)
{
	UpsertState *us = (UpsertState *) ss;
	TupleTableSlot *slot = ss->ss_ScanTupleSlot;
	TupleDesc	desc = slot->tts_tupleDescriptor;
	MemoryContext old;
	PGresult   *res;
	int			col = 0;
	int			i;

	ExecClearTuple(slot);
	while (us->cur != NULL && us->row >= PQntuples(lfirst(us->cur)))
	{
		us->cur = lnext(us->results, us->cur);
		us->row = 0;
	}
	if (us->cur == NULL)
		return slot;
	res = lfirst(us->cur);
	old = MemoryContextSwitchTo(ss->ps.ps_ExprContext->ecxt_per_tuple_memory);
	for (i = 0; i < desc->natts; i++)
	{
		char	   *v = NULL;

		if (!TupleDescAttr(desc, i)->attisdropped)
		{
			v = PQgetisnull(res, us->row, col) ? NULL : PQgetvalue(res, us->row, col);
			col++;
			slot->tts_values[i] = InputFunctionCall(&us->in[i], v, us->ioparams[i],
													TupleDescAttr(desc, i)->atttypmod);
		}
		slot->tts_isnull[i] = v == NULL;
	}
	MemoryContextSwitchTo(old);
	us->row++;
	return ExecStoreVirtualTuple(slot);
}

/* upsert_recheck: no EvalPlanQual here. */
static bool
upsert_recheck(ScanState *ss, TupleTableSlot *slot)
{
	return true;
}

/*
 * upsert_exec routes every row of the source to its shard's rows, sends
 * them, and counts the rows the shards inserted or updated; then, with
 * RETURNING, it returns their rows projected on the RETURNING list.
 */
static TupleTableSlot *
upsert_exec(CustomScanState *node)
{
	UpsertState *us = (UpsertState *) node;
	PlanState  *src = linitial(node->custom_ps);
	EState	   *estate = node->ss.ps.state;
	uint64		processed = 0;
	int			i;

	if (us->done)
		return us->returning ? ExecScan(&node->ss, upsert_next, upsert_recheck) : NULL;
	us->done = true;
	for (;;)
	{
		TupleTableSlot *slot;
		int			idx;

		CHECK_FOR_INTERRUPTS();
		ResetPerTupleExprContext(estate);
		slot = ExecProcNode(src);
		if (TupIsNull(slot))
			break;
		slot_getallattrs(slot);
		idx = adb_route_row(us->rel, us->pd, slot->tts_values, slot->tts_isnull);
		add_row(us, idx, slot->tts_values, slot->tts_isnull);
	}
	for (i = 0; i < us->pd->nparts; i++)
		if (us->rows[i].data != NULL && us->rows[i].len > 0)
			processed += flush(us, i);
	estate->es_processed += processed;
	if (!us->returning)
		return NULL;
	us->cur = list_head(us->results);
	us->row = 0;
	return ExecScan(&node->ss, upsert_next, upsert_recheck);
}

static void
upsert_end(CustomScanState *node)
{
	UpsertState *us = (UpsertState *) node;

	ExecEndNode(linitial(node->custom_ps));
	upsert_free_res(us);
	if (us->rel)
		table_close(us->rel, NoLock);
}

/* upsert_rescan returns the rows again: an INSERT runs once. */
static void
upsert_rescan(CustomScanState *node)
{
	UpsertState *us = (UpsertState *) node;

	us->cur = list_head(us->results);
	us->row = 0;
}

static void
upsert_explain(CustomScanState *node, List *ancestors, ExplainState *es)
{
	CustomScan *cs = (CustomScan *) node->ss.ps.plan;

	ExplainPropertyText("On Conflict SQL", strVal(lthird(cs->custom_private)), es);
}

void
adb_upsert_init(void)
{
	RegisterCustomScanMethods(&upsert_scan_methods);
	prev_planner_hook = planner_hook;
	planner_hook = upsert_planner;
}
