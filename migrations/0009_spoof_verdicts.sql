CREATE TABLE "recording_spoof_verdicts" (
	"recording_id" uuid PRIMARY KEY NOT NULL,
	"verdict" text NOT NULL,
	"spoofed_share" double precision,
	"peak_p_spoofed" double precision,
	"judged_utterances" integer NOT NULL,
	"judged_seconds" double precision NOT NULL,
	"spoofed_seconds" double precision NOT NULL,
	"near_misses" integer NOT NULL,
	"decided_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "recording_spoof_verdicts_verdict_check" CHECK ("recording_spoof_verdicts"."verdict" in ('bonafide', 'spoofed', 'mixed', 'suspicious', 'unknown'))
);
--> statement-breakpoint
ALTER TABLE "recording_spoof_verdicts" ADD CONSTRAINT "recording_spoof_verdicts_recording_id_recordings_id_fk" FOREIGN KEY ("recording_id") REFERENCES "public"."recordings"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "recording_spoof_verdicts_verdict_idx" ON "recording_spoof_verdicts" USING btree ("verdict");--> statement-breakpoint
-- the new step (spoofs.verdict) covers history: recordings analysed before it existed run it, and only it
UPDATE "recording_events" SET "status" = 'pending', "completed_at" = NULL WHERE "status" = 'done';
