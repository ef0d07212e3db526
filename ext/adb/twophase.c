/*
 * twophase.c — see adb.h.
 */
#include "postgres.h"

#include "adb.h"

void
adb_twophase_init(void)
{
}
