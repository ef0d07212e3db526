/*
 * twophase.c — atomic commit across nodes (issue 10, item 4).
 *
 * A coordinator's transaction writes on other nodes two ways: through
 * postgres_fdw (a distributed table's foreign partitions, each on the
 * datanode owning the slot) and through adb.remote_exec (DDL sent to the
 * shards and the other coordinators). Each remote side is a transaction of
 * its own; committing them one after the other, as postgres_fdw does, leaves
 * a transaction half-applied when a node dies between two COMMITs.
 *
 * So when a transaction wrote on two or more nodes (this one counted), its
 * remote transactions are PREPAREd at XACT_EVENT_PRE_COMMIT, the local
 * commit record is the decision, and COMMIT PREPARED follows at
 * XACT_EVENT_COMMIT (ROLLBACK PREPARED on abort). The global id names this
 * node's system identifier and the local full xid, so that
 * adb.resolve_prepared — here, or on a promoted slave of this node, which
 * has the same system identifier — finishes what a crash left in doubt
 * from pg_xact_status of that xid. One writer needs no vote: it commits as
 * before, at no extra round trip.
 */
#include "postgres.h"

#include <limits.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_class.h"
#include "catalog/namespace.h"
#include "catalog/pg_inherits.h"
#include "commands/defrem.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "replication/message.h"
#include "replication/syncrep.h"
#include "storage/latch.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
#include "utils/xid8.h"

#include "adb.h"

/* How long COMMIT/ROLLBACK PREPARED and cleanup wait for a node: the
 * transaction is decided already, so a node that does not answer is left to
 * adb.resolve_prepared rather than holding the client. */
#define ADB_CLEANUP_TIMEOUT_MS 30000

#define ADB_KEYLEN (NAMEDATALEN + 32)
#define ADB_GIDLEN 80

/*
 * RemoteConn is one libpq connection of ours, cached for the backend's life:
 * "n:<node>" the connection adb.remote_exec runs SQL on, "s:<server>:<user>"
 * the one that finishes what was prepared on a postgres_fdw connection (whose
 * PGconn postgres_fdw may close at commit), "r:<node>" adb.resolve_prepared's.
 */
typedef struct RemoteConn
{
	char		key[ADB_KEYLEN];	/* hash key (must be first) */
	PGconn	   *conn;			/* NULL when not connected */
	char	   *conninfo;		/* how to (re)connect, in TopMemoryContext */
	char	   *label;			/* node or server name, for messages */
	int			xact_depth;		/* remote_exec: 0 no remote transaction, 1
								 * top level, n = savepoints s2..sn open */
	bool		broken;			/* remote transaction lost: this one must
								 * abort */
	bool		wrote;			/* PRE_COMMIT: has a remote xid */
	char		gid[ADB_GIDLEN];	/* prepared here, to finish at end */
} RemoteConn;

/* A postgres_fdw connection this transaction wrote on (maybe). */
typedef struct FdwTarget
{
	Oid			serverid;
	Oid			userid;
} FdwTarget;

static HTAB *remote_conns = NULL;

/* Per transaction: postgres_fdw servers written, and whether a local
 * relation was. */
static FdwTarget *fdw_targets = NULL;
static int	n_fdw_targets = 0;
static int	max_fdw_targets = 0;
static bool local_write = false;

/* Our xact callback has been moved ahead of postgres_fdw's. */
static bool callback_first = false;

/* The remote SQL now running is the user's: forward its notices. */
static bool forward_notices = false;


/* Test-only settings and counters (e2e tests). */
static int	test_pause_after_prepare = 0;
static int	test_pause_after_commit = 0;
static int64 stat_checks = 0;
static int64 stat_prepared = 0;

static ExecutorEnd_hook_type prev_executor_end = NULL;
static ProcessUtility_hook_type prev_process_utility = NULL;

static void adb_xact_callback(XactEvent event, void *arg);
static void adb_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								 SubTransactionId parentSubid, void *arg);
static void adb_executor_end(QueryDesc *queryDesc);
static int	resolve_on(RemoteConn *rc, const char *min_age);
static void adb_process_utility(PlannedStmt *pstmt, const char *queryString,
								bool readOnlyTree, ProcessUtilityContext context,
								ParamListInfo params, QueryEnvironment *queryEnv,
								DestReceiver *dest, QueryCompletion *qc);

PG_FUNCTION_INFO_V1(adb_remote_exec);
PG_FUNCTION_INFO_V1(adb_resolve_prepared);
PG_FUNCTION_INFO_V1(adb_twophase_stats);

/*
 * adb_twophase_init installs the callbacks and hooks (from _PG_init): the
 * transaction callbacks drive the remote transactions, the executor and
 * utility hooks note which nodes a transaction writes on.
 */
