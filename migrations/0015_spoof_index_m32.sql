-- The spoof index becomes a denser graph, m 32 and ef_construction 128 (pgvector's defaults are 16
-- and 64): at 1,000,000 spoofed utterances the defaults reach recall@10 0.935 only at ef_search 800
-- (6.3 ms), this graph 0.965 at ef_search 100 (4.0 ms), bench/spoofs-knn.ts, docs/spoofs.md.
-- The new graph is built beside the old one and swapped in, so searches keep the old index while
-- it builds; new spoofed utterances wait for the build (CREATE INDEX holds a SHARE lock). On a large
-- table give the session room first: 1,000,000 rows took 796 s on 2 cores with
-- maintenance_work_mem = 2GB; with less the graph no longer fits in memory and builds far slower.
CREATE INDEX "spoofed_utterances_embedding_hnsw_m32" ON "spoofed_utterances" USING hnsw ("embedding" halfvec_cosine_ops) WITH (m=32,ef_construction=128);--> statement-breakpoint
DROP INDEX "spoofed_utterances_embedding_hnsw";--> statement-breakpoint
ALTER INDEX "spoofed_utterances_embedding_hnsw_m32" RENAME TO "spoofed_utterances_embedding_hnsw";
