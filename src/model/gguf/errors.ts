/** A GGUF file that cannot be used, with a message that names the problem. */
export class GGUFError extends Error {
  constructor(message: string, readonly path?: string) {
    super(path ? `${path}: ${message}` : message);
    this.name = 'GGUFError';
  }
}
