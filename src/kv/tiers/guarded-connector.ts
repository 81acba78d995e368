// ioredis listens for its connection socket's first 'error' only. A TLS socket can emit a second one
// (a handshake that fails verification, then the peer's alert), which would then have no listener and
// end the whole process: a misconfigured or failing Redis must only make requests compute. The tier's
// connections therefore keep one listener for the socket's whole life; ioredis still handles the first.
import { StandaloneConnector } from 'ioredis/built/connectors/index.js';

export class GuardedConnector extends StandaloneConnector {
  // ioredis constructs connectors with its own options object, typed as unknown by its Connector option.
  constructor(options: unknown) {
    super(options as ConstructorParameters<typeof StandaloneConnector>[0]);
  }

  override async connect(...args: Parameters<StandaloneConnector['connect']>): ReturnType<StandaloneConnector['connect']> {
    const stream = await super.connect(...args);
    stream.on('error', () => {});
    return stream;
  }
}
