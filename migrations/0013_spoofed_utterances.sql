-- The HNSW index of spoofed utterances moves to a table of its own that is only ever inserted into:
-- clustering updates utterances.spoof_cluster_id, and every update of an indexed column of
-- utterances wrote a new entry into the HNSW graph (src/db/schema.ts, spoofedUtterances).
CREATE TABLE "spoofed_utterances" (
	"id" uuid PRIMARY KEY NOT NULL,
	"recording_id" uuid NOT NULL,
	"embedding" halfvec(768) NOT NULL
);
--> statement-breakpoint
ALTER TABLE "spoofed_utterances" ADD CONSTRAINT "spoofed_utterances_id_utterances_id_fk" FOREIGN KEY ("id") REFERENCES "public"."utterances"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
-- every writer of utterances (the store, COPY loads) fills it; a label or embedding is never
-- changed after the store, but should one be, the copy follows
CREATE FUNCTION "spoofed_utterances_copy"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    DELETE FROM spoofed_utterances WHERE id = OLD.id;
  END IF;
  IF NEW.deepfake_label = 'spoofed' AND NEW.deepfake_embedding IS NOT NULL THEN
    INSERT INTO spoofed_utterances (id, recording_id, embedding) VALUES (NEW.id, NEW.recording_id, NEW.deepfake_embedding);
  END IF;
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER "utterances_spoofed_copy" AFTER INSERT OR UPDATE OF "deepfake_label", "deepfake_embedding" ON "utterances"
  FOR EACH ROW EXECUTE FUNCTION "spoofed_utterances_copy"();--> statement-breakpoint
INSERT INTO "spoofed_utterances" ("id", "recording_id", "embedding")
  SELECT "id", "recording_id", "deepfake_embedding" FROM "utterances"
  WHERE "deepfake_label" = 'spoofed' AND "deepfake_embedding" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "spoofed_utterances_embedding_hnsw" ON "spoofed_utterances" USING hnsw ("embedding" halfvec_cosine_ops);--> statement-breakpoint
DROP INDEX "utterances_spoofed_embedding_hnsw";
