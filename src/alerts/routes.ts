import { createRoute, z } from '@hono/zod-openapi';
import { alertStatuses, alertTypes } from '../db/schema.ts';
import { actorOf, requireScope } from '../http/auth.ts';
import { cursorParam, limitParam } from '../http/paging.ts';
import { problemResponses } from '../http/problems.ts';
import { createRouter } from '../http/router.ts';
import { decodeListCursor } from '../recordings/queries.ts';
import { acknowledgeAlert, dismissAlert, viewAlert, viewAlertList } from './alerts.ts';

const evidenceSchema = z
  .object({
    voiceprintId: z.uuid().optional(),
    utteranceId: z.uuid().optional(),
    recordingId: z.uuid(),
    similarity: z.number(),
    score: z.number().optional(),
    matchedVoiceprintId: z.uuid().optional().openapi({ description: 'the watchlisted voiceprint a hit matched' }),
  })
  .openapi('AlertEvidence');

export const alertSchema = z
  .object({
    id: z.uuid(),
    type: z.enum(alertTypes),
    status: z.enum(alertStatuses),
    createdAt: z.string(),
    updatedAt: z.string().openapi({ description: 'when evidence or status last changed' }),
    statusChangedAt: z.string().nullable(),
    identityId: z.uuid().nullable().openapi({ description: 'the identity it is about (watchlist_hit, voice_reuse)' }),
    clusterId: z.uuid().nullable().openapi({ description: 'the spoof cluster it is about' }),
    recordingIds: z.array(z.uuid()),
    accountRefs: z.array(z.string()),
    evidence: z.array(evidenceSchema),
  })
  .openapi('Alert');
export type AlertResponse = z.infer<typeof alertSchema>;

const historySchema = z
  .object({
    id: z.uuid(),
    action: z.enum(['raised', 'evidence_added', 'acknowledged', 'dismissed']),
    status: z.enum(alertStatuses).openapi({ description: 'the status after the change' }),
    note: z.string().nullable(),
    evidenceAdded: z.number().int(),
    source: z.enum(['api', 'cli', 'system']),
    keyId: z.uuid().nullable().openapi({ description: 'the API key that made the change' }),
    requestId: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi('AlertHistoryEntry');

export const alertDetailSchema = alertSchema.extend({ history: z.array(historySchema) }).openapi('AlertDetail');
export type AlertDetailResponse = z.infer<typeof alertDetailSchema>;

const alertPageSchema = z
  .object({ items: z.array(alertSchema), nextCursor: z.string().nullable() })
  .openapi('AlertPage');
export type AlertPageResponse = z.infer<typeof alertPageSchema>;

const instant = (what: string) =>
  z.iso
    .datetime({ offset: true, error: 'must be an ISO 8601 date-time, e.g. 2026-01-31T00:00:00Z' })
    .optional()
    .openapi({ description: `${what} (on createdAt, inclusive)` });

const listQuery = z.object({
  limit: limitParam,
  cursor: cursorParam(decodeListCursor),
  type: z.enum(alertTypes).optional(),
  status: z.enum(alertStatuses).optional(),
  accountRef: z.string().min(1, 'must not be empty').optional(),
  clusterId: z.uuid('must be a uuid').optional(),
  identityId: z.uuid('must be a uuid').optional(),
  recordingId: z.uuid('must be a uuid').optional(),
  from: instant('alerts raised at or after'),
  to: instant('alerts raised at or before'),
});

const idParams = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' }, format: 'uuid' }) });
export const alertNoteBodySchema = z
  .object({ note: z.string().trim().min(1).max(2000).optional() })
  .strict()
  .openapi('AlertNote');

const json = <T extends z.ZodType>(schema: T) => ({ 'application/json': { schema } });
const readScope = { security: [{ bearerAuth: [] }], middleware: requireScope('read'), tags: ['alerts'] };
const writeScope = { security: [{ bearerAuth: [] }], middleware: requireScope('write'), tags: ['alerts'] };

export const listAlertsRoute = createRoute({
  ...readScope,
  method: 'get',
  path: '/v1/alerts',
  operationId: 'listAlerts',
  summary: 'List alerts, newest first',
  request: { query: listQuery },
  responses: {
    200: { description: 'One page; nextCursor is null on the last', content: json(alertPageSchema) },
    ...problemResponses('validation', 'unauthorized', 'forbidden'),
  },
});

export const getAlertRoute = createRoute({
  ...readScope,
  method: 'get',
  path: '/v1/alerts/{id}',
  operationId: 'getAlert',
  summary: 'One alert with its history',
  request: { params: idParams },
  responses: {
    200: { description: 'The alert', content: json(alertDetailSchema) },
    ...problemResponses('unauthorized', 'forbidden', 'not-found'),
  },
});

const statusRoute = (action: 'ack' | 'dismiss') =>
  createRoute({
    ...writeScope,
    method: 'post',
    path: `/v1/alerts/{id}/${action}`,
    operationId: action === 'ack' ? 'acknowledgeAlert' : 'dismissAlert',
    summary: action === 'ack' ? 'Acknowledge an alert, with a note' : 'Dismiss an alert, with a note',
    description:
      action === 'ack'
        ? 'Open → acknowledged; an acknowledged alert is answered unchanged; a dismissed one is closed (409).'
        : 'Open or acknowledged → dismissed; a dismissed alert is answered unchanged.',
    request: { params: idParams, body: { required: false, content: json(alertNoteBodySchema) } },
    responses: {
      200: { description: 'The alert after the change, with its history', content: json(alertDetailSchema) },
      ...problemResponses('validation', 'unauthorized', 'forbidden', 'not-found', 'conflict'),
    },
  });
export const acknowledgeAlertRoute = statusRoute('ack');
export const dismissAlertRoute = statusRoute('dismiss');

export function alertRoutes() {
  return createRouter()
    .openapi(listAlertsRoute, async (c) => {
      const { cursor, from, to, ...filters } = c.req.valid('query');
      const page = await viewAlertList(c.var.deps.db, actorOf(c), {
        ...filters,
        ...(from ? { from: new Date(from) } : {}),
        ...(to ? { to: new Date(to) } : {}),
        after: cursor,
      });
      return c.json(page, 200);
    })
    .openapi(getAlertRoute, async (c) =>
      c.json(await viewAlert(c.var.deps.db, actorOf(c), c.req.valid('param').id), 200),
    )
    .openapi(acknowledgeAlertRoute, async (c) => {
      const { id } = c.req.valid('param');
      // no body (no content-type) validates as {}: the note is optional
      const alert = await acknowledgeAlert(c.var.deps.db, id, c.req.valid('json'), actorOf(c));
      c.var.log.info({ alertId: id }, 'alert acknowledged');
      return c.json(alert, 200);
    })
    .openapi(dismissAlertRoute, async (c) => {
      const { id } = c.req.valid('param');
      const alert = await dismissAlert(c.var.deps.db, id, c.req.valid('json'), actorOf(c));
      c.var.log.info({ alertId: id }, 'alert dismissed');
      return c.json(alert, 200);
    });
}
