-- Version 7: the sync state a slave had before the doctor took it out of
-- the cluster (isolated, or unable to follow a failover), so that it comes
-- back with it (cluster.RewoundSyncState): a DBA's async stays async.
-- '' for a node that is in the cluster, or was taken out before version 7.
ALTER TABLE mgr_node ADD COLUMN presync TEXT NOT NULL DEFAULT ''
    CHECK (presync IN ('', 'sync', 'potential', 'async'));
