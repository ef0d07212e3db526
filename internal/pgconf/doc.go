// Package pgconf edits PostgreSQL's configuration files in place:
// postgresql.conf and postgresql.auto.conf (parameters) and pg_hba.conf
// (client authentication rules).
//
// The editors are pure functions from old content to new content, so they
// can be table-tested and fuzzed without a data directory; EditConfFile and
// EditHBAFile add the I/O: they refuse symbolic links and non-regular files
// (the agent runs as root inside directories owned by another user, who must
// not be able to point postgresql.conf at /etc/shadow) and write atomically
// (temporary file in the same directory, fsync, rename, fsync of the
// directory), keeping the file's mode and owner.
//
// Every value is written quoted ('…' with ' doubled and \ doubled), which
// PostgreSQL accepts for parameters of any type; every pg_hba field is
// validated so that no request can smuggle a second rule, an include (@file)
// or a comment into the file. Edits are idempotent: applying the same edit
// twice changes nothing the second time and reports changed=false.
package pgconf