void
adb_twophase_init(void)
{
	DefineCustomIntVariable("adb.test_pause_after_prepare",
							"Test only: milliseconds to sleep after PREPARE TRANSACTION on the remote nodes, before the local commit.",
							NULL, &test_pause_after_prepare, 0, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS | GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	DefineCustomIntVariable("adb.test_pause_after_commit",
							"Test only: milliseconds to sleep after the local commit, before COMMIT PREPARED on the remote nodes.",
							NULL, &test_pause_after_commit, 0, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS | GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	RegisterXactCallback(adb_xact_callback, NULL);
	RegisterSubXactCallback(adb_subxact_callback, NULL);
	prev_executor_end = ExecutorEnd_hook;
	ExecutorEnd_hook = adb_executor_end;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = adb_process_utility;
}

/* ---------------------------------------------------------------------
 * libpq plumbing
 * --------------------------------------------------------------------- */

/*
 * remote_conn finds (or, with create, makes) the cache entry for key.
 */
static RemoteConn *
remote_conn(const char *key, bool create)
{
	RemoteConn *rc;
	bool		found;
	char		k[ADB_KEYLEN];

	if (remote_conns == NULL)
	{
		HASHCTL		ctl;

		if (!create)
			return NULL;
		MemSet(&ctl, 0, sizeof(ctl));
		ctl.keysize = ADB_KEYLEN;
		ctl.entrysize = sizeof(RemoteConn);
		ctl.hcxt = TopMemoryContext;
		remote_conns = hash_create("adb remote connections", 16, &ctl,
								   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	MemSet(k, 0, sizeof(k));
	strlcpy(k, key, sizeof(k));
	rc = hash_search(remote_conns, k, create ? HASH_ENTER : HASH_FIND, &found);
	if (rc != NULL && !found)
	{
		rc->conn = NULL;
		rc->conninfo = NULL;
		rc->label = NULL;
		rc->xact_depth = 0;
		rc->broken = false;
		rc->wrote = false;
		rc->gid[0] = '\0';
	}
	return rc;
}

/*
 * remote_disconnect closes rc's connection; the entry stays (it may still
 * have a gid to finish, over a new connection).
 */
static void
remote_disconnect(RemoteConn *rc)
{
	if (rc->conn != NULL)
		PQfinish(rc->conn);
	rc->conn = NULL;
	rc->xact_depth = 0;
}

/*
 * adb_notice_receiver passes the notices of the user's SQL in
 * adb.remote_exec on to the client, at their own level; the others (our
 * BEGIN, PREPARE, COMMIT PREPARED) only to the server log.
 */
static void
adb_notice_receiver(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *label = (const char *) arg;
	int			elevel = LOG;

	if (msg == NULL)
		return;
	if (forward_notices && sev != NULL)
	{
		if (strcmp(sev, "WARNING") == 0)
			elevel = WARNING;
		else if (strcmp(sev, "NOTICE") == 0)
			elevel = NOTICE;
		else if (strcmp(sev, "INFO") == 0)
			elevel = INFO;
	}
	if (elevel == LOG)
		ereport(LOG,
				(errmsg_internal("adb: node %s: %s", label ? label : "?", msg)));
	else
		ereport(elevel,
				(state && strlen(state) == 5 ?
				 errcode(MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4])) : 0,
				 errmsg_internal("%s", msg),
				 detail ? errdetail_internal("%s", detail) : 0));
}

/*
 * remote_open connects rc with its conninfo; application_name says which
 * coordinator backend it serves, like postgres_fdw.application_name, so the
 * manager's deadlock detector knows it. NULL and *err on failure.
 */
static PGconn *
remote_open(RemoteConn *rc, char **err)
{
	const char *keys[3] = {"dbname", "application_name", NULL};
	const char *vals[3];
	char		appname[NAMEDATALEN + 32];
	PGconn	   *conn;

	snprintf(appname, sizeof(appname), "adb:%s:%d",
			 cluster_name ? cluster_name : "", MyProcPid);
	vals[0] = rc->conninfo;
	vals[1] = appname;
	vals[2] = NULL;
	conn = PQconnectdbParams(keys, vals, 1);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		char	   *m = pstrdup(conn ? PQerrorMessage(conn) : "out of memory");
		int			len = strlen(m);

		if (len > 0 && m[len - 1] == '\n')
			m[len - 1] = '\0';
		*err = m;
		if (conn)
			PQfinish(conn);
		return NULL;
	}
	PQsetNoticeReceiver(conn, adb_notice_receiver, rc->label);
	return conn;
}

/*
 * remote_set_target records how rc reaches its node; a changed address
 * (the node moved) closes the old connection when no transaction uses it.
 */
static void
remote_set_target(RemoteConn *rc, const char *label, const char *conninfo)
{
	if (rc->conninfo != NULL && strcmp(rc->conninfo, conninfo) == 0)
		return;
	if (rc->xact_depth > 0 || rc->gid[0] != '\0')
		return;
	remote_disconnect(rc);
	if (rc->conninfo)
		pfree(rc->conninfo);
	if (rc->label)
		pfree(rc->label);
	rc->conninfo = MemoryContextStrdup(TopMemoryContext, conninfo);
	rc->label = MemoryContextStrdup(TopMemoryContext, label);
}

/*
 * conn_alive says whether conn can take a command. An idle connection
 * whose server went away (a restart) has its end of the socket closed:
 * reading what is there, without waiting, finds that out at no round trip.
 */
static bool
conn_alive(PGconn *conn)
{
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
		return false;
	if (PQtransactionStatus(conn) == PQTRANS_IDLE && !PQisBusy(conn))
		(void) PQconsumeInput(conn);
	return PQstatus(conn) == CONNECTION_OK;
}

/*
 * remote_ensure connects rc if it is not (or its connection went bad while
 * unused), with an ERROR when the node cannot be reached.
 */
static void
remote_ensure(RemoteConn *rc)
{
	char	   *err = NULL;

	if (conn_alive(rc->conn))
		return;
	remote_disconnect(rc);
	rc->conn = remote_open(rc, &err);
	if (rc->conn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to node \"%s\"", rc->label),
				 errdetail_internal("%s", err)));
}

/*
 * wait_readable waits until conn has a whole result (or timeout_ms passes,
 * when positive): false when it timed out or the connection failed. With
 * interrupts allowed, a cancel or statement_timeout ERRORs out of here and
 * the abort callback cancels the remote query.
 */
static bool
wait_readable(PGconn *conn, int timeout_ms)
{
	TimestampTz end = 0;

	if (timeout_ms > 0)
		end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	while (PQisBusy(conn))
	{
		long		wait = -1;
		int			rc;
		int			events = WL_LATCH_SET | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH;

		if (timeout_ms > 0)
		{
			wait = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);
			if (wait <= 0)
				return false;
			events |= WL_TIMEOUT;
		}
		rc = WaitLatchOrSocket(MyLatch, events, PQsocket(conn), wait, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		if ((rc & WL_SOCKET_READABLE) && !PQconsumeInput(conn))
			return false;
	}
	return true;
}

/*
 * remote_result reads every result of the command sent on conn and returns
 * the one that matters: the first error, else the first result (a
 * multi-statement string answers one result per statement). NULL when the
 * connection failed or timed out. COPY is ended (it has no place here).
 */
static PGresult *
remote_result(PGconn *conn, int timeout_ms)
{
	PGresult   *keep = NULL;

	for (;;)
	{
		PGresult   *res;

		if (!wait_readable(conn, timeout_ms))
		{
			PQclear(keep);
			return NULL;
		}
		res = PQgetResult(conn);
		if (res == NULL)
			break;
		switch (PQresultStatus(res))
		{
			case PGRES_COPY_IN:
				PQputCopyEnd(conn, "COPY is not supported by adb.remote_exec");
				break;
			case PGRES_COPY_OUT:
				{
					char	   *buf;

					while (PQgetCopyData(conn, &buf, 0) > 0)
						PQfreemem(buf);
				}
				break;
			default:
				break;
		}
		if (keep == NULL ||
			(PQresultStatus(keep) != PGRES_FATAL_ERROR && PQresultStatus(res) == PGRES_FATAL_ERROR))
		{
			PQclear(keep);
			keep = res;
		}
		else
			PQclear(res);
		if (PQstatus(conn) == CONNECTION_BAD)
			break;
	}
	return keep;
}

/*
 * result_ok says whether res is a success; COPY states count as failures.
 */
static bool
result_ok(const PGresult *res)
{
	return res != NULL && (PQresultStatus(res) == PGRES_COMMAND_OK ||
						   PQresultStatus(res) == PGRES_TUPLES_OK ||
						   PQresultStatus(res) == PGRES_EMPTY_QUERY);
}

/*
 * remote_error_data puts the remote's SQLSTATE, message, detail, hint and
 * context into the error being built: the user sees the node's own error.
 */
