-- Writes through a coordinator (issue 10, item 3): the SQL side of
-- ext/adb/dml.c.

-- adb.cancel_deadlock(victim, waited, detail) is how the manager breaks a
-- deadlock across nodes (internal/dataplane finds it): backend victim of
-- this coordinator, when it still runs the transaction that has waited
-- for at least waited (the manager's reading, on the datanode: no clock is
-- compared), is cancelled, and its error reads "deadlock detected" (40P01)
-- with detail. False when it is not that transaction any more.
CREATE OR REPLACE FUNCTION adb.mark_deadlock_victim(victim int, detail text) RETURNS boolean
AS 'adb', 'adb_cancel_deadlock' LANGUAGE C STRICT;

CREATE OR REPLACE FUNCTION adb.cancel_deadlock(victim int, waited interval, detail text) RETURNS boolean
LANGUAGE plpgsql AS $fn$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = victim AND a.state = 'active'
	               AND now() - a.xact_start >= waited) THEN
		RETURN false;
	END IF;
	RETURN adb.mark_deadlock_victim(victim, detail);
END
$fn$;
