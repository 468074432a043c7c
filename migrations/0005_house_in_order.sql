-- The outbox becomes the analysis steps' job table (one lease and one list of steps done per event,
-- replacing processed_at, which could serve one consumer only), imported recordings get the stored
-- event that import used to skip, and the audit trail starts: append-only, enforced by a trigger.
CREATE TABLE "audit_events" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"source" text NOT NULL,
	"key_id" uuid,
	"request_id" text,
	"action" text NOT NULL,
	"target_ids" text[] DEFAULT '{}'::text[] NOT NULL,
	"params_digest" text NOT NULL,
	"result_count" integer NOT NULL,
	CONSTRAINT "audit_events_source_check" CHECK ("audit_events"."source" in ('api', 'cli', 'system'))
);
--> statement-breakpoint
DROP INDEX "recording_events_pending_idx";--> statement-breakpoint
ALTER TABLE "recording_events" ADD COLUMN "status" text DEFAULT 'pending' NOT NULL;--> statement-breakpoint
ALTER TABLE "recording_events" ADD COLUMN "steps_done" text[] DEFAULT '{}'::text[] NOT NULL;--> statement-breakpoint
ALTER TABLE "recording_events" ADD COLUMN "attempts" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "recording_events" ADD COLUMN "error" text;--> statement-breakpoint
ALTER TABLE "recording_events" ADD COLUMN "lease_owner" text;--> statement-breakpoint
ALTER TABLE "recording_events" ADD COLUMN "lease_expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "recording_events" ADD COLUMN "next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "recording_events" ADD COLUMN "updated_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "recording_events" ADD COLUMN "completed_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "audit_events_created_idx" ON "audit_events" USING btree ("created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "recording_events_stored_key" ON "recording_events" USING btree ("recording_id") WHERE "recording_events"."kind" = 'stored';--> statement-breakpoint
CREATE INDEX "recording_events_claim_idx" ON "recording_events" USING btree ("next_attempt_at") WHERE "recording_events"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "recording_events_dead_idx" ON "recording_events" USING btree ("created_at") WHERE "recording_events"."status" = 'dead';--> statement-breakpoint
ALTER TABLE "recording_events" DROP COLUMN "processed_at";--> statement-breakpoint
ALTER TABLE "recording_events" ADD CONSTRAINT "recording_events_status_check" CHECK ("recording_events"."status" in ('pending', 'done', 'dead'));--> statement-breakpoint
-- Recordings imported before this migration never got their outbox event: give each stored
-- recording one, so that every stored recording goes through the analysis steps.
INSERT INTO "recording_events" ("recording_id", "kind", "created_at")
SELECT r."id", 'stored', coalesce(r."completed_at", r."created_at")
FROM "recordings" r
WHERE r."status" = 'complete'
  AND NOT EXISTS (SELECT 1 FROM "recording_events" e WHERE e."recording_id" = r."id" AND e."kind" = 'stored');--> statement-breakpoint
-- The audit trail can be added to, never edited: every UPDATE, DELETE or TRUNCATE is refused,
-- whoever asks (a role with the right to drop the trigger can still do so, visibly, in DDL).
CREATE FUNCTION "audit_events_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;--> statement-breakpoint
CREATE TRIGGER "audit_events_no_update_or_delete" BEFORE UPDATE OR DELETE ON "audit_events"
  FOR EACH ROW EXECUTE FUNCTION "audit_events_append_only"();--> statement-breakpoint
CREATE TRIGGER "audit_events_no_truncate" BEFORE TRUNCATE ON "audit_events"
  FOR EACH STATEMENT EXECUTE FUNCTION "audit_events_append_only"();
