import { Body, Controller, Get, Headers, Inject, Param, Post, Req, Res } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import type { FastifyReply } from 'fastify';
import type { AuthenticatedRequest } from '../platform/auth/api-key.guard.js';
import { RequireScope } from '../platform/auth/auth.decorators.js';
import { BodyLimit, SHARE_BODY_LIMIT } from '../platform/http/body-limits.js';
import { type FieldProblem, InvalidRequestException } from '../platform/http/problem.js';
import { checkDto } from '../platform/http/validation.js';
import { validateWorkplacePost } from '../workplace/validate-workplace-post.js';
import { GetShareQuery } from './get-share/get-share.query.js';
import { RequestShareCommand } from './request-share/request-share.command.js';
import { RequestShareDto } from './request-share/request-share.dto.js';
import type { ShareDocument } from './share-document.js';

/** Deeper JSON than this is no Workplace post; refusing it keeps recursive walks bounded. */
const MAX_BODY_DEPTH = 32;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

@Controller('v1/shares')
export class SharesController {
  constructor(
    @Inject(CommandBus) private readonly commands: CommandBus,
    @Inject(QueryBus) private readonly queries: QueryBus,
  ) {}

  @Post()
  @RequireScope('shares:write')
  @BodyLimit(SHARE_BODY_LIMIT)
  async request(
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Body() body: unknown,
    @Req() request: AuthenticatedRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ShareDocument> {
    const problems: FieldProblem[] = [];
    if (idempotencyKey === undefined || !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      problems.push({ path: 'Idempotency-Key', message: 'header Idempotency-Key is required: 1 to 255 visible ASCII characters' });
    }
    if (jsonDepth(body) > MAX_BODY_DEPTH) {
      throw new InvalidRequestException([...problems, { path: '(body)', message: `must not nest deeper than ${MAX_BODY_DEPTH} levels` }]);
    }
    const post = (body as { post?: unknown } | null)?.post;
    // The post is checked on its own below, where its unknown fields are allowed.
    const checked = await checkDto(RequestShareDto, isPlainObject(post) ? { ...(body as object), post: {} } : body);
    problems.push(...checked.problems);
    if (isPlainObject(post)) problems.push(...(await validateWorkplacePost(post, 'post')));
    const dto = checked.instance;
    if (problems.length > 0 || !dto) throw new InvalidRequestException(problems);

    const result = await this.commands.execute(
      new RequestShareCommand(request.apiKey.id, idempotencyKey!, body as Record<string, unknown>, dto),
    );
    void reply.status(result.replayed ? 200 : 201);
    if (result.replayed) void reply.header('idempotent-replayed', 'true');
    return result.document;
  }

  @Get(':id')
  @RequireScope('shares:read')
  get(@Param('id') id: string): Promise<ShareDocument> {
    return this.queries.execute(new GetShareQuery(id));
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function jsonDepth(value: unknown, depth = 0): number {
  if (depth > MAX_BODY_DEPTH || value === null || typeof value !== 'object') return depth;
  let deepest = depth + 1;
  for (const child of Object.values(value)) deepest = Math.max(deepest, jsonDepth(child, depth + 1));
  return deepest;
}