static int
remote_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (s == NULL || strlen(s) != 5)
		return ERRCODE_CONNECTION_FAILURE;
	return MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]);
}

/*
 * remote_report raises the remote failure of sql on node label at elevel,
 * with the remote's own SQLSTATE and message (or the connection's error
 * when there is no result). Frees res.
 */
static void
remote_report(int elevel, PGresult *res, PGconn *conn, const char *label,
			  const char *what)
{
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
	const char *context = res ? PQresultErrorField(res, PG_DIAG_CONTEXT) : NULL;
	char	   *msg;
	int			sqlstate = remote_sqlstate(res);

	if (res != NULL && PQresultStatus(res) == PGRES_COPY_IN)
	{
		sqlstate = ERRCODE_FEATURE_NOT_SUPPORTED;
		primary = "COPY is not supported by adb.remote_exec";
	}
	if (primary == NULL)
	{
		char	   *m = pstrdup(conn ? PQerrorMessage(conn) : "");
		int			len = strlen(m);

		while (len > 0 && m[len - 1] == '\n')
			m[--len] = '\0';
		msg = psprintf("%s on node \"%s\": %s", what, label,
					   len > 0 ? m : "no answer");
	}
	else
		msg = pstrdup(primary);
	PG_TRY();
	{
		ereport(elevel,
				(errcode(sqlstate),
				 errmsg_internal("%s", msg),
				 detail ? errdetail_internal("%s", detail) : 0,
				 hint ? errhint("%s", hint) : 0,
				 context ? errcontext("%s", context) : 0,
				 errcontext("node \"%s\"", label)));
	}
	PG_FINALLY();
	{
		PQclear(res);
	}
	PG_END_TRY();
}

/*
 * remote_command runs sql on rc, ERROR on failure; a lost connection marks
 * rc's remote transaction lost.
 */
static void
remote_command(RemoteConn *rc, const char *sql)
{
	PGresult   *res;

	if (!PQsendQuery(rc->conn, sql))
	{
		rc->broken = rc->xact_depth > 0;
		remote_report(ERROR, NULL, rc->conn, rc->label, "could not send");
	}
	res = remote_result(rc->conn, 0);
	if (!result_ok(res))
	{
		if (PQstatus(rc->conn) == CONNECTION_BAD)
			rc->broken = rc->xact_depth > 0;
		remote_report(ERROR, res, rc->conn, rc->label, "lost connection");
	}
	PQclear(res);
}

/*
 * remote_cleanup_command runs sql on conn where an ERROR is not allowed
 * (commit, abort): false (and *res, when wanted, the error) on failure.
 */
static bool
remote_cleanup_command(PGconn *conn, const char *sql, PGresult **out)
{
	PGresult   *res;
	bool		ok;

	if (out)
		*out = NULL;
	if (conn == NULL || !PQsendQuery(conn, sql))
		return false;
	res = remote_result(conn, ADB_CLEANUP_TIMEOUT_MS);
	ok = result_ok(res);
	if (out && !ok)
		*out = res;
	else
		PQclear(res);
	return ok;
}

/*
 * remote_cancel stops the query running on conn, if any, and reads what is
 * left, so that the connection can take a ROLLBACK.
 */
static bool
remote_cancel(PGconn *conn)
{
	PGresult   *res;

	if (PQtransactionStatus(conn) != PQTRANS_ACTIVE)
		return true;
	{
		PGcancel   *cancel = PQgetCancel(conn);
		char		errbuf[256];

		if (cancel == NULL)
			return false;
		if (!PQcancel(cancel, errbuf, sizeof(errbuf)))
		{
			PQfreeCancel(cancel);
			return false;
		}
		PQfreeCancel(cancel);
	}
	res = remote_result(conn, ADB_CLEANUP_TIMEOUT_MS);
	PQclear(res);
	return PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_ACTIVE;
}

/* ---------------------------------------------------------------------
 * adb.remote_exec
 * --------------------------------------------------------------------- */

/*
 * node_conninfo is adb.conninfo(node): how this node reaches that one.
 */
static char *
node_conninfo(const char *node)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	char	   *result = NULL;
	MemoryContext outer = CurrentMemoryContext;
	int			ret;

	args[0] = CStringGetTextDatum(node);
	SPI_connect();
	ret = SPI_execute_with_args("SELECT adb.conninfo($1)", 1, argtypes, args, NULL, true, 1);
	if (ret == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			result = MemoryContextStrdup(outer, TextDatumGetCString(d));
	}
	SPI_finish();
	if (result == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("node \"%s\" does not exist", node),
				 errhint("The nodes are listed in adb.node.")));
	return result;
}

/*
 * begin_remote starts rc's remote transaction at this transaction's
 * isolation level, and savepoints down to the current subtransaction, so
 * that a local ROLLBACK TO rolls back what the remote did since.
 */
static void
begin_remote(RemoteConn *rc)
{
	int			level = GetCurrentTransactionNestLevel();

	if (rc->broken)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("the remote transaction on node \"%s\" was lost", rc->label),
				 errhint("Roll back this transaction.")));
	if (rc->xact_depth == 0)
	{
		const char *sql;

		switch (XactIsoLevel)
		{
			case XACT_SERIALIZABLE:
				sql = "START TRANSACTION ISOLATION LEVEL SERIALIZABLE";
				break;
			case XACT_REPEATABLE_READ:
				sql = "START TRANSACTION ISOLATION LEVEL REPEATABLE READ";
				break;
			default:
				sql = "START TRANSACTION ISOLATION LEVEL READ COMMITTED";
				break;
		}
		remote_command(rc, sql);
		rc->xact_depth = 1;
	}
	while (rc->xact_depth < level)
	{
		char		sql[64];

		snprintf(sql, sizeof(sql), "SAVEPOINT s%d", rc->xact_depth + 1);
		remote_command(rc, sql);
		rc->xact_depth++;
	}
}

/*
 * adb_remote_exec is adb.remote_exec(node, sql): sql (one or more
 * statements) runs on node inside a remote transaction that commits or
 * rolls back with this one — by two-phase commit when this transaction
 * writes elsewhere too. A remote error is this statement's error, with the
 * remote's SQLSTATE.
 */
