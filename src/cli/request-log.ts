// `serve --log`: one line per finished request on stdout (fastify's own logger writes two JSON lines).
import type { FastifyInstance } from 'fastify';

export function logRequests(app: FastifyInstance): void {
  app.addHook('onResponse', async (req, reply) => {
    const ms = reply.elapsedTime.toFixed(1);
    process.stdout.write(`${new Date().toISOString()} ${req.ip} ${req.method} ${req.url} ${reply.statusCode} ${ms}ms\n`);
  });
}
