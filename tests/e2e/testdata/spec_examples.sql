-- Every node-table example of the specification, verbatim and in its order,
-- after registering the hosts the examples name. Some examples are refused
-- on purpose: they break the spec's own rules (a slave on the master's port
-- and path, a node named "gtmcoord" that was never added, a typo).
ADD HOST localhost1 (protocol=local, address='127.0.0.2');
ADD HOST localhost2 (protocol=local, address='127.0.0.3');
ADD HOST localhost5 (protocol=local, address='127.0.0.6');
LIST HOST;

-- add node
ADD GTMCOORD MASTER gc (HOST=localhost1, PORT=6768, PATH='/home/antdb/data/gc');
ADD GTMCOORD SLAVE gcs for gc (HOST=localhost2, PORT=6768, SYNC=t, PATH='/home/antdb/data/gc');
ADD COORDINATOR MASTER coord1(HOST=localhost1, PORT=5532,PATH='/home/antdb/data/coord1');
ADD DATANODE MASTER db1(HOST=localhost1, PORT=15533,PATH='/home/antdb/data/db1');
ADD DATANODE SLAVE db1s for db1(HOST=localhost1, PORT=15533, SYNC=t, PATH= '/home/antdb/data/db1');
ADD DATANODE SLAVE db11s for db1s(HOST=localhost1, PORT=15543, SYNC=t, PATH= '/home/antdb/data/db11');
-- the same slave on the second host, as the example's comment intends
ADD DATANODE SLAVE db1s for db1(HOST=localhost2, PORT=15533, SYNC=t, PATH= '/home/antdb/data/db1');
ADD DATANODE SLAVE db11s for db1s(HOST=localhost1, PORT=15543, SYNC=t, PATH= '/home/antdb/data/db11');
LIST NODE;

-- alter node
ALTER GTMCOORD MASTER gtmcoord (PORT=6666);
ALTER GTMCOORD MASTER gc (PORT=6666);
ALTER GTMCOORD SLAVE gcs (SYNC_STATE='sync');
ALTER GTMCOORD SLAVE gtms (SYNC_STATE='async');
ALTER GTMCOORD SLAVE gcs (SYNC_STATE='async');
ALTER COORDINATOR MASTER coord1 (PORT=5532, PATH=’/home/antdb/data/coord1’);
ALTER DATANODE MASTER db1 (HOST=localhost5, PATH=’/home/antdb/data/coord1’);
ALTER DATANODE SLAVE db1s (SYNC_STATE='sync');
ALTER DATANODE SLAVE db1s (SYNC_STATE='async');
LIST NODE;

-- list node
LIST NODE db1;
list node DATANODE MASTER db1_2;
list node DATANODE MASTER db1;
list node host localhost1;
list node zone local;
LIST NODE COORDINATOR;
LIST NODE DATANODE SLAVE;
LIST NODE (name, type, mastername, sync_state) db11s, gc;

-- drop node
DROP DATANODE SLAVE db1s;
DROP DATANODE SLAVE db11s, db1s;
DROP COORDINATOR master coord1;
DROP GTMCOORD MASTER gc;
DROP GTMCOORD SLAVE gcs;
DROP GTMCOORD MASTER gc;
LIST NODE;
DROP HOST localhost1, localhost2;
DROP HOST localhost1, localhost2, localhost5;
DROP HOST localhost5;
