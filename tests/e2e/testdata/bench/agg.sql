-- count(*), sum, avg, min, max over bench_big (1 M rows).
SELECT count(*), sum(v), avg(v), min(v), max(v) FROM bench_big;
