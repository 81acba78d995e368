// The KV map: what the cache holds right now, drawn from one snapshot of the server's feed
// (src/server/kv-snapshot.ts). Each slot's range is drawn to scale, page by page: pages only it maps,
// pages it shares with other slots (stored once), pages the prefix cache keeps, pages an idle slot keeps
// for its next request, and the unmapped reserve, which costs no memory until a sequence grows into it.
const $ = (id) => document.getElementById(id);

/** Most cache-only blocks drawn one by one (a line's worth); past this the rest is a count. */
const MAX_BLOCKS = 40;

const KIND_NAMES = {
  virtual: 'virtual memory (vAttention)',
  paged: 'paged (block tables)',
  static: 'static (whole context per slot)',
};

/** How each manager names a slot's range and its page. */
const RANGE_WORDS = {
  virtual: { range: 'virtual range', page: 'page' },
  paged: { range: 'block table', page: 'block' },
  static: { range: 'preallocated range', page: 'range' },
};

function formatBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${Number.isInteger(n) ? n : n.toFixed(1)} ${units[i]}`;
}

function formatCount(n) {
  return n >= 10_000 ? `${(n / 1000).toFixed(n >= 100_000 ? 0 : 1)}k` : String(n);
}

const plural = (n, word) => `${formatCount(n)} ${word}${n === 1 ? '' : 's'}`;

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function setTile(id, value, note) {
  const tile = $(id);
  tile.querySelector('.tile-value').textContent = value;
  tile.querySelector('.tile-note').textContent = note;
}

/** The cache's kind, format and page geometry. */
function renderFormat(s) {
  const words = RANGE_WORDS[s.kind] ?? RANGE_WORDS.virtual;
  const format = s.kvType.k === s.kvType.v ? `K/V ${s.kvType.k}` : `K ${s.kvType.k} · V ${s.kvType.v}`;
  const page = s.kind === 'static'
    ? `slots backed for ${s.rowsPerPage} tokens up front`
    : `${formatBytes(s.pageBytes)} ${words.page}s of ${s.rowsPerPage} tokens`;
  $('kv-format').replaceChildren(
    el('span', 'chip', KIND_NAMES[s.kind] ?? s.kind),
    el('span', 'chip', format),
    el('span', 'chip', `${formatBytes(s.bytesPerToken)} per token`),
    el('span', 'chip', page),
  );
}

function renderTiles(s) {
  const used = s.totalPages - s.freePages;
  setTile('tile-pool', `${Math.round((100 * used) / Math.max(1, s.totalPages))}%`, `${formatCount(used)} of ${formatCount(s.totalPages)} pages hold KV`);
  if (s.prefixCache) {
    const p = s.prefixCache;
    // Documents blended at any position (CacheBlend) are reuse too, past the prefix.
    const blended = s.blend?.documentsReused ? ` · ${plural(s.blend.documentsReused, 'document')} blended (${formatCount(s.blend.tokensReused)} tokens)` : '';
    setTile('tile-hit', p.queryTokens ? `${Math.round(100 * p.hitRate)}%` : '–',
      (p.queryTokens ? `${formatCount(p.hitTokens)} of ${formatCount(p.queryTokens)} prompt tokens reused` : 'no prompt looked up yet') + blended);
  } else {
    setTile('tile-hit', 'off', 'the server runs without a prefix cache');
  }
  setTile('tile-shared', formatCount(s.sharedPages), 'stored once, mapped into several slots');
  if (s.eviction) {
    setTile('tile-evicted', formatCount(s.eviction.evictedTokens),
      s.eviction.compactions ? `in ${plural(s.eviction.compactions, 'compaction')}, ${plural(s.eviction.freedPages, 'page')} given back` : 'dropped by eviction policies');
  } else {
    setTile('tile-evicted', 'n/a', 'this cache format cannot evict');
  }
}

/** The pool as one bar: what every page is doing now. */
function renderPool(s) {
  const parts = [
    ['running', Math.max(0, s.runningPages), 'in running sequences'],
    ['cached', s.cachedPages, 'in the prefix cache only'],
    ['idle', s.idlePages, 'kept by idle slots'],
    ['free', s.freePages, 'free'],
  ];
  const total = Math.max(1, s.totalPages);
  $('pool-bar').replaceChildren(...parts.filter(([, n]) => n > 0).map(([kind, n, label]) => {
    const seg = el('span', `seg ${kind}`);
    seg.style.width = `${(100 * n) / total}%`;
    seg.title = `${plural(n, 'page')}: ${label}`;
    return seg;
  }));
  $('pool-legend').replaceChildren(
    ...parts.map(([kind, n, label]) => {
      const item = el('span', `key ${kind}`);
      item.dataset.pages = String(n);
      item.append(el('i', `sw ${kind}`), el('b', '', formatCount(n)), ` ${label}`);
      return item;
    }),
  );
}

function runClass(run, state) {
  if (state === 'idle') return 'run idle';
  if (run.shared && run.cached) return 'run shared cached';
  if (run.shared) return 'run shared';
  if (run.cached) return 'run cached';
  return 'run own';
}

function runTitle(run, state, s, words) {
  const what = state === 'idle' ? 'kept by this idle slot for its next request'
    : run.shared && run.cached ? 'shared with another slot and held by the prefix cache'
      : run.shared ? 'shared with another slot: stored once'
        : run.cached ? 'held by the prefix cache: outlives this request'
          : 'this slot\'s own';
  return `${plural(run.pages, words.page)} (${run.pages * s.rowsPerPage} token rows): ${what}`;
}

/** One slot: its range to scale, with its pages by who holds them and the rows written so far. */
function slotRow(slot, s, words) {
  const row = el('div', 'slot');
  row.dataset.slot = String(slot.slot);
  row.dataset.state = slot.state;
  row.append(el('span', 'slot-name', `slot ${slot.slot}`), el('span', `badge ${slot.state}`, slot.state));

  const range = el('div', 'range');
  const rows = s.rangePages * s.rowsPerPage;
  let mapped = 0;
  for (const run of slot.pageRuns ?? []) {
    const span = el('span', runClass(run, slot.state));
    span.style.left = `${(100 * mapped) / s.rangePages}%`;
    span.style.width = `${(100 * run.pages) / s.rangePages}%`;
    span.title = runTitle(run, slot.state, s, words);
    range.append(span);
    mapped += run.pages;
  }
  if (slot.state === 'active') {
    // Rows of mapped pages not written yet: the tail of the last page.
    const from = (100 * slot.tokens) / rows;
    const to = (100 * mapped) / s.rangePages;
    if (to > from) {
      const slack = el('span', 'slack');
      slack.style.left = `${from}%`;
      slack.style.width = `${to - from}%`;
      slack.title = `${(mapped * s.rowsPerPage) - slot.tokens} rows mapped, not written yet`;
      range.append(slack);
    }
    if (slot.evictedRows) {
      // Where the sequence would reach had eviction not dropped rows: past its tokens, up to the range's end.
      const ghost = el('span', 'evicted');
      ghost.style.left = `${from}%`;
      ghost.style.width = `${Math.min(100 - from, (100 * slot.evictedRows) / rows)}%`;
      ghost.title = `${plural(slot.evictedRows, 'token')} evicted: without eviction the sequence would reach this far`;
      range.append(ghost);
    }
    const mark = el('span', 'fill');
    mark.style.left = `${from}%`;
    range.append(mark);
  }
  range.title = `${words.range} of ${rows} token rows: ${mapped} of ${s.rangePages} ${words.page}s mapped`;
  row.append(range);

  // Counts in pool pages, like the pool's: one per (layer, K/V) range behind each drawn page.
  const busy = slot.state !== 'free';
  const cell = (className, value, title) => {
    const c = el('span', `num ${className}`, value ? formatCount(value) : '');
    if (value && title) c.title = title;
    return c;
  };
  row.append(
    cell('tokens', busy && slot.state === 'active' ? slot.tokens : 0, 'tokens written'),
    cell('shared', busy ? slot.sharedPages : 0, `${plural(slot.sharedPages, 'page')} another slot maps too`),
    cell('cached', busy ? slot.cachedPages : 0, `${plural(slot.cachedPages, 'page')} the prefix cache holds too`),
    cell('evicted', busy ? slot.evictedRows : 0, `${plural(slot.evictedRows, 'token')} dropped in ${plural(slot.compactions, 'compaction')}`),
  );
  if (busy && slot.evictedRows) row.lastChild.textContent = `−${formatCount(slot.evictedRows)}`;
  return row;
}

/** Pages only the prefix cache holds, no slot mapping them: one square per block. */
function renderCacheOnly(s) {
  const box = $('cache-only');
  box.hidden = !s.prefixCache;
  if (!s.prefixCache) return;
  if (s.kind === 'static') {
    // Static slots have no pages to share: the cache keeps copies of rows outside the pool.
    box.replaceChildren(el('span', 'slot-name', 'cache'), el('span'),
      el('span', 'cache-note', `${plural(s.prefixCache.entries, 'block')} copied out of the slots, copied back in on a hit`));
    return;
  }
  const blocks = s.ranges ? Math.round(s.cachedPages / s.ranges) : 0;
  const squares = el('span', 'blocks');
  for (let i = 0; i < Math.min(blocks, MAX_BLOCKS); i++) squares.append(el('i', 'block'));
  if (blocks > MAX_BLOCKS) squares.append(el('span', 'muted', `+${formatCount(blocks - MAX_BLOCKS)}`));
  box.replaceChildren(
    el('span', 'slot-name', 'cache'),
    squares,
    el('span', 'cache-note', blocks
      ? `${plural(blocks, 'block')} no slot maps (${plural(s.cachedPages, 'page')}), given back first when the pool runs dry`
      : 'every block the prefix cache holds is mapped by a slot'),
  );
}

export function renderKv(s) {
  const words = RANGE_WORDS[s.kind] ?? RANGE_WORDS.virtual;
  renderFormat(s);
  renderTiles(s);
  renderPool(s);
  const rows = s.rangePages * s.rowsPerPage;
  const padded = rows > s.maxContext ? ` (${s.maxContext} rounded up to whole ${words.page}s)` : '';
  $('slots-scale').textContent = `${words.range}s of ${rows} tokens${padded}, to scale`;
  const cell = s.kind === 'static' ? 'Each slot is backed for the whole context up front' : `A cell is one ${words.page}`;
  $('slots-cell').textContent = `${cell} in each of the ${s.ranges} layer K/V ranges; shared and cached count pages, evicted counts tokens.`;
  $('pool-scale').textContent = `${formatCount(s.totalPages)} physical pages of ${formatBytes(s.pageBytes)}, by what holds them`;
  const bySlot = new Map(s.slots.map((x) => [x.slot, x]));
  const list = $('slots');
  list.style.setProperty('--page', `${100 / s.rangePages}%`);
  const all = [];
  for (let i = 0; i < s.maxSlots; i++) all.push(slotRow(bySlot.get(i) ?? { slot: i, state: 'free', tokens: 0, pages: 0, pageRuns: [] }, s, words));
  list.replaceChildren(...all);
  // Page edges are drawn while a page is wide enough for them to read as edges.
  list.classList.toggle('fine', (list.querySelector('.range')?.clientWidth ?? 0) / s.rangePages < 4);
  renderCacheOnly(s);
}
