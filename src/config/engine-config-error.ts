// The error of an engine option the caller got wrong (a value out of range, an unknown key), as opposed
// to a fault of the model or of the engine itself.

export class EngineConfigError extends RangeError {
  override name = 'EngineConfigError';
}
