-- Verified domains are checked again: when their TXT record has gone, since when, and why.
ALTER TABLE domains ADD COLUMN checked_at BIGINT;
ALTER TABLE domains ADD COLUMN failing_since BIGINT;
ALTER TABLE domains ADD COLUMN problem TEXT;
