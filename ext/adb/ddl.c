/*
 * ddl.c — see adb.h.
 */
#include "postgres.h"

#include "adb.h"

void
adb_ddl_init(void)
{
}
