package coord

// Fingerprint is the query, on a coordinator, of a digest of the catalog
// the coordinators keep alike: what another coordinator's DDL, EXPAND's
// slot moves or a switch change on every coordinator in the cluster, and
// so what one out of the cluster misses. Two coordinators with the same
// fingerprint route every distributed table alike:
//
//   - the slot map (adb.slot);
//   - every distributed table (a hash-partitioned table with foreign
//     partitions): its columns and partition key, and each partition's
//     bound, foreign server and options (the shard it reads);
//   - what the shards enforce and the coordinators list (adb.dist_table,
//     adb.dist_constraint: keys and unique indexes, which DDL through a
//     coordinator changes on every coordinator);
//   - the roles and their attributes (not their passwords: a verifier is
//     salted per server, so the same password differs from one to the
//     next), as queries through a coordinator run as them.
//
// Left out, on purpose: adb.node, which the manager writes from its own
// catalog on every refresh (coord.Configure), and where the foreign
// servers point (host, port: a read-only coordinator's point at slaves,
// and Configure sets them anyway) — only their names, through the
// partitions. A coordinator without the adb schema fails the query: it
// is not alike.
const Fingerprint = `SELECT md5(
	coalesce((SELECT string_agg(slot || '=' || node, ',' ORDER BY slot) FROM adb.slot), '') || '|' ||
	coalesce((SELECT string_agg(d, E'\n' ORDER BY d) FROM (
		SELECT format('%I.%I (%s) %s [%s]', n.nspname, p.relname,
			(SELECT string_agg(format('%I %s%s', a.attname, format_type(a.atttypid, a.atttypmod),
			                          CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END), ', ' ORDER BY a.attnum)
			 FROM pg_attribute a WHERE a.attrelid = p.oid AND a.attnum > 0 AND NOT a.attisdropped),
			pg_get_partkeydef(p.oid),
			(SELECT string_agg(format('%I %s %s %s', ch.relname, pg_get_expr(ch.relpartbound, ch.oid),
			                          coalesce(s.srvname::text, '-'), array_to_string(ft.ftoptions, ',')), '; ' ORDER BY ch.relname)
			 FROM pg_inherits i JOIN pg_class ch ON ch.oid = i.inhrelid
			 LEFT JOIN pg_foreign_table ft ON ft.ftrelid = ch.oid LEFT JOIN pg_foreign_server s ON s.oid = ft.ftserver
			 WHERE i.inhparent = p.oid)) AS d
		FROM pg_partitioned_table pt JOIN pg_class p ON p.oid = pt.partrelid JOIN pg_namespace n ON n.oid = p.relnamespace
		WHERE pt.partstrat = 'h' AND EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_foreign_table ft ON ft.ftrelid = i.inhrelid WHERE i.inhparent = p.oid)
	) AS tables), '') || '|' ||
	coalesce((SELECT string_agg(rel::text || ' ' || dist_column, ',' ORDER BY rel::text) FROM adb.dist_table), '') || '|' ||
	coalesce((SELECT string_agg(format('%s %s %s %s %s', rel::text, name, kind, def, cols), E'\n' ORDER BY rel::text, name) FROM adb.dist_constraint), '') || '|' ||
	coalesce((SELECT string_agg(format('%I %s%s%s%s%s%s', rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolbypassrls),
	                            ',' ORDER BY rolname) FROM pg_roles WHERE rolname NOT LIKE 'pg\_%'), ''))`
