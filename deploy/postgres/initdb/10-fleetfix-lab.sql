-- Run by the postgres image on its first start (an empty data volume): the lab's own database,
-- so that runs and sweeps of the simulated fleet never mix with the real fleet's.
CREATE DATABASE fleetfix_lab OWNER fleetfix;
