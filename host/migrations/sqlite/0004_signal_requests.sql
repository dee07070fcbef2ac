-- A client's request id for a signal: sending it again is answered with
-- the signal it already delivered.
ALTER TABLE signals ADD COLUMN request_id TEXT;
CREATE UNIQUE INDEX signals_request ON signals (request_id) WHERE request_id IS NOT NULL;
