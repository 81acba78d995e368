// The pool over time: pages of running sequences, pages only the prefix cache holds and pages idle slots
// keep, stacked, over the last minute, with a page axis and a time axis.
const WINDOW_MS = 60_000;
const LAYERS = [
  ['running', '#2563eb'],
  ['cached', '#0d9488'],
  ['idle', '#9ca3af'],
];

/** Round numbers for an axis from 0 to max: about `count` steps of 1, 2 or 5 times a power of ten. */
function ticks(max, count) {
  if (max <= 0) return [0];
  const raw = max / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw);
  const out = [];
  for (let v = 0; v <= max + 1e-9; v += step) out.push(v);
  return out;
}

export function drawPoolGraph(canvas, samples, totalPages) {
  // Drawn at the screen's pixel density, at whatever size CSS gives the canvas.
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = '11px system-ui, sans-serif';
  const total = Math.max(1, totalPages);
  const yTicks = ticks(total, 3);
  const labelWidth = Math.max(...yTicks.map((v) => ctx.measureText(String(v)).width), ctx.measureText(String(total)).width);
  const left = Math.ceil(labelWidth) + 10;
  const plot = { x: left, y: 8, w: Math.max(10, w - left - 8), h: Math.max(10, h - 8 - 20) };
  const now = samples.length ? samples[samples.length - 1].t : Date.now();
  const x = (t) => plot.x + plot.w * (1 - (now - t) / WINDOW_MS);
  const y = (pages) => plot.y + plot.h * (1 - Math.min(pages, total) / total);

  // Grid and axes.
  ctx.strokeStyle = '#eef0f3';
  ctx.fillStyle = '#6b7280';
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const v of [...yTicks, total]) {
    const yy = Math.round(y(v)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(plot.x, yy);
    ctx.lineTo(plot.x + plot.w, yy);
    ctx.stroke();
  }
  // A tick label too close to the top one would overlap it.
  for (const v of yTicks) if (y(v) - y(total) > 14) ctx.fillText(String(v), plot.x - 5, y(v));
  ctx.fillText(String(total), plot.x - 5, y(total));
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (let s = 0; s <= WINDOW_MS / 1000; s += 10) {
    const xx = Math.round(x(now - s * 1000)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(xx, plot.y);
    ctx.lineTo(xx, plot.y + plot.h);
    ctx.stroke();
    ctx.fillText(s === 0 ? 'now' : `−${s} s`, Math.min(xx, plot.x + plot.w - 10), plot.y + plot.h + 5);
  }

  const shown = samples.filter((p) => now - p.t <= WINDOW_MS);
  if (shown.length >= 2) {
    // Stacked from the bottom: each layer's top is the sum of the layers under it and its own.
    const base = new Array(shown.length).fill(0);
    for (const [key, colour] of LAYERS) {
      const top = shown.map((p, i) => base[i] + (p[key] ?? 0));
      ctx.beginPath();
      shown.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(top[i])) : ctx.moveTo(x(p.t), y(top[i]))));
      for (let i = shown.length - 1; i >= 0; i--) ctx.lineTo(x(shown[i].t), y(base[i]));
      ctx.closePath();
      ctx.fillStyle = colour;
      ctx.globalAlpha = 0.75;
      ctx.fill();
      ctx.globalAlpha = 1;
      top.forEach((v, i) => { base[i] = v; });
    }
  }
  ctx.strokeStyle = '#9ca3af';
  ctx.beginPath();
  ctx.moveTo(plot.x + 0.5, plot.y);
  ctx.lineTo(plot.x + 0.5, plot.y + plot.h + 0.5);
  ctx.lineTo(plot.x + plot.w, plot.y + plot.h + 0.5);
  ctx.stroke();
}
