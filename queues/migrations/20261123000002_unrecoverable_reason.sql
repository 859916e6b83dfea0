-- A failed attempt that retrying cannot fix (image cannot be pulled, the operator refused the
-- spec) goes straight to the dead letters with its own reason.
ALTER TABLE dead_letters DROP CONSTRAINT dead_letters_reason_check;
ALTER TABLE dead_letters ADD CONSTRAINT dead_letters_reason_check
    CHECK (reason IN ('invalid', 'unknown-namespace', 'never-fits', 'expired', 'retries-exhausted',
                      'cancelled', 'rejected', 'unrecoverable'));
