-- Version 4: the manager's users. A password is kept only as its
-- SCRAM-SHA-256 verifier (PostgreSQL's pg_authid format), never in clear;
-- privs lists the AntDB command privileges GRANTed to the user
-- (comma-separated: add, alter, …); a superuser may run everything.
CREATE TABLE mgr_user (
    name      TEXT PRIMARY KEY NOT NULL CHECK (name <> ''),
    verifier  TEXT NOT NULL DEFAULT '',
    superuser INTEGER NOT NULL DEFAULT 0 CHECK (superuser IN (0, 1)),
    privs     TEXT NOT NULL DEFAULT ''
) STRICT;
