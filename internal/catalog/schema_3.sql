-- Version 3: the manager's own settings (the doctor's switch and tuning).
CREATE TABLE mgr_setting (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
