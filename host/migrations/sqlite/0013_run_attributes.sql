-- Search attributes: typed key/values a workflow sets on its run
-- (`upsert-search-attributes`), for list queries. `value` is a string as
-- is, other values as JSON; `num` the number, for numbers.
CREATE TABLE run_attributes (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    num REAL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX run_attributes_value ON run_attributes (key, value);
CREATE INDEX run_attributes_num ON run_attributes (key, num);
