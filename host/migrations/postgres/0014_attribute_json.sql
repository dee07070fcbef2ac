-- A search attribute's value as the workflow set it (JSON), so a run's
-- attributes read back with their types: `value` alone cannot tell the
-- string "true" from the boolean. NULL in rows set before this column.
ALTER TABLE run_attributes ADD COLUMN json TEXT;
