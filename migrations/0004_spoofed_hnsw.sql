-- Spoof-cluster search looks among spoofed utterances only; bonafide ones no longer pay for HNSW upkeep.
-- The new index holds only the (few) spoofed rows, so it builds quickly even on a large table.
DROP INDEX "utterances_deepfake_embedding_hnsw";--> statement-breakpoint
CREATE INDEX "utterances_spoofed_embedding_hnsw" ON "utterances" USING hnsw ("deepfake_embedding" halfvec_cosine_ops) WHERE "utterances"."deepfake_label" = 'spoofed';