Datum
adb_remote_exec(PG_FUNCTION_ARGS)
{
	char	   *node = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *sql = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char		key[ADB_KEYLEN];
	char	   *conninfo;
	RemoteConn *rc;
	PGresult   *res;

	if (strlen(node) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("node \"%s\" does not exist", node)));
	conninfo = node_conninfo(node);
	snprintf(key, sizeof(key), "n:%s", node);
	rc = remote_conn(key, true);
	remote_set_target(rc, node, conninfo);
	if (rc->xact_depth == 0)
		remote_ensure(rc);
	begin_remote(rc);

	if (!PQsendQuery(rc->conn, sql))
	{
		rc->broken = true;
		remote_report(ERROR, NULL, rc->conn, rc->label, "could not send");
	}
	forward_notices = true;
	PG_TRY();
	{
		res = remote_result(rc->conn, 0);
	}
	PG_FINALLY();
	{
		forward_notices = false;
	}
	PG_END_TRY();
	if (!result_ok(res))
	{
		if (PQstatus(rc->conn) == CONNECTION_BAD)
			rc->broken = true;
		remote_report(ERROR, res, rc->conn, rc->label, "lost connection");
	}
	PQclear(res);
	if (PQtransactionStatus(rc->conn) != PQTRANS_INTRANS)
	{
		/* The SQL ended (or broke) the remote transaction itself. */
		rc->broken = true;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("adb.remote_exec: the SQL sent to node \"%s\" must not end its transaction", node)));
	}
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * Which nodes this transaction writes on
 * --------------------------------------------------------------------- */

/*
 * move_callback_first puts our xact callback ahead of postgres_fdw's.
 * RegisterXactCallback pushes on the head of the list and postgres_fdw
 * registers on its first connection, after our _PG_init: registered again
 * once that happened, ours runs first and PREPAREs before postgres_fdw
 * sends its COMMIT. postgres_fdw registers once per backend, so once is
 * enough.
 */
static void
move_callback_first(void)
{
	if (callback_first)
		return;
	UnregisterXactCallback(adb_xact_callback, NULL);
	RegisterXactCallback(adb_xact_callback, NULL);
	callback_first = true;
}

/*
 * note_fdw_target records that this transaction wrote (or may have) through
 * postgres_fdw on serverid as userid — the key of postgres_fdw's
 * connection. Other wrappers' servers are not ours to commit.
 */
static void
note_fdw_target(Oid serverid, Oid userid)
{
	ForeignServer *srv;
	ForeignDataWrapper *fdw;
	int			i;

	for (i = 0; i < n_fdw_targets; i++)
		if (fdw_targets[i].serverid == serverid && fdw_targets[i].userid == userid)
			return;
	srv = GetForeignServer(serverid);
	fdw = GetForeignDataWrapper(srv->fdwid);
	if (strcmp(fdw->fdwname, "postgres_fdw") != 0)
		return;
	if (n_fdw_targets == max_fdw_targets)
	{
		max_fdw_targets = max_fdw_targets ? 2 * max_fdw_targets : 8;
		if (fdw_targets == NULL)
			fdw_targets = MemoryContextAlloc(TopMemoryContext, max_fdw_targets * sizeof(FdwTarget));
		else
			fdw_targets = repalloc(fdw_targets, max_fdw_targets * sizeof(FdwTarget));
	}
	fdw_targets[n_fdw_targets].serverid = serverid;
	fdw_targets[n_fdw_targets].userid = userid;
	n_fdw_targets++;
	move_callback_first();
}

/*
 * adb_twophase_note_write is note_fdw_target for the other parts of the
 * library: ddl.c's shard DDL, sent over postgres_fdw's connection outside
 * the executor, makes that datanode a writer of this transaction. Call it
 * after postgres_fdw's GetConnection: its first one registers
 * postgres_fdw's transaction callback, which ours must then be put ahead
 * of (move_callback_first).
 */
void
adb_twophase_note_write(Oid serverid, Oid userid)
{
	note_fdw_target(serverid, userid);
}

/*
 * note_result_rels looks at a statement's result relations: a foreign one
 * is a remote write (as the user postgres_fdw connected as: the range table
 * entry's checkAsUser, else the current user — for a partition opened by
 * tuple routing, its root's entry), a local table a local one.
 */
static void
note_result_rels(EState *estate, List *rels)
{
	ListCell   *lc;

	foreach(lc, rels)
	{
		ResultRelInfo *rri = (ResultRelInfo *) lfirst(lc);
		Relation	rel = rri->ri_RelationDesc;
		char		kind;

		if (rel == NULL)
			continue;
		kind = rel->rd_rel->relkind;
		if (kind == RELKIND_FOREIGN_TABLE)
		{
			Index		rti = rri->ri_RangeTableIndex;
			Oid			userid = InvalidOid;

			if (rti == 0 && rri->ri_RootResultRelInfo != NULL)
				rti = rri->ri_RootResultRelInfo->ri_RangeTableIndex;
			if (rti > 0 && rti <= (Index) estate->es_range_table_size)
				userid = exec_rt_fetch(rti, estate)->checkAsUser;
			if (!OidIsValid(userid))
				userid = GetUserId();
			note_fdw_target(GetForeignServerIdByRelId(RelationGetRelid(rel)), userid);
		}
		else if (kind == RELKIND_RELATION || kind == RELKIND_MATVIEW)
			local_write = true;
	}
}

/*
 * adb_executor_end notes the nodes a finished statement wrote on (before
 * the executor closes its result relations).
 */
