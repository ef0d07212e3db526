/*
 * aggpush.c — aggregates over a distributed table run on the datanodes.
 *
 * PostgreSQL 15's postgres_fdw pushes an aggregate to the remote server
 * only whole: grouped by the partition key, partitionwise aggregation
 * sends each slot's GROUP BY to its datanode; anything else (count(*)
 * over the table, GROUP BY another column) needs a partial aggregate per
 * slot, which postgres_fdw cannot push, so every row travels to the
 * coordinator.
 *
 * A planner_hook recognises the plain case: a SELECT of aggregates and
 * grouping expressions over one distributed table, with WHERE, GROUP BY
 * (not by the distribution column), HAVING, DISTINCT, ORDER BY and LIMIT
 * allowed, and plans instead the equivalent query
 *
 *   SELECT <outer aggregates> FROM (
 *       SELECT <groups>, <slot aggregates> FROM <slot 0> WHERE … GROUP BY …
 *       UNION ALL … one branch per slot …) s
 *   GROUP BY <groups> HAVING … ORDER BY … LIMIT …
 *
 * Each branch is a whole aggregate over one foreign table, which
 * postgres_fdw pushes down; the Append runs the datanodes at once
 * (async_capable). The combination: count → sum of the counts, sum →
 * sum of the sums, min/max → min/max, avg → sum of the sums / sum of the
 * counts, each cast back to the original result type (so NULL for a sum
 * of no rows, 0 for a count, numeric for avg of integers, the same
 * division PostgreSQL's own avg does). Column names, result types and
 * the checks of privileges (on the distributed table, as the original
 * query) are kept. Anything else — DISTINCT or ORDER BY inside an
 * aggregate, other aggregates, parameters, sub-selects, row-level
 * security, a WHERE that picks one slot by the distribution column — is
 * planned as it was. The setting adb.aggregate_pushdown (on) turns it
 * off.
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "optimizer/planner.h"
#include "parser/analyze.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_func.h"
#include "parser/parse_node.h"
#include "parser/parse_oper.h"
#include "parser/parser.h"
#include "partitioning/partdesc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"

#include "adb.h"

static planner_hook_type prev_planner_hook = NULL;
static bool aggregate_pushdown = true;

/*
 * The plan of the query last rewritten, for batch.c's planner_hook, which
 * runs around this one: its slots' partial aggregates may be grouped
 * over several slots at once, as the coordinator combines them again.
 */
PlannedStmt *adb_aggpush_planned = NULL;

/* How an aggregate is split between the slots and the coordinator. */
typedef enum AggKind
{
	AK_COUNT,					/* count → sum of counts */
	AK_SUM,						/* sum → sum of sums */
	AK_MINMAX,					/* min/max → min/max */
	AK_AVG						/* avg → sum of sums / sum of counts */
} AggKind;

/* One aggregate of the original query and its columns in the branches. */
typedef struct PushedAgg
{
	Aggref	   *orig;
	AggKind		kind;
	int			col;			/* first inner column (avg: sum, then count) */
} PushedAgg;

/* What the rewrite collects: the branches' columns and where they go. */
typedef struct PushCtx
{
	List	   *dpcontext;		/* deparse context of the distributed table */
	List	   *groups;			/* grouping expressions, inner columns 1..n */
	List	   *aggs;			/* PushedAgg, in inner column order */
	List	   *cols;			/* text of each inner column */
	List	   *innerTlist;		/* the parsed branches' target list */
	ParseState *pstate;
	bool		failed;
} PushCtx;

/*
 * plain_expr_walker is true when node holds something the rewrite does
 * not carry over: parameters (their types are not known to a new parse),
 * sub-selects, outer references, set-returning functions and window
 * functions, whole rows and system columns (named after the distributed
 * table, which the branches do not read).
 */
static bool
plain_expr_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Param) || IsA(node, SubLink) || IsA(node, WindowFunc) ||
		IsA(node, GroupingFunc) || IsA(node, SubPlan))
		return true;
	if (IsA(node, Var) && (((Var *) node)->varlevelsup != 0 || ((Var *) node)->varattno <= 0))
		return true;			/* outer, whole-row or system column */
	if (IsA(node, Aggref) && ((Aggref *) node)->agglevelsup != 0)
		return true;
	if (IsA(node, FuncExpr) && ((FuncExpr *) node)->funcretset)
		return true;
	if (IsA(node, OpExpr) && ((OpExpr *) node)->opretset)
		return true;
	return expression_tree_walker(node, plain_expr_walker, context);
}

