CREATE TABLE "recording_events" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"recording_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"processed_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "file_name" text;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "audio_format" text;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "audio_bytes" bigint;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "duration_s" double precision;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "spool_file" text;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "attempts" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "lease_owner" text;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "lease_expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "submitted_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "recording_events" ADD CONSTRAINT "recording_events_recording_id_recordings_id_fk" FOREIGN KEY ("recording_id") REFERENCES "public"."recordings"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "recording_events_pending_idx" ON "recording_events" USING btree ("created_at") WHERE "recording_events"."processed_at" is null;--> statement-breakpoint
CREATE INDEX "recordings_claim_idx" ON "recordings" USING btree ("next_attempt_at") WHERE "recordings"."status" in ('queued', 'submitting', 'submitted');--> statement-breakpoint
CREATE INDEX "recordings_created_idx" ON "recordings" USING btree ("created_at","id");