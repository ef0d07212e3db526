-- Single-row INSERT by key into :tbl (bench_ins, or a shard of it on a
-- datanode): one new row per transaction, at a random key
-- (a collision among 2^62 keys is not expected in a run).
\set id random(1, 4611686018427387903)
INSERT INTO :tbl (id, v) VALUES (:id, 'x');
