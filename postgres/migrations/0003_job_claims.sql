-- 0003: job claims (portrait.JobClaims). A job that a node is running is
-- claimed by it until claim_until (the database's clock); NULL when no
-- node has claimed it.
ALTER TABLE jobs ADD COLUMN claimed_by text;
ALTER TABLE jobs ADD COLUMN claim_until timestamptz;
