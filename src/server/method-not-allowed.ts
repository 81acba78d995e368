// A known path asked for with the wrong method is a 405 with an Allow header, not a 404: the routes
// are recorded as they are added, and a path that matches one under other methods is told which.
import type { FastifyInstance } from 'fastify';

export class RouteMethods {
  private readonly routes: { pattern: RegExp; methods: Set<string> }[] = [];

  /** Records every route added to `app` from now on (call before registering routes). */
  constructor(app: FastifyInstance) {
    app.addHook('onRoute', (route) => {
      // ':param' segments match any one segment; '*' anything.
      const source = route.url.split('/').map((seg) => (seg.startsWith(':') ? '[^/]+' : seg === '*' ? '.*' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/');
      const pattern = new RegExp(`^${source}$`);
      let entry = this.routes.find((r) => r.pattern.source === pattern.source);
      if (!entry) this.routes.push((entry = { pattern, methods: new Set() }));
      for (const m of [route.method].flat()) entry.methods.add(m);
    });
  }

  /** The methods `url`'s path is served with, or an empty list when no route has that path. */
  allowed(url: string): string[] {
    const path = url.split('?')[0]!;
    const methods = new Set<string>();
    for (const r of this.routes) if (r.pattern.test(path)) for (const m of r.methods) methods.add(m);
    return [...methods].sort();
  }
}
