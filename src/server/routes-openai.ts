// The OpenAI-compatible routes: /v1/models, /v1/completions and /v1/chat/completions.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodType } from 'zod';
import type { Admission } from './admission.js';
import { invalidField, modelNotFound } from './errors.js';
import { serveGeneration, type GenerationContext, type GenerationJob } from './generation.js';
import type { ServingEngine } from './engine-like.js';
import type { Endpoint } from './openai-format.js';
import { refuseUnimplemented } from './refused-fields.js';
import { toolCallPlan } from './tool-calls.js';
import {
  chatInput, chatParams, chatRequest, completionInput, completionParams, completionRequest, parseBody, type ChatRequest, type CompletionRequest,
} from './schemas.js';

export interface OpenAIRoutesOptions extends GenerationContext {
  modelName: string;
  admission: Admission;
  /** The Unix time the model was loaded, reported as the model's `created`. */
  created: number;
  maxContext: number;
}

export function registerOpenAIRoutes(app: FastifyInstance, o: OpenAIRoutesOptions): void {
  const model = () => ({ id: o.modelName, object: 'model', created: o.created, owned_by: 'vserve', max_model_len: o.maxContext });

  app.get('/v1/models', async () => ({ object: 'list', data: [model()] }));

  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req) => {
    if (req.params.id !== o.modelName) throw modelNotFound(req.params.id, o.modelName);
    return model();
  });

  const checkModel = (name: string | null | undefined) => {
    // Leaving `model` out is allowed: there is only one.
    if (name != null && name !== o.modelName) throw modelNotFound(name, o.modelName);
  };

  /** Validates, checks the model, holds an admission place for the whole response, and serves it. */
  const generation =
    <B extends RequestCommon>(endpoint: Endpoint, schema: ZodType<B>, job: (body: B) => Pick<GenerationJob, 'input' | 'params' | 'fieldNames' | 'toolCalls'>) =>
    async (req: FastifyRequest, reply: FastifyReply) => {
      refuseUnimplemented(endpoint, req.body);
      const body = parseBody(schema, req.body);
      checkModel(body.model);
      o.admission.enter();
      try {
        const includeUsage = body.stream_options?.include_usage === true;
        await serveGeneration(o, { endpoint, ...job(body), stream: body.stream === true, includeUsage, model: o.modelName }, reply);
      } finally {
        o.admission.leave();
      }
      return reply;
    };

  app.post('/v1/completions', generation('completion', completionRequest, (b) => ({ input: completionInput(b), params: completionParams(b) })));
  app.post('/v1/chat/completions', generation('chat', chatRequest, (b) => ({
    input: chatInput(b),
    ...chatWithTools(b, o.engine),
    fieldNames: { prompt: 'messages', ...(b.max_completion_tokens != null ? { max_tokens: 'max_completion_tokens' } : {}) },
  })));
}

/**
 * A chat request's parameters; with tools, the tools for the template to render, the constraint on
 * the calls, and how the reply is read.
 */
function chatWithTools(b: ChatRequest, engine: ServingEngine): Pick<GenerationJob, 'params' | 'toolCalls'> {
  const params = chatParams(b);
  const plan = toolCallPlan(b.tools, b.tool_choice, engine.info.toolCalls);
  if (!plan) return { params };
  if (params.responseFormat) throw invalidField('response_format', 'response_format cannot be combined with tools (each call is constrained JSON already)');
  if (plan.mode !== 'forced' && b.parallel_tool_calls === false) {
    throw invalidField('parallel_tool_calls', 'parallel_tool_calls false is not supported with tool_choice "auto": the model may write several calls; send "required" or name a function for exactly one', 'unsupported_parameter');
  }
  return { params: { ...params, ...plan.params, tools: b.tools! }, toolCalls: plan.mode };
}

/** The fields both request bodies share that routing needs. */
type RequestCommon = Pick<CompletionRequest, 'model' | 'stream' | 'stream_options'>;
