CREATE TABLE "alert_events" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"alert_id" uuid NOT NULL,
	"action" text NOT NULL,
	"status" text NOT NULL,
	"note" text,
	"evidence_added" integer DEFAULT 0 NOT NULL,
	"source" text NOT NULL,
	"key_id" uuid,
	"request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "alert_events_action_check" CHECK ("alert_events"."action" in ('raised', 'evidence_added', 'acknowledged', 'dismissed')),
	CONSTRAINT "alert_events_status_check" CHECK ("alert_events"."status" in ('open', 'acknowledged', 'dismissed')),
	CONSTRAINT "alert_events_source_check" CHECK ("alert_events"."source" in ('api', 'cli', 'system'))
);
--> statement-breakpoint
CREATE TABLE "alerts" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"type" text NOT NULL,
	"subject" text NOT NULL,
	"status" text DEFAULT 'open' NOT NULL,
	"identity_id" uuid,
	"cluster_id" uuid,
	"recording_ids" uuid[] DEFAULT '{}'::uuid[] NOT NULL,
	"account_refs" text[] DEFAULT '{}'::text[] NOT NULL,
	"evidence" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"status_changed_at" timestamp with time zone,
	CONSTRAINT "alerts_type_check" CHECK ("alerts"."type" in ('watchlist_hit', 'voice_reuse', 'new_spoof_campaign', 'spoof_cluster_growth', 'voice_clone_suspected', 'voice_clone_cross_account')),
	CONSTRAINT "alerts_status_check" CHECK ("alerts"."status" in ('open', 'acknowledged', 'dismissed'))
);
--> statement-breakpoint
CREATE TABLE "staff_proposals" (
	"identity_id" uuid PRIMARY KEY NOT NULL,
	"status" text DEFAULT 'proposed' NOT NULL,
	"evidence" jsonb NOT NULL,
	"proposed_at" timestamp with time zone DEFAULT now() NOT NULL,
	"decided_at" timestamp with time zone,
	"note" text,
	"source" text,
	"key_id" uuid,
	"request_id" text,
	CONSTRAINT "staff_proposals_status_check" CHECK ("staff_proposals"."status" in ('proposed', 'confirmed', 'rejected')),
	CONSTRAINT "staff_proposals_source_check" CHECK ("staff_proposals"."source" in ('api', 'cli', 'system'))
);
--> statement-breakpoint
CREATE TABLE "watchlist_entries" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"identity_id" uuid NOT NULL,
	"reason" text NOT NULL,
	"voiceprint_id" uuid,
	"seed_recording_id" uuid,
	"look_back_checked" integer DEFAULT 0 NOT NULL,
	"look_back_hits" integer DEFAULT 0 NOT NULL,
	"source" text NOT NULL,
	"key_id" uuid,
	"request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"removed_at" timestamp with time zone,
	"removed_reason" text,
	"removed_key_id" uuid,
	CONSTRAINT "watchlist_entries_source_check" CHECK ("watchlist_entries"."source" in ('api', 'cli', 'system'))
);
--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "enrol_customer" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "alert_events" ADD CONSTRAINT "alert_events_alert_id_alerts_id_fk" FOREIGN KEY ("alert_id") REFERENCES "public"."alerts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "alerts" ADD CONSTRAINT "alerts_identity_id_identities_id_fk" FOREIGN KEY ("identity_id") REFERENCES "public"."identities"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "staff_proposals" ADD CONSTRAINT "staff_proposals_identity_id_identities_id_fk" FOREIGN KEY ("identity_id") REFERENCES "public"."identities"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "watchlist_entries" ADD CONSTRAINT "watchlist_entries_identity_id_identities_id_fk" FOREIGN KEY ("identity_id") REFERENCES "public"."identities"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "watchlist_entries" ADD CONSTRAINT "watchlist_entries_voiceprint_id_voiceprints_id_fk" FOREIGN KEY ("voiceprint_id") REFERENCES "public"."voiceprints"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "alert_events_alert_idx" ON "alert_events" USING btree ("alert_id","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "alerts_live_subject_key" ON "alerts" USING btree ("type","subject") WHERE "alerts"."status" in ('open', 'acknowledged');--> statement-breakpoint
CREATE INDEX "alerts_created_idx" ON "alerts" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "alerts_type_created_idx" ON "alerts" USING btree ("type","created_at","id");--> statement-breakpoint
CREATE INDEX "alerts_status_created_idx" ON "alerts" USING btree ("status","created_at","id");--> statement-breakpoint
CREATE INDEX "alerts_identity_idx" ON "alerts" USING btree ("identity_id") WHERE "alerts"."identity_id" is not null;--> statement-breakpoint
CREATE INDEX "alerts_cluster_idx" ON "alerts" USING btree ("cluster_id") WHERE "alerts"."cluster_id" is not null;--> statement-breakpoint
CREATE INDEX "alerts_account_refs_idx" ON "alerts" USING gin ("account_refs");--> statement-breakpoint
CREATE INDEX "alerts_recording_ids_idx" ON "alerts" USING gin ("recording_ids");--> statement-breakpoint
CREATE INDEX "staff_proposals_proposed_idx" ON "staff_proposals" USING btree ("proposed_at","identity_id") WHERE "staff_proposals"."status" = 'proposed';--> statement-breakpoint
CREATE UNIQUE INDEX "watchlist_entries_live_identity_key" ON "watchlist_entries" USING btree ("identity_id") WHERE "watchlist_entries"."removed_at" is null;--> statement-breakpoint
CREATE INDEX "watchlist_entries_created_idx" ON "watchlist_entries" USING btree ("created_at","id") WHERE "watchlist_entries"."removed_at" is null;--> statement-breakpoint
-- the new analysis steps (watchlist, voice reuse, staff proposals, customer enrolment) cover history:
-- events already analysed run again, and the runner runs only the steps they have not done
UPDATE "recording_events" SET "status" = 'pending', "completed_at" = NULL, "next_attempt_at" = now()
WHERE "status" = 'done';
