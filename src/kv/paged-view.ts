// The paged cache as a paged attention kernel reads it: the Backend's PagedKV, named for the managers.
export type { PagedKV as PagedKVView } from '../backend/backend.js';
