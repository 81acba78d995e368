// KV-cache managers: virtual (vAttention), paged (block tables) and static, behind one interface.
export type { GrowResult, KeepPositions, KVCacheManager, KVManagerKind, SeqLens } from './manager.js';
export type { KVShape, ResolvedKVShape } from './shape.js';
export type { KVStats, SlotState, SlotStats } from './stats.js';
export type { PagedKVView } from './paged-view.js';
export { KVError, isKVError, type KVErrorCode } from './errors.js';
export { defaultPageSize, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, maxMapCount, MIN_PAGE_SIZE } from './page-size.js';
export { VirtualKVManager, type VirtualKVOptions } from './virtual-kv.js';
export { StaticKVManager, type StaticKVOptions } from './static-kv.js';
export { PagedKVManager, type PagedKVOptions } from './paged-kv.js';
export { BlockAllocator } from './block-allocator.js';
export { measureMappingCost, type MappingCost, type MappingCostOptions } from './mapping-cost.js';