/*
 * pins_key_walker is true when a WHERE condition compares the distribution
 * column (attribute *context) with = or IN: partition pruning then leaves
 * the query one slot or a few, which the original plan reads better than
 * a branch per slot would.
 */
static bool
pins_key_walker(Node *node, void *context)
{
	AttrNumber	key = *(AttrNumber *) context;
	List	   *args = NIL;
	Oid			opno = InvalidOid;

	if (node == NULL)
		return false;
	if (IsA(node, OpExpr))
	{
		args = ((OpExpr *) node)->args;
		opno = ((OpExpr *) node)->opno;
	}
	else if (IsA(node, ScalarArrayOpExpr))
	{
		args = ((ScalarArrayOpExpr *) node)->args;
		opno = ((ScalarArrayOpExpr *) node)->opno;
	}
	if (OidIsValid(opno) && list_length(args) == 2)
	{
		char	   *name = get_opname(opno);
		ListCell   *lc;

		if (name != NULL && strcmp(name, "=") == 0)
		{
			foreach(lc, args)
			{
				Node	   *a = strip_implicit_coercions(lfirst(lc));

				if (IsA(a, Var) && ((Var *) a)->varattno == key)
					return true;
			}
		}
	}
	return expression_tree_walker(node, pins_key_walker, context);
}

/*
 * distributed_parts returns the partitions (slots) of relid when it is a
 * distributed table (adb_is_distributed) and sets *key to its distribution
 * column; NIL for any other table or one with row-level security.
 */
