-- Run once by the postgres image on an empty volume: the Dagster instance's own database.
CREATE DATABASE dagster OWNER effectlake;