static void
adb_executor_end(QueryDesc *queryDesc)
{
	EState	   *estate = queryDesc->estate;

	/*
	 * A SELECT has none, but for WITH … AS (INSERT …) SELECT. A plain
	 * EXPLAIN opened the result relations but wrote nothing, and
	 * postgres_fdw made no connection for it.
	 */
	if (estate != NULL && IsTransactionState() &&
		(estate->es_top_eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0)
	{
		note_result_rels(estate, estate->es_opened_result_relations);
		note_result_rels(estate, estate->es_tuple_routing_result_relations);
	}
	if (prev_executor_end)
		prev_executor_end(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
}

/*
 * connected_servers lists the postgres_fdw servers this backend has a
 * connection to (postgres_fdw_get_connections), NIL when the extension is
 * not in this database.
 */
static List *
connected_servers(void)
{
	List	   *result = NIL;
	MemoryContext outer = CurrentMemoryContext;
	uint64		i;

	SPI_connect();
	/* Where postgres_fdw's function is, if it is: not on a datanode. */
	if (SPI_execute("SELECT n.nspname FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
					"WHERE p.proname = 'postgres_fdw_get_connections' LIMIT 1", true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		char	   *nsp = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		char	   *q = psprintf("SELECT s.oid FROM pg_catalog.pg_foreign_server s "
								 "WHERE s.srvname IN (SELECT server_name FROM %s.postgres_fdw_get_connections())",
								 quote_identifier(nsp));

		if (SPI_execute(q, true, 0) == SPI_OK_SELECT)
		{
			for (i = 0; i < SPI_processed; i++)
			{
				bool		isnull;
				Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
				MemoryContext old = MemoryContextSwitchTo(outer);

				result = lappend_oid(result, DatumGetObjectId(d));
				MemoryContextSwitchTo(old);
			}
		}
	}
	SPI_finish();
	return result;
}

/*
 * note_utility_relation notes what COPY FROM or TRUNCATE on relid wrote:
 * a local table, or the servers of its foreign partitions. TRUNCATE
 * reaches every one; COPY only those its rows went to, which we cannot
 * see — so the servers of the table postgres_fdw has a connection to.
 */
static void
note_utility_relation(Oid relid, bool only_connected)
{
	List	   *rels;
	List	   *connected = NIL;
	bool		asked = false;
	ListCell   *lc;

	if (!OidIsValid(relid))
		return;
	rels = find_all_inheritors(relid, NoLock, NULL);
	foreach(lc, rels)
	{
		Oid			child = lfirst_oid(lc);
		char		kind = get_rel_relkind(child);

		if (kind == RELKIND_FOREIGN_TABLE)
		{
			Oid			srv = GetForeignServerIdByRelId(child);

			if (only_connected)
			{
				if (!asked)
				{
					connected = connected_servers();
					asked = true;
				}
				if (!list_member_oid(connected, srv))
					continue;
			}
			note_fdw_target(srv, GetUserId());
		}
		else if (kind == RELKIND_RELATION || kind == RELKIND_MATVIEW)
			local_write = true;
	}
}

/*
 * adb_process_utility notes the writes of utility statements: COPY FROM and
 * TRUNCATE on (distributed) tables, and DDL — any other statement that
 * gave this transaction an xid wrote the catalog here. The statements that
 * run others (CALL, DO, EXECUTE, EXPLAIN) are seen through those.
 */
static void
adb_process_utility(PlannedStmt *pstmt, const char *queryString,
					bool readOnlyTree, ProcessUtilityContext context,
					ParamListInfo params, QueryEnvironment *queryEnv,
					DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
							 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);

	if (!IsTransactionState())
		return;
	switch (nodeTag(stmt))
	{
		case T_CopyStmt:
			{
				CopyStmt   *copy = (CopyStmt *) stmt;

				if (copy->is_from && copy->relation != NULL)
					note_utility_relation(RangeVarGetRelid(copy->relation, NoLock, true), true);
			}
			break;
		case T_TruncateStmt:
			{
				ListCell   *lc;

				foreach(lc, ((TruncateStmt *) stmt)->relations)
					note_utility_relation(RangeVarGetRelid(lfirst_node(RangeVar, lc), NoLock, true), false);
			}
			break;
		case T_TransactionStmt:
		case T_VariableSetStmt:
		case T_VariableShowStmt:
		case T_CallStmt:
		case T_DoStmt:
		case T_ExecuteStmt:
		case T_ExplainStmt:
		case T_PrepareStmt:
		case T_DeallocateStmt:
		case T_DeclareCursorStmt:
		case T_FetchStmt:
		case T_ClosePortalStmt:
			break;
		default:
			if (TransactionIdIsValid(GetTopTransactionIdIfAny()))
				local_write = true;
			break;
	}
}

/* ---------------------------------------------------------------------
 * Commit
 * --------------------------------------------------------------------- */

/*
 * adb_fdw_conninfo is how our own connection reaches a postgres_fdw server as
 * the user mapping does: the server's and the mapping's libpq options.
 */
char *
adb_fdw_conninfo(ForeignServer *srv, UserMapping *um)
{
	StringInfoData s;
	PQconninfoOption *defs = PQconndefaults();
	List	   *opts = list_concat_copy(srv->options, um->options);
	ListCell   *lc;

	initStringInfo(&s);
	foreach(lc, opts)
	{
		DefElem    *d = (DefElem *) lfirst(lc);
		PQconninfoOption *o;
		const char *v;

		for (o = defs; o && o->keyword; o++)
			if (strcmp(o->keyword, d->defname) == 0)
				break;
		if (o == NULL || o->keyword == NULL || strchr(o->dispchar, 'D'))
			continue;
		appendStringInfo(&s, "%s='", d->defname);
		for (v = defGetString(d); *v; v++)
		{
			if (*v == '\'' || *v == '\\')
				appendStringInfoChar(&s, '\\');
			appendStringInfoChar(&s, *v);
		}
		appendStringInfoString(&s, "' ");
	}
	if (defs)
		PQconninfoFree(defs);
	return s.data;
}

/*
 * fdw_control is our own connection to postgres_fdw's server, connected
 * now (before any PREPARE, so that a failure aborts with nothing left):
 * COMMIT PREPARED runs over it after the local commit.
 */
static RemoteConn *
fdw_control(FdwTarget *t)
{
	char		key[ADB_KEYLEN];
	ForeignServer *srv = GetForeignServer(t->serverid);
	UserMapping *um = GetUserMapping(t->userid, t->serverid);
	RemoteConn *rc;
	bool		fresh;

	snprintf(key, sizeof(key), "s:%u:%u", t->serverid, t->userid);
	rc = remote_conn(key, true);
	remote_set_target(rc, srv->servername, adb_fdw_conninfo(srv, um));
	fresh = !conn_alive(rc->conn);
	remote_ensure(rc);

	/*
	 * A new connection (this backend's first two-phase commit there, or the
	 * node is back): finish first what a crash left in doubt on it, as the
	 * manager would — not waiting for the manager's next round.
	 */
	if (fresh)
		resolve_on(rc, "5 s");
	return rc;
}

/*
 * pause_ms sleeps (test hooks), interruptible unless interrupts are held.
 */
static void
pause_ms(int ms)
{
	TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);
	long		left;

	while ((left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end)) > 0)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, left,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * make_xid_durable writes this transaction's xid to WAL, flushed and on
 * the synchronous slaves, before any PREPARE names it. An xid only
 * assigned in memory is handed out again after a crash or a failover (the
 * next xid comes from WAL), and adb.resolve_prepared would then read the
 * fate of another transaction: a WAL record carrying the xid moves the
 * next xid past it on every node that replays it. The record is a
 * logical-decoding message, which replay ignores.
 */
static void
make_xid_durable(void)
{
	XLogRecPtr	lsn = LogLogicalMessage("adb_2pc", "", 0, true);

	XLogFlush(lsn);
	SyncRepWaitForLSN(lsn, false);
}

/*
 * Participant is one remote transaction at commit: the connection it runs
 * on (postgres_fdw's or ours), and the entry that keeps its gid — for
 * postgres_fdw, our own connection to the same server, which finishes it.
 */
typedef struct Participant
{
	PGconn	   *conn;
	const char *label;
	RemoteConn *rc;
	FdwTarget  *fdw;			/* NULL for adb.remote_exec's */
	bool		wrote;
} Participant;

/*
 * exchange sends sql[i] (when not NULL) to every participant, then reads
 * every answer — one round trip for all — into res[]. It returns the first
 * participant that failed, or -1; it reads what it sent before the caller
 * reports anything, so that no answer (a PREPARE) is left in flight.
 */
static int
exchange(Participant *p, int n, char **sql, PGresult **res)
{
	bool	   *sent = palloc0(sizeof(bool) * (n + 1));
	int			bad = -1;
	int			i;

	for (i = 0; i < n; i++)
	{
		res[i] = NULL;
		if (sql[i] == NULL)
			continue;
		sent[i] = PQsendQuery(p[i].conn, sql[i]);
		if (!sent[i])
		{
			bad = i;
			break;
		}
	}
	for (i = 0; i < n; i++)
	{
		if (!sent[i])
			continue;
		res[i] = remote_result(p[i].conn, 0);
		if (bad < 0 && !result_ok(res[i]))
			bad = i;
	}
	return bad;
}

/*
 * commit_remote_exec commits, one phase, the remote_exec transactions that
 * need no vote (a single writer, or read-only ones).
 */
static void
commit_remote_exec(bool only_readonly)
{
	HASH_SEQ_STATUS seq;
	RemoteConn *rc;

	if (remote_conns == NULL)
		return;
	hash_seq_init(&seq, remote_conns);
	while ((rc = hash_seq_search(&seq)) != NULL)
	{
		if (rc->key[0] != 'n' || rc->xact_depth == 0 || (only_readonly && rc->wrote))
			continue;
		remote_command(rc, "COMMIT TRANSACTION");
		rc->xact_depth = 0;
	}
}

/*
 * pre_commit decides and, for several writers, runs the first phase: every
 * remote writer PREPAREd (postgres_fdw's connections then get an empty
 * transaction for postgres_fdw's own COMMIT, which runs after us, to end
 * quietly), or this transaction fails here — and the abort callback rolls
 * back what was prepared.
 */
static void
pre_commit(void)
{
	HASH_SEQ_STATUS seq;
	RemoteConn *rc;
	Participant *p;
	PGresult  **res;
	char	  **sql;
	int			n = 0;
	int			n_exec = 0;
	int			writers;
	int			bad;
	int			i;
	uint64		fxid;

	if (remote_conns != NULL)
	{
		hash_seq_init(&seq, remote_conns);
		while ((rc = hash_seq_search(&seq)) != NULL)
		{
			if (rc->key[0] != 'n')
				continue;
			if (rc->broken)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("the remote transaction on node \"%s\" was lost", rc->label)));
			if (rc->xact_depth > 0)
				n_exec++;
		}
	}
	if (n_exec + n_fdw_targets + (local_write ? 1 : 0) < 2)
	{
		commit_remote_exec(false);
		return;
	}

	/* Several candidates: ask which wrote, all at once. */
	stat_checks++;
	p = palloc0(sizeof(Participant) * (n_fdw_targets + n_exec + 1));
	for (i = 0; i < n_fdw_targets; i++)
	{
		p[n].fdw = &fdw_targets[i];
		p[n].label = GetForeignServer(fdw_targets[i].serverid)->servername;
		p[n].conn = adb_fdw_GetConnection(GetUserMapping(fdw_targets[i].userid, fdw_targets[i].serverid),
									   false, NULL);
		n++;
	}
	if (remote_conns != NULL)
	{
		hash_seq_init(&seq, remote_conns);
		while ((rc = hash_seq_search(&seq)) != NULL)
		{
			if (rc->key[0] != 'n' || rc->xact_depth == 0)
				continue;
			p[n].rc = rc;
			p[n].label = rc->label;
			p[n].conn = rc->conn;
			n++;
		}
	}
	res = palloc0(sizeof(PGresult *) * (n + 1));
	sql = palloc0(sizeof(char *) * (n + 1));
	for (i = 0; i < n; i++)
		sql[i] = "SELECT pg_catalog.pg_current_xact_id_if_assigned() IS NOT NULL";
	bad = exchange(p, n, sql, res);
	if (bad >= 0)
		remote_report(ERROR, res[bad], p[bad].conn, p[bad].label, "lost connection");
	writers = local_write ? 1 : 0;
	for (i = 0; i < n; i++)
	{
		p[i].wrote = PQntuples(res[i]) == 1 && strcmp(PQgetvalue(res[i], 0, 0), "t") == 0;
		if (p[i].rc)
			p[i].rc->wrote = p[i].wrote;
		writers += p[i].wrote ? 1 : 0;
		PQclear(res[i]);
	}
	if (writers < 2)
	{
		commit_remote_exec(false);
		return;
	}

	/*
	 * Two-phase. The local xid, forced now, is the decision: its commit
	 * record commits every prepared transaction, its absence rolls them
	 * back (adb.resolve_prepared reads it after a crash). Our connections
	 * to postgres_fdw's servers are made before any PREPARE, so that a
	 * failure to connect leaves nothing prepared.
	 */
	fxid = U64FromFullTransactionId(GetTopFullTransactionId());
	make_xid_durable();
	for (i = 0; i < n; i++)
		if (p[i].wrote && p[i].fdw)
			p[i].rc = fdw_control(p[i].fdw);
	for (i = 0; i < n; i++)
	{
		char	   *gid;

		sql[i] = NULL;
		if (!p[i].wrote)
			continue;
		gid = psprintf("adb_" UINT64_FORMAT "_" UINT64_FORMAT "_%d", GetSystemIdentifier(), fxid, i + 1);
		strlcpy(p[i].rc->gid, gid, ADB_GIDLEN);
		sql[i] = psprintf("PREPARE TRANSACTION %s%s", quote_literal_cstr(gid),
						  p[i].fdw ? "; START TRANSACTION" : "");
		if (!p[i].fdw)
			p[i].rc->xact_depth = 0;
	}
	bad = exchange(p, n, sql, res);
	for (i = 0; i < n && bad < 0; i++)
		if (res[i] != NULL && strcmp(PQcmdStatus(res[i]), "PREPARE TRANSACTION") != 0)
			bad = i;
	if (bad >= 0)
		remote_report(ERROR, res[bad], p[bad].conn, p[bad].label, "could not prepare");
	for (i = 0; i < n; i++)
		PQclear(res[i]);
	commit_remote_exec(true);
	stat_prepared++;
	if (test_pause_after_prepare > 0)
		pause_ms(test_pause_after_prepare);
}

