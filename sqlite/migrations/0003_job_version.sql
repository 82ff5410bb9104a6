-- 0003: job versions (portrait.Job.Version).
--
-- version counts the merges into a job: AddJob's merge adds one, so that
-- FinishJob can tell a job that changed while it ran (it is kept, to run
-- again with the newer data) from one that did not (it is deleted). Jobs
-- stored before this migration start at 0, as new jobs do.
ALTER TABLE jobs ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
