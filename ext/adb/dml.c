/*
 * dml.c — see adb.h.
 */
#include "postgres.h"

#include "adb.h"

void
adb_dml_init(void)
{
}
