-- Version 5: the state that commands keep between statements, as typed
-- tables instead of mgr_setting keys.

-- One row per EXPAND DATANODE MASTER src TO dst until EXPAND CLEAN: phase
-- 'copied' (dst streams from src; EXPAND ACTIVATE next) or 'activated'
-- (dst owns slots, a comma-separated list; both sides still hold the other
-- side's rows until EXPAND CLEAN). A dropped node takes its expansions
-- with it: an expansion of a node that is gone cannot be finished.
CREATE TABLE mgr_expansion (
    dst     TEXT PRIMARY KEY NOT NULL REFERENCES mgr_node (name) ON UPDATE RESTRICT ON DELETE CASCADE,
    src     TEXT NOT NULL REFERENCES mgr_node (name) ON UPDATE RESTRICT ON DELETE CASCADE,
    phase   TEXT NOT NULL CHECK (phase IN ('copied', 'activated')),
    slots   TEXT NOT NULL DEFAULT '',
    started TEXT NOT NULL,
    updated TEXT NOT NULL,
    CHECK (src <> dst),
    CHECK (phase = 'activated' OR slots = '')
) STRICT;
CREATE INDEX mgr_expansion_src ON mgr_expansion (src);

-- One row per APPEND COORDINATOR node FOR source until APPEND ACTIVATE
-- COORDINATOR node: node streams from source.
CREATE TABLE mgr_append (
    node    TEXT PRIMARY KEY NOT NULL REFERENCES mgr_node (name) ON UPDATE RESTRICT ON DELETE CASCADE,
    source  TEXT NOT NULL REFERENCES mgr_node (name) ON UPDATE RESTRICT ON DELETE CASCADE,
    started TEXT NOT NULL,
    CHECK (node <> source)
) STRICT;
CREATE INDEX mgr_append_source ON mgr_append (source);

-- A manager upgraded in the middle of an expansion keeps it. Version 4
-- kept "expand.clean.<dst>" = "src:k,k,…" after ACTIVATE and
-- "expand.pending.<dst>" = src before; a manager killed between the two
-- writes of ACTIVATE left both, and the later phase wins. Keys naming
-- nodes that no longer exist are state nothing can finish: they go.
INSERT INTO mgr_expansion (dst, src, phase, slots, started, updated)
    SELECT substr(s.key, length('expand.clean.') + 1), substr(s.value, 1, instr(s.value, ':') - 1), 'activated',
           substr(s.value, instr(s.value, ':') + 1), strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
    FROM mgr_setting s
    WHERE substr(s.key, 1, length('expand.clean.')) = 'expand.clean.' AND instr(s.value, ':') > 0
      AND EXISTS (SELECT 1 FROM mgr_node WHERE name = substr(s.key, length('expand.clean.') + 1))
      AND EXISTS (SELECT 1 FROM mgr_node WHERE name = substr(s.value, 1, instr(s.value, ':') - 1))
      AND substr(s.key, length('expand.clean.') + 1) <> substr(s.value, 1, instr(s.value, ':') - 1);
INSERT OR IGNORE INTO mgr_expansion (dst, src, phase, slots, started, updated)
    SELECT substr(s.key, length('expand.pending.') + 1), s.value, 'copied', '',
           strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
    FROM mgr_setting s
    WHERE substr(s.key, 1, length('expand.pending.')) = 'expand.pending.'
      AND EXISTS (SELECT 1 FROM mgr_node WHERE name = substr(s.key, length('expand.pending.') + 1))
      AND EXISTS (SELECT 1 FROM mgr_node WHERE name = s.value)
      AND substr(s.key, length('expand.pending.') + 1) <> s.value;
INSERT INTO mgr_append (node, source, started)
    SELECT substr(s.key, length('append.coordinator.') + 1), s.value, strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
    FROM mgr_setting s
    WHERE substr(s.key, 1, length('append.coordinator.')) = 'append.coordinator.'
      AND EXISTS (SELECT 1 FROM mgr_node WHERE name = substr(s.key, length('append.coordinator.') + 1))
      AND EXISTS (SELECT 1 FROM mgr_node WHERE name = s.value)
      AND substr(s.key, length('append.coordinator.') + 1) <> s.value;
DELETE FROM mgr_setting
    WHERE substr(key, 1, length('expand.pending.')) = 'expand.pending.'
       OR substr(key, 1, length('expand.clean.')) = 'expand.clean.'
       OR substr(key, 1, length('append.coordinator.')) = 'append.coordinator.';

-- Users see expansions as they see the journal: read-only, through a view.
CREATE VIEW expansion AS SELECT src, dst, phase, slots, started, updated FROM mgr_expansion;
