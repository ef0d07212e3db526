package dataplane

// WaitsQuery reads one node's sessions for the wait-for graph: every
// session in a transaction or waiting for a lock, with how long it has
// waited (pg_locks.waitstart of its ungranted lock), the lock, and its
// blockers; plus the node's deadlock_timeout in milliseconds, on every
// row. Columns: pid, application_name, transaction age (s), wait (s),
// lock, blocking pids, deadlock_timeout (ms).
const WaitsQuery = `WITH w AS (
	SELECT DISTINCT ON (l.pid) l.pid, l.waitstart, l.mode || ' on ' || l.locktype AS lock
	FROM pg_locks l WHERE NOT l.granted AND l.pid IS NOT NULL
	ORDER BY l.pid, l.waitstart)
SELECT a.pid, coalesce(a.application_name, ''),
	coalesce(extract(epoch FROM now() - a.xact_start), 0)::float8,
	coalesce(extract(epoch FROM now() - w.waitstart), 0)::float8,
	coalesce(w.lock, ''),
	CASE WHEN w.pid IS NULL THEN '{}'::int[] ELSE pg_blocking_pids(a.pid) END,
	(extract(epoch FROM current_setting('deadlock_timeout')::interval) * 1000)::float8
FROM pg_stat_activity a LEFT JOIN w ON w.pid = a.pid
WHERE a.pid <> pg_backend_pid() AND (a.xact_start IS NOT NULL OR w.pid IS NOT NULL)`

// CancelSQL cancels a deadlock's victim on its coordinator: $1 pid, $2
// how long it has waited (seconds), $3 the detail its error will carry.
const CancelSQL = `SELECT adb.cancel_deadlock($1::int, make_interval(secs => $2::float8), $3::text)`

// HasResolveSQL says whether a coordinator has adb.resolve_prepared
// (the library's two-phase commit, ext/adb/twophase.c).
const HasResolveSQL = `SELECT to_regprocedure('adb.resolve_prepared(interval)') IS NOT NULL`

// ResolveSQL finishes the prepared transactions a coordinator left in
// doubt on the datanodes; its result, as text, is what it did.
const ResolveSQL = `SELECT coalesce(adb.resolve_prepared()::text, '')`
