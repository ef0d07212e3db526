-- Bulk load with INSERT … SELECT: :rows rows in one statement.
TRUNCATE bench_load;
INSERT INTO bench_load SELECT n, n % 100, n FROM generate_series(1, :rows) n;
