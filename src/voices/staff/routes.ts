import { createRoute, z } from '@hono/zod-openapi';
import { actorOf, requireScope } from '../../http/auth.ts';
import { problemResponses } from '../../http/problems.ts';
import { createRouter } from '../../http/router.ts';
import { identityViewSchema } from '../identities/routes.ts';
import { confirmStaff, rejectStaff } from './decisions.ts';

const idParams = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' }, format: 'uuid' }) });
const noteBody = z
  .object({ note: z.string().trim().min(1).max(2000).optional() })
  .strict()
  .openapi('StaffDecision');
const decidedSchema = identityViewSchema
  .extend({ dismissedAlerts: z.number().int().openapi({ description: 'open voice_reuse alerts dismissed' }) })
  .openapi('StaffDecided');
export type StaffDecidedResponse = z.infer<typeof decidedSchema>;

const json = <T extends z.ZodType>(schema: T) => ({ 'application/json': { schema } });
const writeScope = { security: [{ bearerAuth: [] }], middleware: requireScope('write'), tags: ['identities'] };

const decisionRoute = (decision: 'confirm' | 'reject') =>
  createRoute({
    ...writeScope,
    method: 'post',
    path: `/v1/identities/{id}/${decision}-staff`,
    operationId: decision === 'confirm' ? 'confirmStaff' : 'rejectStaff',
    summary: decision === 'confirm' ? 'Confirm a proposed voice as staff' : 'Reject a staff proposal (for good)',
    description:
      (decision === 'confirm'
        ? 'The identity becomes staff: out of voice-reuse alerts (its open ones are dismissed with the note) and, ' +
          'unless includeStaff, out of voice search. '
        : 'The identity stays as it is and is never proposed again. ') +
      '409 when it is not a pending proposal (GET /v1/identities?proposed=staff).',
    request: { params: idParams, body: { required: false, content: json(noteBody) } },
    responses: {
      200: { description: 'The identity after the decision', content: json(decidedSchema) },
      ...problemResponses('validation', 'unauthorized', 'forbidden', 'not-found', 'conflict'),
    },
  });
export const confirmStaffRoute = decisionRoute('confirm');
export const rejectStaffRoute = decisionRoute('reject');

export function staffRoutes() {
  return createRouter()
    .openapi(confirmStaffRoute, async (c) => {
      const { id } = c.req.valid('param');
      const view = await confirmStaff(c.var.deps.db, id, c.req.valid('json'), actorOf(c));
      c.var.log.info({ identityId: id, dismissedAlerts: view.dismissedAlerts }, 'staff confirmed');
      return c.json(view, 200);
    })
    .openapi(rejectStaffRoute, async (c) => {
      const { id } = c.req.valid('param');
      const view = await rejectStaff(c.var.deps.db, id, c.req.valid('json'), actorOf(c));
      c.var.log.info({ identityId: id }, 'staff proposal rejected');
      return c.json(view, 200);
    });
}
