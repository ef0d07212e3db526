-- Single-row SELECT by key among the :rows rows of bench_kv.
\set id random(1, :rows)
SELECT v FROM bench_kv WHERE id = :id;