static List *
distributed_parts(Oid relid, AttrNumber *key)
{
	Relation	rel;
	List	   *parts = NIL;

	if (get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return NIL;
	rel = table_open(relid, AccessShareLock);
	if (!rel->rd_rel->relrowsecurity && adb_is_distributed(rel))
	{
		PartitionDesc pd = RelationGetPartitionDesc(rel, true);
		int			i;

		for (i = 0; i < pd->nparts; i++)
			parts = lappend_oid(parts, pd->oids[i]);
		*key = get_partition_col_attnum(RelationGetPartitionKey(rel), 0);
	}
	table_close(rel, AccessShareLock);
	return parts;
}

/*
 * classify says how agg is combined across slots, or false when it is
 * not one the rewrite knows: the built-in count, sum and avg of numbers,
 * min and max, without DISTINCT or ORDER BY (avg also without FILTER).
 */
static bool
classify(Aggref *agg, AggKind *kind)
{
	char	   *name;
	Oid			argtype = InvalidOid;

	if (agg->aggdistinct != NIL || agg->aggorder != NIL || agg->aggdirectargs != NIL ||
		agg->aggkind != AGGKIND_NORMAL || agg->agglevelsup != 0 || agg->aggvariadic ||
		get_func_namespace(agg->aggfnoid) != PG_CATALOG_NAMESPACE)
		return false;
	name = get_func_name(agg->aggfnoid);
	if (name == NULL)
		return false;
	if (list_length(agg->aggargtypes) == 1)
		argtype = linitial_oid(agg->aggargtypes);
	if (strcmp(name, "count") == 0)
		*kind = AK_COUNT;
	else if (strcmp(name, "min") == 0 || strcmp(name, "max") == 0)
		*kind = AK_MINMAX;
	else if (strcmp(name, "sum") == 0 &&
			 (argtype == INT2OID || argtype == INT4OID || argtype == INT8OID ||
			  argtype == NUMERICOID || argtype == FLOAT4OID || argtype == FLOAT8OID))
		*kind = AK_SUM;
	else if (strcmp(name, "avg") == 0 && agg->aggfilter == NULL &&
			 (argtype == INT2OID || argtype == INT4OID || argtype == INT8OID ||
			  argtype == NUMERICOID || argtype == FLOAT8OID))
		*kind = AK_AVG;
	else
		return false;
	return true;
}

/* inner_var is a reference to inner column col (1-based) of the branches. */
static Var *
inner_var(PushCtx *ctx, int col)
{
	TargetEntry *te = list_nth(ctx->innerTlist, col - 1);

	return makeVar(1, col, exprType((Node *) te->expr), exprTypmod((Node *) te->expr),
				   exprCollation((Node *) te->expr), 0);
}

/* outer_agg is the coordinator's aggregate fn (pg_catalog's) of column col. */
static Node *
outer_agg(PushCtx *ctx, const char *fn, int col)
{
	return ParseFuncOrColumn(ctx->pstate,
							 list_make2(makeString("pg_catalog"), makeString(pstrdup(fn))),
							 list_make1(inner_var(ctx, col)), NULL, NULL, false, -1);
}

/*
 * combine is the coordinator's expression that finishes p from the
 * branches' columns, of p's original result type; NULL when that type
 * cannot be reached.
 */
static Node *
combine(PushCtx *ctx, PushedAgg *p)
{
	Node	   *e;

	switch (p->kind)
	{
		case AK_COUNT:
		case AK_SUM:
			e = outer_agg(ctx, "sum", p->col);
			break;
		case AK_MINMAX:
			e = outer_agg(ctx, get_func_name(p->orig->aggfnoid), p->col);
			break;
		case AK_AVG:
			{
				Node	   *s = outer_agg(ctx, "sum", p->col);
				Node	   *n = outer_agg(ctx, "sum", p->col + 1);

				if (exprType(s) == FLOAT8OID)
					n = coerce_to_target_type(ctx->pstate, n, exprType(n), FLOAT8OID, -1,
											  COERCION_EXPLICIT, COERCE_IMPLICIT_CAST, -1);
				if (n == NULL)
					return NULL;
				e = (Node *) make_op(ctx->pstate,
									 list_make2(makeString("pg_catalog"), makeString("/")),
									 s, n, NULL, -1);
				break;
			}
		default:
			return NULL;
	}
	if (exprType(e) != p->orig->aggtype)
		e = coerce_to_target_type(ctx->pstate, e, exprType(e), p->orig->aggtype, -1,
								  COERCION_EXPLICIT, COERCE_IMPLICIT_CAST, -1);
	if (e != NULL)
		assign_expr_collations(ctx->pstate, e);
	return e;
}

/*
 * collect_walker adds the branches' columns for every aggregate in node
 * (each distinct one once), failing on one the rewrite does not know.
 */
static bool
collect_walker(Node *node, PushCtx *ctx)
{
	if (node == NULL)
		return false;
	if (IsA(node, Aggref))
	{
		Aggref	   *agg = (Aggref *) node;
		PushedAgg  *p;
		ListCell   *lc;
		char	   *arg;
		int			ncols = list_length(ctx->groups);

		foreach(lc, ctx->aggs)
		{
			p = lfirst(lc);
			if (equal(p->orig, agg))
				return false;
			ncols += p->kind == AK_AVG ? 2 : 1;
		}
		p = palloc0(sizeof(PushedAgg));
		p->orig = agg;
		p->col = ncols + 1;
		if (!classify(agg, &p->kind))
		{
			ctx->failed = true;
			return true;
		}
		if (p->kind == AK_AVG)
		{
			arg = deparse_expression((Node *) ((TargetEntry *) linitial(agg->args))->expr,
									 ctx->dpcontext, false, false);
			ctx->cols = lappend(ctx->cols, psprintf("pg_catalog.sum(%s)", arg));
			ctx->cols = lappend(ctx->cols, psprintf("pg_catalog.count(%s)", arg));
		}
		else
			ctx->cols = lappend(ctx->cols, deparse_expression(node, ctx->dpcontext, false, false));
		ctx->aggs = lappend(ctx->aggs, p);
		return false;			/* no aggregates inside an aggregate */
	}
	return expression_tree_walker(node, collect_walker, ctx);
}

/*
 * outer_mutator rewrites an expression of the original target list or
 * HAVING for the coordinator: grouping expressions become the branches'
 * columns, aggregates their combinations. A column reference left over
 * (which the original query could not have had) fails the rewrite.
 */
static Node *
outer_mutator(Node *node, PushCtx *ctx)
{
	ListCell   *lc;
	int			i = 0;

	if (node == NULL || ctx->failed)
		return node;
	foreach(lc, ctx->groups)
	{
		i++;
		if (equal(node, lfirst(lc)))
			return (Node *) inner_var(ctx, i);
	}
	if (IsA(node, Aggref))
	{
		foreach(lc, ctx->aggs)
		{
			PushedAgg  *p = lfirst(lc);

			if (equal(p->orig, node))
			{
				Node	   *e = combine(ctx, p);

				if (e == NULL)
					ctx->failed = true;
				return e;
			}
		}
		ctx->failed = true;
		return node;
	}
	if (IsA(node, Var))
	{
		ctx->failed = true;
		return node;
	}
	return expression_tree_mutator(node, outer_mutator, ctx);
}

/*
 * branches_sql is the UNION ALL of one aggregate query per slot: the
 * grouping expressions and the slots' aggregates, as columns c1, c2, …,
 * over each partition, with the original WHERE.
 */
static char *
branches_sql(PushCtx *ctx, List *parts, Node *quals)
{
	StringInfoData sql;
	char	   *where = NULL;
	ListCell   *lc;
	ListCell   *pc;
	int			i;

	if (quals != NULL)
		where = deparse_expression(quals, ctx->dpcontext, false, false);
	initStringInfo(&sql);
	foreach(pc, parts)
	{
		Oid			part = lfirst_oid(pc);

		if (sql.len > 0)
			appendStringInfoString(&sql, " UNION ALL ");
		appendStringInfoString(&sql, "SELECT ");
		i = 0;
		foreach(lc, ctx->cols)
		{
			i++;
			appendStringInfo(&sql, "%s%s AS c%d", i > 1 ? ", " : "", (char *) lfirst(lc), i);
		}
		appendStringInfo(&sql, " FROM %s",
						 quote_qualified_identifier(get_namespace_name(get_rel_namespace(part)),
													get_rel_name(part)));
		if (where != NULL)
			appendStringInfo(&sql, " WHERE %s", where);
		for (i = 1; i <= list_length(ctx->groups); i++)
			appendStringInfo(&sql, "%s%d", i == 1 ? " GROUP BY " : ", ", i);
	}
	return sql.data;
}

/*
 * clear_perms drops the privilege checks of the partitions the
 * branches read: as when the distributed table is read, only its own
 * privileges count (kept on its entry of the outer query).
 */
static void
clear_perms(Query *q)
{
	ListCell   *lc;

	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_RELATION)
			rte->requiredPerms = 0;
		else if (rte->rtekind == RTE_SUBQUERY && rte->subquery != NULL)
			clear_perms(rte->subquery);
	}
}