/*
 * finish_prepared runs the second phase over our own connections: COMMIT
 * PREPARED after the local commit, ROLLBACK PREPARED after an abort. It
 * cannot fail the transaction (decided already): a node that does not
 * answer gets a WARNING and adb.resolve_prepared finishes it later.
 */
static void
finish_prepared(bool commit)
{
	HASH_SEQ_STATUS seq;
	RemoteConn *rc;
	int			n = 0;

	if (remote_conns == NULL)
		return;
	hash_seq_init(&seq, remote_conns);
	while ((rc = hash_seq_search(&seq)) != NULL)
	{
		if (rc->gid[0] == '\0')
			continue;
		n++;
	}
	if (n == 0)
		return;
	if (commit && test_pause_after_commit > 0)
		pause_ms(test_pause_after_commit);

	/* Send all, then read all: one round trip. */
	hash_seq_init(&seq, remote_conns);
	while ((rc = hash_seq_search(&seq)) != NULL)
	{
		char		sql[ADB_GIDLEN + 32];

		if (rc->gid[0] == '\0')
			continue;
		snprintf(sql, sizeof(sql), "%s PREPARED '%s'", commit ? "COMMIT" : "ROLLBACK", rc->gid);
		if (conn_alive(rc->conn) && PQtransactionStatus(rc->conn) == PQTRANS_IDLE && PQsendQuery(rc->conn, sql))
			continue;
		/* Reconnect (the node may have restarted) and send again. */
		remote_disconnect(rc);
		{
			char	   *err = NULL;

			rc->conn = remote_open(rc, &err);
		}
		if (rc->conn == NULL || !PQsendQuery(rc->conn, sql))
		{
			ereport(WARNING,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not %s prepared transaction %s on node \"%s\"",
							commit ? "commit" : "roll back", rc->gid, rc->label),
					 errdetail("adb.resolve_prepared finishes it once the node answers.")));
			remote_disconnect(rc);
			rc->gid[0] = '\0';
		}
	}
	hash_seq_init(&seq, remote_conns);
	while ((rc = hash_seq_search(&seq)) != NULL)
	{
		PGresult   *res;

		if (rc->gid[0] == '\0')
			continue;
		res = remote_result(rc->conn, ADB_CLEANUP_TIMEOUT_MS);
		if (!result_ok(res))
		{
			/* ROLLBACK PREPARED of a PREPARE that never happened: fine. */
			if (commit || res == NULL || remote_sqlstate(res) != ERRCODE_UNDEFINED_OBJECT)
				ereport(WARNING,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("could not %s prepared transaction %s on node \"%s\": %s",
								commit ? "commit" : "roll back", rc->gid, rc->label,
								res && PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) ?
								PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : "no answer"),
						 errdetail("adb.resolve_prepared finishes it once the node answers.")));
			if (res == NULL || PQstatus(rc->conn) != CONNECTION_OK)
				remote_disconnect(rc);
		}
		PQclear(res);
		rc->gid[0] = '\0';
	}
}

