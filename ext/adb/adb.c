/*
 * adb.c — the library's entry point: PostgreSQL calls _PG_init once per
 * process that loads it (every backend, since the manager lists adb in
 * shared_preload_libraries), and each part installs its hooks.
 */
#include "postgres.h"

#include "fmgr.h"

#include "adb.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	adb_twophase_init();
	adb_ddl_init();
	/* Before dml.c: its check of the query runs first. */
	adb_upsert_init();
	adb_dml_init();
	adb_aggpush_init();
	adb_router_init();
	adb_copy_init();
	adb_batch_init();
}
