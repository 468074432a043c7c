import { z } from 'zod';

/**
 * The call manifest: what a synthetic call "contains" (who speaks when, which utterances are
 * spoofed by which campaign). demo-data writes it into each WAV file; the stand-in reads it
 * from the first bytes of an upload and answers as if it had heard those voices.
 */
export const speakerRoles = ['caller', 'agent', 'fraudster'] as const;
export type SpeakerRole = (typeof speakerRoles)[number];

const seconds = z.number().finite().min(0);

export const manifestSpeakerSchema = z.object({
  /** The diarization label the stand-in answers with, e.g. `SPEAKER_00`. */
  label: z.string().min(1),
  /** Whose voice this is (`cust-0007`, `agent-002`, `fraud-001`, `audio-<hash>`). */
  speakerId: z.string().min(1),
  role: z.enum(speakerRoles),
  /** A bad line or a loud room: the hard cases for re-identification. */
  noisy: z.boolean().optional(),
  /** A voice clone: this speaker sounds like `cloneOf` (the victim's speakerId). */
  cloneOf: z.string().min(1).optional(),
});
export type ManifestSpeaker = z.infer<typeof manifestSpeakerSchema>;

export const manifestUtteranceSchema = z.object({
  id: z.string().min(1),
  start: seconds,
  end: seconds,
  speakerLabel: z.string().min(1),
  /** The synthetic-voice family that made this utterance; null for genuine speech. */
  spoofFamily: z.string().min(1).nullable(),
});
export type ManifestUtterance = z.infer<typeof manifestUtteranceSchema>;

export const callManifestSchema = z
  .object({
    version: z.literal(1),
    callId: z.string().min(1),
    accountRef: z.string().min(1).nullable(),
    channel: z.string().min(1).nullable(),
    callAt: z.string().min(1).nullable(),
    durationS: seconds,
    speakers: z.array(manifestSpeakerSchema).min(1),
    utterances: z.array(manifestUtteranceSchema),
  })
  .superRefine((manifest, ctx) => {
    const labels = new Set(manifest.speakers.map((s) => s.label));
    manifest.utterances.forEach((u, index) => {
      if (!labels.has(u.speakerLabel)) {
        ctx.addIssue({
          code: 'custom',
          path: ['utterances', index, 'speakerLabel'],
          message: `no speaker has the label ${JSON.stringify(u.speakerLabel)}`,
        });
      }
      if (u.end < u.start) {
        ctx.addIssue({ code: 'custom', path: ['utterances', index, 'end'], message: 'end is before start' });
      }
    });
  });
export type CallManifest = z.infer<typeof callManifestSchema>;

/**
 * The manifest in a JSON value, or null when it is not a valid manifest (a foreign chunk that
 * happens to share our id must not break an upload: the audio is then treated as unknown).
 * @example const manifest = parseManifest(JSON.parse(text));
 */
export function parseManifest(value: unknown): CallManifest | null {
  const parsed = callManifestSchema.safeParse(value);
  return parsed.success ? parsed.data : null;
}

/**
 * The diarization label of the n-th speaker of a call, as the upstream writes them.
 * @example speakerLabel(1); // 'SPEAKER_01'
 */
export function speakerLabel(index: number): string {
  return `SPEAKER_${String(index).padStart(2, '0')}`;
}
