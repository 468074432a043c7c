CREATE TABLE "listed_voiceprints" (
	"voiceprint_id" uuid PRIMARY KEY NOT NULL,
	"identity_id" uuid NOT NULL,
	"recording_id" uuid NOT NULL,
	"embedding" vector(192) NOT NULL
);
--> statement-breakpoint
ALTER TABLE "listed_voiceprints" ADD CONSTRAINT "listed_voiceprints_voiceprint_id_voiceprints_id_fk" FOREIGN KEY ("voiceprint_id") REFERENCES "public"."voiceprints"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "listed_voiceprints" ADD CONSTRAINT "listed_voiceprints_identity_id_identities_id_fk" FOREIGN KEY ("identity_id") REFERENCES "public"."identities"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "listed_voiceprints_identity_idx" ON "listed_voiceprints" USING btree ("identity_id");--> statement-breakpoint
-- the voiceprints of the identities listed before this table existed
INSERT INTO "listed_voiceprints" ("voiceprint_id", "identity_id", "recording_id", "embedding")
SELECT v."id", v."identity_id", v."recording_id", v."embedding"
FROM "voiceprints" v
JOIN "watchlist_entries" e ON e."identity_id" = v."identity_id" AND e."removed_at" IS NULL;
