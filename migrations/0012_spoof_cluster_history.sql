CREATE TABLE "spoof_cluster_events" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"cluster_id" uuid NOT NULL,
	"action" text NOT NULL,
	"utterance_ids" uuid[] DEFAULT '{}'::uuid[] NOT NULL,
	"related_cluster_ids" uuid[] DEFAULT '{}'::uuid[] NOT NULL,
	"reason" text,
	"source" text NOT NULL,
	"key_id" uuid,
	"request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "spoof_clusters" ADD COLUMN "analyst_edited_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "spoof_clusters" ADD COLUMN "status_reason" text;--> statement-breakpoint
ALTER TABLE "spoof_clusters" ADD COLUMN "looked_back_size" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "spoof_cluster_events" ADD CONSTRAINT "spoof_cluster_events_cluster_id_spoof_clusters_id_fk" FOREIGN KEY ("cluster_id") REFERENCES "public"."spoof_clusters"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "spoof_cluster_events_cluster_idx" ON "spoof_cluster_events" USING btree ("cluster_id","created_at");