/*
 * adb.h — the parts of the adb library, each set up by _PG_init (adb.c).
 *
 * twophase.c: atomic commit across nodes (two-phase commit of the remote
 * transactions of postgres_fdw and of adb.remote_exec).
 * ddl.c: DDL on distributed tables reaching every shard and coordinator.
 * dml.c: what a write through a coordinator must respect (distribution
 * column, isolation level, deadlock victims).
 * copy.c: COPY FROM into a distributed table in bulk, one COPY a datanode.
 * shardcopy.c: a datanode's side of it, the rows of all its shards at once.
 * batch.c: one remote query per datanode for the slots of an Append.
 * upsert.c: INSERT … ON CONFLICT (key) into a distributed table.
 */
#ifndef ADB_H
#define ADB_H

#include "foreign/foreign.h"
#include "libpq-fe.h"
#include "nodes/parsenodes.h"
#include "partitioning/partdefs.h"
#include "utils/relcache.h"

extern void adb_twophase_init(void);
extern void adb_twophase_note_write(Oid serverid, Oid userid);

/* adb_fdw_conninfo is the libpq connection string postgres_fdw builds for
 * server srv and user mapping um (twophase.c). */
extern char *adb_fdw_conninfo(ForeignServer *srv, UserMapping *um);

/* postgres_fdw's functions (fdw.c). */
typedef struct PgFdwConnState PgFdwConnState;
extern PGconn *adb_fdw_GetConnection(UserMapping *user, bool will_prep_stmt,
									 PgFdwConnState **state);
extern PGresult *adb_fdw_get_result(PGconn *conn, const char *query);
extern void adb_fdw_report_error(int elevel, PGresult *res, PGconn *conn,
								 bool clear, const char *sql);
extern void adb_fdw_do_sql_command(PGconn *conn, const char *sql);
extern int	adb_fdw_set_transmission_modes(void);
extern void adb_fdw_reset_transmission_modes(int nestlevel);
extern bool adb_fdw_is_postgres_fdw(Oid serverid);
extern bool adb_fdw_pending(PgFdwConnState *state);

/* Distributed tables: which tables are, and the routing of a row (fdw.c). */
extern bool adb_is_distributed(Relation rel);
extern bool adb_is_distributed_oid(Oid relid);
extern bool adb_looks_distributed(Relation rel);
extern int	adb_route_row(Relation rel, PartitionDesc pd, Datum *values, bool *nulls);
extern char *adb_remote_name(Oid relid);
extern char *adb_remote_name_of(ForeignTable *ft, const char *nspname, const char *relname);
extern char *adb_remote_columns(Oid relid);
extern char *adb_option_value(List *options, const char *name);

extern void adb_ddl_init(void);
extern void adb_dml_init(void);
extern void adb_dml_sync_connection(Oid userid, Oid serverid);
extern void adb_hide_failing_row(void *arg);
extern void adb_upsert_init(void);
extern void adb_aggpush_init(void);
/* The plan of the last query aggpush.c rewrote (batch.c merges its slots). */
struct PlannedStmt;
extern struct PlannedStmt *adb_aggpush_planned;
extern void adb_router_init(void);
extern void adb_copy_init(void);
extern uint64 adb_shard_copy(CopyStmt *stmt, const char *queryString);
extern void adb_batch_init(void);

/* The number of Foreign Scans in a plan tree (batch.c). */
struct Plan;
extern int	adb_plan_foreign_scans(struct Plan *plan);

#endif
