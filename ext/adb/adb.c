/*
 * adb.c — the library's entry point: PostgreSQL calls _PG_init once per
 * process that loads it (every backend, since the manager lists adb in
 * shared_preload_libraries), and each part installs its hooks.
 */
#include "postgres.h"

#include <malloc.h>

#include "fmgr.h"

#include "adb.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * glibc's malloc gives memory back to the kernel as soon as 128 kB are free
 * at the top of the heap, and maps larger blocks of their own, so a
 * backend that plans a query over 64 slots (a few MB of memory contexts)
 * faults every page of them in again at each query: a third of a
 * coordinator's time on an aggregate over a distributed table. Each
 * process keeps up to 16 MB free instead, and takes blocks under 8 MB
 * from its heap.
 */
#define KEEP_FREE_BYTES (16 * 1024 * 1024)
#define OWN_MAP_BYTES (8 * 1024 * 1024)

void
_PG_init(void)
{
	(void) mallopt(M_TRIM_THRESHOLD, KEEP_FREE_BYTES);
	(void) mallopt(M_MMAP_THRESHOLD, OWN_MAP_BYTES);
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