/*
 * abort_remote_exec rolls back the remote_exec transactions still open
 * (cancelling a query still running); a connection that does not take it is
 * closed, which rolls back too.
 */
static void
abort_remote_exec(void)
{
	HASH_SEQ_STATUS seq;
	RemoteConn *rc;

	if (remote_conns == NULL)
		return;
	hash_seq_init(&seq, remote_conns);
	while ((rc = hash_seq_search(&seq)) != NULL)
	{
		rc->broken = false;
		rc->wrote = false;
		if (rc->conn == NULL || (rc->xact_depth == 0 && PQtransactionStatus(rc->conn) == PQTRANS_IDLE))
		{
			rc->xact_depth = 0;
			continue;
		}
		if (!remote_cancel(rc->conn) ||
			!remote_cleanup_command(rc->conn, "ROLLBACK TRANSACTION", NULL) ||
			PQtransactionStatus(rc->conn) != PQTRANS_IDLE)
			remote_disconnect(rc);
		rc->xact_depth = 0;
	}
}

/*
 * end_of_xact forgets the transaction's targets.
 */
static void
end_of_xact(void)
{
	n_fdw_targets = 0;
	local_write = false;
	if (remote_conns != NULL)
	{
		HASH_SEQ_STATUS seq;
		RemoteConn *rc;

		hash_seq_init(&seq, remote_conns);
		while ((rc = hash_seq_search(&seq)) != NULL)
		{
			rc->wrote = false;
			rc->broken = false;
			rc->gid[0] = '\0';
		}
	}
}

/*
 * adb_xact_callback drives the remote transactions with the local one.
 */
static void
adb_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			pre_commit();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (remote_conns != NULL)
			{
				HASH_SEQ_STATUS seq;
				RemoteConn *rc;

				hash_seq_init(&seq, remote_conns);
				while ((rc = hash_seq_search(&seq)) != NULL)
					if (rc->key[0] == 'n' && rc->xact_depth > 0)
					{
						hash_seq_term(&seq);
						ereport(ERROR,
								(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
								 errmsg("cannot PREPARE a transaction that has used adb.remote_exec")));
					}
			}
			break;
		case XACT_EVENT_COMMIT:
			finish_prepared(true);
			end_of_xact();
			break;
		case XACT_EVENT_ABORT:
			abort_remote_exec();
			finish_prepared(false);
			end_of_xact();
			break;
		case XACT_EVENT_PREPARE:
			end_of_xact();
			break;
		default:
			break;
	}
}

/*
 * adb_subxact_callback keeps remote_exec's savepoints in step: released
 * with the local subtransaction, rolled back to with it. A remote that
 * cannot roll back to its savepoint has work the local side undid: its
 * transaction is marked lost, and the local one cannot commit.
 */
static void
adb_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	HASH_SEQ_STATUS seq;
	RemoteConn *rc;
	int			level;

	if ((event != SUBXACT_EVENT_PRE_COMMIT_SUB && event != SUBXACT_EVENT_ABORT_SUB) ||
		remote_conns == NULL)
		return;
	level = GetCurrentTransactionNestLevel();
	hash_seq_init(&seq, remote_conns);
	while ((rc = hash_seq_search(&seq)) != NULL)
	{
		char		sql[96];

		if (rc->key[0] != 'n' || rc->xact_depth < level || rc->conn == NULL)
			continue;
		if (event == SUBXACT_EVENT_PRE_COMMIT_SUB)
		{
			snprintf(sql, sizeof(sql), "RELEASE SAVEPOINT s%d", level);
			PG_TRY();
			{
				remote_command(rc, sql);
			}
			PG_CATCH();
			{
				hash_seq_term(&seq);
				PG_RE_THROW();
			}
			PG_END_TRY();
		}
		else if (!rc->broken)
		{
			snprintf(sql, sizeof(sql), "ROLLBACK TO SAVEPOINT s%d; RELEASE SAVEPOINT s%d", level, level);
			if (!remote_cancel(rc->conn) || !remote_cleanup_command(rc->conn, sql, NULL))
				rc->broken = true;
		}
		rc->xact_depth = level - 1;
	}
}

/* ---------------------------------------------------------------------
 * In-doubt resolution
 * --------------------------------------------------------------------- */

/*
 * xact_status is pg_xact_status(fxid) here: "committed", "aborted",
 * "in progress", or NULL when this node cannot tell (an xid it never
 * assigned, or one too old).
 */
