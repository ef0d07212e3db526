-- GROUP BY a column that is not the distribution column (100 groups).
SELECT g, count(*), sum(v) FROM bench_big GROUP BY g;