/*
 * rewrite returns the aggregate-over-branches form of parse (see the top
 * of the file), or NULL when parse is not a case it handles.
 */
static Query *
rewrite(Query *parse)
{
	RangeTblEntry *rte;
	List	   *parts;
	AttrNumber	key = 0;
	PushCtx		ctx;
	ListCell   *lc;
	Query	   *inner;
	Query	   *out;
	RangeTblEntry *sub;
	RangeTblEntry *keep;
	List	   *colnames = NIL;
	List	   *raw;
	char	   *sql;
	Node	   *quals;
	int			i;

	if (parse->commandType != CMD_SELECT || !parse->hasAggs || parse->utilityStmt != NULL ||
		list_length(parse->rtable) != 1 || parse->cteList != NIL || parse->hasWindowFuncs ||
		parse->hasTargetSRFs || parse->hasSubLinks || parse->hasForUpdate ||
		parse->hasRowSecurity || parse->groupingSets != NIL || parse->setOperations != NULL ||
		parse->rowMarks != NIL || parse->hasDistinctOn || parse->groupDistinct ||
		parse->jointree == NULL || list_length(parse->jointree->fromlist) != 1 ||
		!IsA(linitial(parse->jointree->fromlist), RangeTblRef) ||
		((RangeTblRef *) linitial(parse->jointree->fromlist))->rtindex != 1)
		return NULL;
	rte = linitial(parse->rtable);
	if (rte->rtekind != RTE_RELATION || !rte->inh || rte->tablesample != NULL ||
		rte->securityQuals != NIL || rte->relkind != RELKIND_PARTITIONED_TABLE)
		return NULL;
	quals = parse->jointree->quals;
	if (plain_expr_walker((Node *) parse->targetList, NULL) ||
		plain_expr_walker(parse->havingQual, NULL) || plain_expr_walker(quals, NULL) ||
		plain_expr_walker(parse->limitCount, NULL) || plain_expr_walker(parse->limitOffset, NULL))
		return NULL;
	parts = distributed_parts(rte->relid, &key);
	if (parts == NIL || pins_key_walker(quals, &key))
		return NULL;

	memset(&ctx, 0, sizeof(ctx));
	ctx.dpcontext = deparse_context_for(get_rel_name(rte->relid), rte->relid);
	foreach(lc, parse->groupClause)
	{
		Node	   *g = get_sortgroupclause_expr(lfirst(lc), parse->targetList);
		Node	   *bare = strip_implicit_coercions(g);

		if (IsA(bare, Var) && ((Var *) bare)->varattno == key)
			return NULL;		/* partitionwise aggregation pushes it whole */
		if (contain_agg_clause(g) || contain_volatile_functions(g))
			return NULL;
		ctx.groups = lappend(ctx.groups, g);
		ctx.cols = lappend(ctx.cols, deparse_expression(g, ctx.dpcontext, false, false));
	}
	collect_walker((Node *) parse->targetList, &ctx);
	collect_walker(parse->havingQual, &ctx);
	if (ctx.failed || ctx.aggs == NIL)
		return NULL;

	/* The branches, parsed as any query is. */
	sql = branches_sql(&ctx, parts, quals);
	raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	if (list_length(raw) != 1)
		return NULL;
	inner = parse_analyze_fixedparams(linitial(raw), sql, NULL, 0, NULL);
	if (inner->commandType != CMD_SELECT || list_length(inner->targetList) != list_length(ctx.cols))
		return NULL;
	ctx.innerTlist = inner->targetList;
	i = 0;
	foreach(lc, ctx.groups)
	{
		TargetEntry *te = list_nth(inner->targetList, i++);

		if (exprType((Node *) te->expr) != exprType(lfirst(lc)) ||
			exprCollation((Node *) te->expr) != exprCollation(lfirst(lc)))
			return NULL;
	}
	clear_perms(inner);
	for (i = 1; i <= list_length(ctx.cols); i++)
		colnames = lappend(colnames, makeString(psprintf("c%d", i)));

	/* The coordinator's query over them. */
	out = copyObject(parse);
	ctx.pstate = make_parsestate(NULL);
	ctx.pstate->p_expr_kind = EXPR_KIND_SELECT_TARGET;
	foreach(lc, out->targetList)
	{
		TargetEntry *te = lfirst(lc);
		Oid			type = exprType((Node *) te->expr);

		te->expr = (Expr *) outer_mutator((Node *) te->expr, &ctx);
		if (ctx.failed || exprType((Node *) te->expr) != type)
			return NULL;
		te->resorigtbl = InvalidOid;
		te->resorigcol = 0;
	}
	ctx.pstate->p_expr_kind = EXPR_KIND_HAVING;
	out->havingQual = outer_mutator(out->havingQual, &ctx);
	if (ctx.failed)
		return NULL;

	sub = makeNode(RangeTblEntry);
	sub->rtekind = RTE_SUBQUERY;
	sub->subquery = inner;
	sub->alias = makeAlias("adb_aggpush", NIL);
	sub->eref = makeAlias("adb_aggpush", colnames);
	sub->inFromCl = true;
	/* The table itself stays for its locks and privilege checks only. */
	keep = copyObject(rte);
	keep->inh = false;
	keep->inFromCl = false;
	out->rtable = list_make2(sub, keep);
	out->jointree = makeFromExpr(list_make1(makeNode(RangeTblRef)), NULL);
	((RangeTblRef *) linitial(out->jointree->fromlist))->rtindex = 1;
	return out;
}

/*
 * aggpush_planner plans a pushable aggregate query in its rewritten form
 * and every other query as it is, through the hooks installed before.
 */
static PlannedStmt *
aggpush_planner(Query *parse, const char *query_string, int cursorOptions, ParamListInfo boundParams)
{
	Query	   *q = NULL;
	PlannedStmt *stmt;

	if (aggregate_pushdown && parse->commandType == CMD_SELECT && parse->hasAggs)
		q = rewrite(parse);
	if (prev_planner_hook)
		stmt = prev_planner_hook(q ? q : parse, query_string, cursorOptions, boundParams);
	else
		stmt = standard_planner(q ? q : parse, query_string, cursorOptions, boundParams);
	if (q != NULL)
		adb_aggpush_planned = stmt;
	return stmt;
}

void
adb_aggpush_init(void)
{
	DefineCustomBoolVariable("adb.aggregate_pushdown",
							 "Runs aggregates over a distributed table on the datanodes.",
							 "Aggregates not grouped by the distribution column are computed per slot on the datanodes and combined on the coordinator.",
							 &aggregate_pushdown, true, PGC_USERSET, 0, NULL, NULL, NULL);
	prev_planner_hook = planner_hook;
	planner_hook = aggpush_planner;
}
