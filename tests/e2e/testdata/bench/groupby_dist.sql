-- GROUP BY the distribution column over bench_big: every group holds one
-- row, so HAVING keeps the answer empty and the measure is the grouping.
SELECT id, count(*) FROM bench_big GROUP BY id HAVING count(*) > 1;
