// The flags of blended RAG documents (serve): where completion prompts are cut into documents, and the
// defaults of the selective recompute.
import type { EngineOptions } from '../engine/engine-types.js';
import { intOption, numberOption } from './cli-error.js';
import { flagHelp, type FlagHelp } from './flag-help.js';
import { helpDefault } from './engine-defaults.js';

export const BLEND_OPTIONS = {
  'blend-separator': { type: 'string' },
  'blend-recompute': { type: 'string' },
  'blend-layer': { type: 'string' },
  'blend-stages': { type: 'string' },
  'blend-context': { type: 'string' },
} as const;

const BLEND_FLAGS: readonly FlagHelp[] = [
  ['--blend-separator TEXT', 'where a completion prompt that sets "blend" is cut into documents', `(default ${JSON.stringify(helpDefault('blendSeparator'))}): leading text # # document # # ... # # question`],
  ['--blend-recompute R', 'share (0..1) of a blended document\'s tokens recomputed when a request', `names none (default ${helpDefault('blendRecompute')})`],
  ['--blend-layer N', `the layer whose key deviation picks the tokens recomputed (default ${helpDefault('blendLayer')})`],
  ['--blend-stages N', `gradual filtering: narrow the selection over N layers from there (default ${helpDefault('blendStages')})`],
  ['--blend-context WHAT', "what a document's stored KV is computed after: prefix (the prompt before its", `first document) or bos (the first token only); default ${helpDefault('blendContext')}`],
];

export function blendHelp(column: number): string {
  return flagHelp(BLEND_FLAGS, column);
}

type BlendFlags = { 'blend-separator'?: string; 'blend-recompute'?: string; 'blend-layer'?: string; 'blend-stages'?: string; 'blend-context'?: string };

/** The engine's blend options from the flags (the engine checks ranges and names). */
export function blendOptions(v: BlendFlags): Pick<EngineOptions, 'blendSeparator' | 'blendRecompute' | 'blendLayer' | 'blendStages' | 'blendContext'> {
  return {
    ...(v['blend-separator'] !== undefined ? { blendSeparator: v['blend-separator'] } : {}),
    ...(v['blend-recompute'] !== undefined ? { blendRecompute: numberOption('blend-recompute', v['blend-recompute']) } : {}),
    ...(v['blend-layer'] !== undefined ? { blendLayer: intOption('blend-layer', v['blend-layer'], 0, 0) } : {}),
    ...(v['blend-stages'] !== undefined ? { blendStages: intOption('blend-stages', v['blend-stages'], 1, 1) } : {}),
    ...(v['blend-context'] !== undefined ? { blendContext: v['blend-context'] as EngineOptions['blendContext'] } : {}),
  };
}
