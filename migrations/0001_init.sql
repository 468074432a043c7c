CREATE TABLE "api_keys" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"scope" text NOT NULL,
	"key_hash" text NOT NULL,
	"key_prefix" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "api_keys_scope_check" CHECK ("api_keys"."scope" in ('read', 'write', 'admin'))
);
--> statement-breakpoint
CREATE TABLE "recordings" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"sha256" text,
	"document_sha256" text,
	"source" text NOT NULL,
	"account_ref" text,
	"channel" text,
	"call_at" timestamp with time zone,
	"meta" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"upstream_api" text,
	"upstream_cid" bigint,
	"upstream_pid" bigint,
	"raw_document" jsonb,
	"raw_body" text,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp with time zone,
	CONSTRAINT "recordings_status_check" CHECK ("recordings"."status" in ('queued', 'submitting', 'submitted', 'complete', 'failed', 'dead')),
	CONSTRAINT "recordings_upstream_api_check" CHECK ("recordings"."upstream_api" in ('deepfake', 'behavioral'))
);
--> statement-breakpoint
CREATE TABLE "utterances" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"recording_id" uuid NOT NULL,
	"upstream_id" text NOT NULL,
	"start_s" double precision,
	"end_s" double precision,
	"speaker_label" text,
	"transcript" text,
	"language" text,
	"deepfake_label" text,
	"p_spoofed" double precision,
	"deepfake_embedding" halfvec(768),
	"deepfake_raw_norm" double precision,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "voiceprints" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"recording_id" uuid NOT NULL,
	"speaker_label" text NOT NULL,
	"embedding" vector(192) NOT NULL,
	"raw_norm" double precision NOT NULL,
	"speech_seconds" double precision NOT NULL,
	"utterance_count" integer NOT NULL,
	"mean_p_spoofed" double precision,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "utterances" ADD CONSTRAINT "utterances_recording_id_recordings_id_fk" FOREIGN KEY ("recording_id") REFERENCES "public"."recordings"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "voiceprints" ADD CONSTRAINT "voiceprints_recording_id_recordings_id_fk" FOREIGN KEY ("recording_id") REFERENCES "public"."recordings"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_key_hash_key" ON "api_keys" USING btree ("key_hash");--> statement-breakpoint
CREATE UNIQUE INDEX "recordings_sha256_key" ON "recordings" USING btree ("sha256");--> statement-breakpoint
CREATE UNIQUE INDEX "recordings_upstream_process_key" ON "recordings" USING btree ("upstream_api","upstream_cid","upstream_pid") WHERE "recordings"."upstream_pid" is not null;--> statement-breakpoint
CREATE UNIQUE INDEX "recordings_document_sha256_key" ON "recordings" USING btree ("document_sha256") WHERE "recordings"."upstream_pid" is null;--> statement-breakpoint
CREATE INDEX "recordings_status_idx" ON "recordings" USING btree ("status");--> statement-breakpoint
CREATE INDEX "recordings_account_call_idx" ON "recordings" USING btree ("account_ref","call_at");--> statement-breakpoint
CREATE UNIQUE INDEX "utterances_recording_upstream_key" ON "utterances" USING btree ("recording_id","upstream_id");--> statement-breakpoint
CREATE INDEX "utterances_deepfake_embedding_hnsw" ON "utterances" USING hnsw ("deepfake_embedding" halfvec_cosine_ops);--> statement-breakpoint
CREATE UNIQUE INDEX "voiceprints_recording_speaker_key" ON "voiceprints" USING btree ("recording_id","speaker_label");--> statement-breakpoint
CREATE INDEX "voiceprints_embedding_hnsw" ON "voiceprints" USING hnsw ("embedding" vector_cosine_ops);