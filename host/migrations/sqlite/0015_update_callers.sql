-- The run that sent an update (a workflow asking another): told once the
-- update is answered.
ALTER TABLE updates ADD COLUMN caller_run_id TEXT;
