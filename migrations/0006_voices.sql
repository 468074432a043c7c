-- Voices: identities (who is behind voiceprints), their history, the impostor cohort's calibration,
-- and the indexes behind the search filters. The identity-assignment analysis step is new, and must
-- cover recordings stored before it: events already done are set back to pending (the runner then
-- runs only the steps not in their steps_done).
CREATE TABLE "identities" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"kind" text NOT NULL,
	"name" text,
	"account_ref" text,
	"origin" text NOT NULL,
	"analyst_edited_at" timestamp with time zone,
	"centroid" vector(192),
	"member_count" integer DEFAULT 0 NOT NULL,
	"merged_into" uuid,
	"retired_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "identities_kind_check" CHECK ("identities"."kind" in ('customer', 'fraudster', 'staff', 'unknown')),
	CONSTRAINT "identities_origin_check" CHECK ("identities"."origin" in ('analyst', 'online', 'recluster')),
	CONSTRAINT "identities_customer_account_check" CHECK ("identities"."kind" <> 'customer' or "identities"."account_ref" is not null)
);
--> statement-breakpoint
CREATE TABLE "identity_events" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"identity_id" uuid NOT NULL,
	"action" text NOT NULL,
	"voiceprint_ids" uuid[] DEFAULT '{}'::uuid[] NOT NULL,
	"related_identity_ids" uuid[] DEFAULT '{}'::uuid[] NOT NULL,
	"reason" text,
	"source" text NOT NULL,
	"key_id" uuid,
	"request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "voice_calibrations" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"method" text NOT NULL,
	"voiceprint_count" integer NOT NULL,
	"cohort_size" integer NOT NULL,
	"pair_count" bigint NOT NULL,
	"model" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "voiceprints" ADD COLUMN "identity_id" uuid;--> statement-breakpoint
ALTER TABLE "voiceprints" ADD COLUMN "assigned_by" text;--> statement-breakpoint
ALTER TABLE "voiceprints" ADD COLUMN "assigned_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "identity_events" ADD CONSTRAINT "identity_events_identity_id_identities_id_fk" FOREIGN KEY ("identity_id") REFERENCES "public"."identities"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "identities_kind_idx" ON "identities" USING btree ("kind") WHERE "identities"."retired_at" is null;--> statement-breakpoint
CREATE INDEX "identities_created_idx" ON "identities" USING btree ("created_at","id") WHERE "identities"."retired_at" is null;--> statement-breakpoint
CREATE INDEX "identities_account_idx" ON "identities" USING btree ("account_ref") WHERE "identities"."account_ref" is not null;--> statement-breakpoint
CREATE INDEX "identities_centroid_hnsw" ON "identities" USING hnsw ("centroid" vector_cosine_ops);--> statement-breakpoint
CREATE INDEX "identity_events_identity_idx" ON "identity_events" USING btree ("identity_id","created_at");--> statement-breakpoint
CREATE INDEX "voice_calibrations_created_idx" ON "voice_calibrations" USING btree ("created_at");--> statement-breakpoint
ALTER TABLE "voiceprints" ADD CONSTRAINT "voiceprints_identity_id_identities_id_fk" FOREIGN KEY ("identity_id") REFERENCES "public"."identities"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "recordings_channel_call_idx" ON "recordings" USING btree ("channel","call_at");--> statement-breakpoint
CREATE INDEX "recordings_call_at_idx" ON "recordings" USING btree ("call_at");--> statement-breakpoint
CREATE INDEX "voiceprints_identity_idx" ON "voiceprints" USING btree ("identity_id");--> statement-breakpoint
ALTER TABLE "voiceprints" ADD CONSTRAINT "voiceprints_assigned_by_check" CHECK ("voiceprints"."assigned_by" in ('analyst', 'online', 'recluster'));--> statement-breakpoint
UPDATE "recording_events" SET "status" = 'pending', "completed_at" = NULL, "next_attempt_at" = now()
WHERE "status" = 'done';