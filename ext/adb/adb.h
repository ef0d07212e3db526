/*
 * adb.h — the parts of the adb library, each set up by _PG_init (adb.c).
 *
 * twophase.c: atomic commit across nodes (two-phase commit of the remote
 * transactions of postgres_fdw and of adb.remote_exec).
 * ddl.c: DDL on distributed tables reaching every shard and coordinator.
 * dml.c: what a write through a coordinator must respect (distribution
 * column, isolation level, deadlock victims).
 * copy.c: COPY FROM into a distributed table in bulk, shard by shard.
 */
#ifndef ADB_H
#define ADB_H

extern void adb_twophase_init(void);
extern void adb_twophase_note_write(Oid serverid, Oid userid);

/* adb_fdw_conninfo is the libpq connection string postgres_fdw builds for
 * server srv and user mapping um (twophase.c). */
struct ForeignServer;
struct UserMapping;
extern char *adb_fdw_conninfo(struct ForeignServer *srv, struct UserMapping *um);
extern void adb_ddl_init(void);
extern void adb_dml_init(void);
extern void adb_aggpush_init(void);
extern void adb_router_init(void);
extern void adb_copy_init(void);

#endif