static char *
xact_status(uint64 fxid)
{
	FullTransactionId next = ReadNextFullTransactionId();
	LOCAL_FCINFO(fcinfo, 1);
	Datum		result;

	/* Not assigned here (yet): a slave promoted before it got that far. */
	if (fxid >= U64FromFullTransactionId(next))
		return NULL;

	/*
	 * pg_xact_status itself, not through SPI: this runs at PRE_COMMIT too
	 * (resolution on reconnect), where there is no snapshot for SPI.
	 */
	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = FullTransactionIdGetDatum(FullTransactionIdFromU64(fxid));
	fcinfo->args[0].isnull = false;
	result = pg_xact_status(fcinfo);
	if (fcinfo->isnull)
		return NULL;
	return text_to_cstring(DatumGetTextPP(result));
}

/*
 * resolve_on finishes, on the node rc is connected to, the prepared
 * transactions of this coordinator older than min_age: their fate is the
 * local xid's. Returns how many it finished; it WARNs, never ERRORs, for
 * what the node does not take.
 */
static int
resolve_on(RemoteConn *rc, const char *min_age)
{
	const char *node = rc->label;
	char	   *sql;
	PGresult   *res;
	int			done = 0;
	int			i;

	sql = psprintf("SELECT gid FROM pg_catalog.pg_prepared_xacts "
				   "WHERE database = current_database() AND gid LIKE %s "
				   "AND prepared <= now() - %s::interval",
				   quote_literal_cstr(psprintf("adb\\_" UINT64_FORMAT "\\_%%", GetSystemIdentifier())),
				   quote_literal_cstr(min_age));
	if (!PQsendQuery(rc->conn, sql) || (res = remote_result(rc->conn, ADB_CLEANUP_TIMEOUT_MS)) == NULL ||
		PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		if (rc->conn && PQstatus(rc->conn) != CONNECTION_OK)
			remote_disconnect(rc);
		ereport(WARNING,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not list the prepared transactions of node \"%s\"", node)));
		return 0;
	}
	for (i = 0; i < PQntuples(res); i++)
	{
		const char *gid = PQgetvalue(res, i, 0);
		uint64		sysid;
		uint64		fxid;
		int			seqno;
		char	   *status;
		const char *verb;
		PGresult   *r2 = NULL;

		if (sscanf(gid, "adb_" UINT64_FORMAT "_" UINT64_FORMAT "_%d", &sysid, &fxid, &seqno) != 3 ||
			sysid != GetSystemIdentifier())
			continue;
		status = xact_status(fxid);
		if (status == NULL)
		{
			ereport(WARNING,
					(errmsg("prepared transaction %s on node \"%s\": this node cannot tell the fate of transaction " UINT64_FORMAT ", left to a DBA",
							gid, node, fxid)));
			continue;
		}
		if (strcmp(status, "committed") == 0)
			verb = "COMMIT";
		else if (strcmp(status, "aborted") == 0)
			verb = "ROLLBACK";
		else
			continue;
		if (remote_cleanup_command(rc->conn, psprintf("%s PREPARED %s", verb, quote_literal_cstr(gid)), &r2))
		{
			ereport(LOG,
					(errmsg("adb: %s PREPARED %s on node \"%s\"", verb, gid, node)));
			done++;
		}
		else if (r2 == NULL || remote_sqlstate(r2) != ERRCODE_UNDEFINED_OBJECT)
			ereport(WARNING,
					(errmsg("could not %s prepared transaction %s on node \"%s\": %s",
							verb, gid, node,
							r2 && PQresultErrorField(r2, PG_DIAG_MESSAGE_PRIMARY) ?
							PQresultErrorField(r2, PG_DIAG_MESSAGE_PRIMARY) : "no answer")));
		PQclear(r2);
		if (PQstatus(rc->conn) != CONNECTION_OK)
		{
			remote_disconnect(rc);
			break;
		}
	}
	PQclear(res);
	return done;
}

/*
 * resolve_node connects (or reuses adb.resolve_prepared's connection) to
 * node and resolves there; a node that cannot be reached gets a WARNING.
 */
static int
resolve_node(const char *node, const char *conninfo, const char *min_age)
{
	char		key[ADB_KEYLEN];
	RemoteConn *rc;
	char	   *err = NULL;

	snprintf(key, sizeof(key), "r:%s", node);
	rc = remote_conn(key, true);
	remote_set_target(rc, node, conninfo);
	if (!conn_alive(rc->conn))
	{
		remote_disconnect(rc);
		rc->conn = remote_open(rc, &err);
		if (rc->conn == NULL)
		{
			ereport(WARNING,
					(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
					 errmsg("could not connect to node \"%s\" to resolve prepared transactions", node),
					 errdetail_internal("%s", err)));
			return 0;
		}
	}
	return resolve_on(rc, min_age);
}

/*
 * adb_resolve_prepared is adb.resolve_prepared(min_age): on every other
 * master (datanode, coordinator, gtmcoord), the prepared transactions this
 * coordinator left in doubt — older than min_age, so not those a backend is
 * finishing now — committed or rolled back as their local transaction was;
 * those still in progress are left. Returns how many it finished. Cheap
 * when there is nothing: one query per node, over a connection kept.
 */
Datum
adb_resolve_prepared(PG_FUNCTION_ARGS)
{
	char	   *min_age = DatumGetCString(DirectFunctionCall1(interval_out, PG_GETARG_DATUM(0)));
	List	   *nodes = NIL;
	List	   *infos = NIL;
	ListCell   *a,
			   *b;
	uint64		i;
	int			done = 0;
	MemoryContext outer = CurrentMemoryContext;

	SPI_connect();
	if (SPI_execute("SELECT name, adb.conninfo(name) FROM adb.node "
					"WHERE type IN ('datanode master', 'coordinator master', 'gtmcoord master') "
					"AND name <> current_setting('cluster_name') ORDER BY name", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read adb.node");
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		char	   *info = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		MemoryContext old;

		if (name == NULL || info == NULL)
			continue;
		old = MemoryContextSwitchTo(outer);
		nodes = lappend(nodes, pstrdup(name));
		infos = lappend(infos, pstrdup(info));
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	forboth(a, nodes, b, infos)
		done += resolve_node(lfirst(a), lfirst(b), min_age);
	PG_RETURN_INT32(done);
}

/*
 * adb_twophase_stats is adb.twophase_stats(): this backend's count of
 * commits that asked the remote writers whether they wrote (checks) and of
 * those that went two-phase (prepared). Tests use it to see that a
 * single-writer transaction costs no round trip of ours.
 */
Datum
adb_twophase_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = Int64GetDatum(stat_checks);
	values[1] = Int64GetDatum(stat_prepared);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
