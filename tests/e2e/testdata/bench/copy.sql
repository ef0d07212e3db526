-- Bulk load with COPY from a file the server reads (:file, quoted).
TRUNCATE bench_load;
COPY bench_load FROM :file WITH (FORMAT csv);
