/*
 * fdw.c — the functions of postgres_fdw.so the other parts call, for all
 * of them: postgres_fdw.h is not installed, so they are resolved at run
 * time, once per backend, by name (postgres_fdw exports them).
 */
#include "postgres.h"

#include "fmgr.h"
#include "foreign/foreign.h"

#include "adb.h"

typedef PGconn *(*GetConnection_fn) (UserMapping *user, bool will_prep_stmt,
									 PgFdwConnState **state);
typedef PGresult *(*pgfdw_get_result_fn) (PGconn *conn, const char *query);
typedef void (*pgfdw_report_error_fn) (int elevel, PGresult *res, PGconn *conn,
									   bool clear, const char *sql);
typedef void (*do_sql_command_fn) (PGconn *conn, const char *sql);
typedef int (*set_transmission_modes_fn) (void);
typedef void (*reset_transmission_modes_fn) (int nestlevel);

static GetConnection_fn get_connection = NULL;
static pgfdw_get_result_fn get_result = NULL;
static pgfdw_report_error_fn report_error = NULL;
static do_sql_command_fn do_sql_command = NULL;
static set_transmission_modes_fn set_transmission_modes = NULL;
static reset_transmission_modes_fn reset_transmission_modes = NULL;

/* resolve loads postgres_fdw (if this backend has not yet) and finds them. */
static void
resolve(void)
{
	if (reset_transmission_modes != NULL)
		return;
	get_connection = (GetConnection_fn)
		load_external_function("$libdir/postgres_fdw", "GetConnection", true, NULL);
	get_result = (pgfdw_get_result_fn)
		load_external_function("$libdir/postgres_fdw", "pgfdw_get_result", true, NULL);
	report_error = (pgfdw_report_error_fn)
		load_external_function("$libdir/postgres_fdw", "pgfdw_report_error", true, NULL);
	do_sql_command = (do_sql_command_fn)
		load_external_function("$libdir/postgres_fdw", "do_sql_command", true, NULL);
	set_transmission_modes = (set_transmission_modes_fn)
		load_external_function("$libdir/postgres_fdw", "set_transmission_modes", true, NULL);
	reset_transmission_modes = (reset_transmission_modes_fn)
		load_external_function("$libdir/postgres_fdw", "reset_transmission_modes", true, NULL);
}

PGconn *
adb_fdw_GetConnection(UserMapping *user, bool will_prep_stmt, PgFdwConnState **state)
{
	resolve();
	return get_connection(user, will_prep_stmt, state);
}

PGresult *
adb_fdw_get_result(PGconn *conn, const char *query)
{
	resolve();
	return get_result(conn, query);
}

void
adb_fdw_report_error(int elevel, PGresult *res, PGconn *conn, bool clear, const char *sql)
{
	resolve();
	report_error(elevel, res, conn, clear, sql);
}

void
adb_fdw_do_sql_command(PGconn *conn, const char *sql)
{
	resolve();
	do_sql_command(conn, sql);
}

int
adb_fdw_set_transmission_modes(void)
{
	resolve();
	return set_transmission_modes();
}

void
adb_fdw_reset_transmission_modes(int nestlevel)
{
	resolve();
	reset_transmission_modes(nestlevel);
}

/* adb_fdw_is_postgres_fdw says whether serverid is a server of postgres_fdw. */
bool
adb_fdw_is_postgres_fdw(Oid serverid)
{
	ForeignServer *srv = GetForeignServer(serverid);

	return strcmp(GetForeignDataWrapper(srv->fdwid)->fdwname, "postgres_fdw") == 0;
}

/*
 * PgFdwConnStateLayout is postgres_fdw 15's PgFdwConnState (its header is
 * not installed): a connection's pending asynchronous request, if any.
 */
typedef struct PgFdwConnStateLayout
{
	void	   *pendingAreq;
} PgFdwConnStateLayout;

/*
 * adb_fdw_pending says whether a connection of postgres_fdw (its state
 * from GetConnection) has an asynchronous fetch of a scan still pending:
 * another query must not be sent on it then.
 */
bool
adb_fdw_pending(PgFdwConnState *state)
{
	return state != NULL && ((PgFdwConnStateLayout *) state)->pendingAreq != NULL;
}
