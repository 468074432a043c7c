CREATE TABLE "spoof_clusters" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"label" text,
	"notes" text,
	"status" text DEFAULT 'active' NOT NULL,
	"merged_into" uuid,
	"origin" text NOT NULL,
	"centroid" halfvec(768) NOT NULL,
	"member_sum" vector(768) NOT NULL,
	"radius" double precision DEFAULT 0 NOT NULL,
	"size" integer NOT NULL,
	"recording_count" integer NOT NULL,
	"account_count" integer NOT NULL,
	"channels" text[] DEFAULT '{}'::text[] NOT NULL,
	"first_seen_at" timestamp with time zone,
	"last_seen_at" timestamp with time zone,
	"medoid_utterance_id" uuid,
	"mean_p_spoofed" double precision,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "spoof_clusters_status_check" CHECK ("spoof_clusters"."status" in ('active', 'merged', 'retired')),
	CONSTRAINT "spoof_clusters_origin_check" CHECK ("spoof_clusters"."origin" in ('online', 'recluster', 'analyst'))
);
--> statement-breakpoint
ALTER TABLE "utterances" ADD COLUMN "spoof_cluster_id" uuid;--> statement-breakpoint
CREATE INDEX "spoof_clusters_active_idx" ON "spoof_clusters" USING btree ("status");--> statement-breakpoint
ALTER TABLE "alerts" ADD CONSTRAINT "alerts_cluster_id_spoof_clusters_id_fk" FOREIGN KEY ("cluster_id") REFERENCES "public"."spoof_clusters"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "utterances" ADD CONSTRAINT "utterances_spoof_cluster_id_spoof_clusters_id_fk" FOREIGN KEY ("spoof_cluster_id") REFERENCES "public"."spoof_clusters"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "utterances_spoof_cluster_idx" ON "utterances" USING btree ("spoof_cluster_id","recording_id") WHERE "utterances"."spoof_cluster_id" is not null;--> statement-breakpoint
-- the new step (spoofs.clusters) covers history: recordings analysed before it existed run it, and only it
UPDATE "recording_events" SET "status" = 'pending', "completed_at" = NULL WHERE "status" = 'done';
