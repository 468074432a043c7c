-- Results documents are ~200 KiB of JSON each (the vectors are strings). TOAST compresses them with
-- pglz by default, which made storing a recording's raw_document cost ~4x more than with lz4
-- (bench/results/store-vs-copy.json). lz4 needs a server built with it (Debian's and the official
-- images are); PGlite is not, and keeps pglz. Only values written from now on are affected.
DO $$
BEGIN
  ALTER TABLE recordings ALTER COLUMN raw_document SET COMPRESSION lz4;
  ALTER TABLE recordings ALTER COLUMN raw_body SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  RAISE NOTICE 'lz4 is not available on this server: recordings.raw_document stays pglz-compressed';
END
$$;
