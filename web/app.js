// vserve playground: a streaming chat over /v1/chat/completions and a live map of the KV cache fed by
// the server's SSE feed (/api/kv/stream; kv-map.js and pool-graph.js draw it). Plain browser JavaScript,
// no build step.
import { renderKv } from './kv-map.js';
import { drawPoolGraph } from './pool-graph.js';

const $ = (id) => document.getElementById(id);
const state = { model: undefined, history: [], messages: [], busy: false, controller: undefined, kvUpdates: 0, lastKv: undefined };

async function init() {
  try {
    const info = await (await fetch('/api/info')).json();
    state.model = info.model;
    $('model').textContent = `${info.model} · ${info.arch} · ${info.kvManager} KV · ${info.scheduler} scheduler · ${info.maxSeqs} slot${info.maxSeqs === 1 ? '' : 's'} × ${info.maxContext} tokens`;
    $('key-label').hidden = !info.authRequired;
  } catch {
    $('model').textContent = 'server unreachable';
  }
  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    void send();
  });
  $('prompt').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      void send();
    }
  });
  $('stop').addEventListener('click', () => state.controller?.abort());
  $('new-chat').addEventListener('click', newChat);
  $('api-key').addEventListener('change', watchKv);
  watchKv();
}

function addMessage(role, text) {
  const div = document.createElement('div');
  div.className = `msg ${role}`;
  div.textContent = text;
  $('messages').append(div);
  $('messages').scrollTop = $('messages').scrollHeight;
  return div;
}

/** Yields the JSON payloads of an SSE response body until `data: [DONE]`. */
async function* sseEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of frame.split('\n')) {
        if (!line.startsWith('data: ')) continue;
        const data = line.slice(6);
        if (data === '[DONE]') return;
        yield JSON.parse(data);
      }
    }
  }
}

/** A problem to show in the chat as it is: already a sentence meant for the user. */
class ChatProblem extends Error {}

/** Server messages start in lower case and end without a stop; the chat shows them as sentences. */
function sentence(text) {
  const t = String(text).trim();
  if (!t) return 'Something went wrong.';
  return t[0].toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.');
}

/** The `error` object of a refused request, or a stand-in naming the status when the body is not JSON. */
async function errorOf(res) {
  try {
    const error = (await res.json()).error;
    if (typeof error?.message === 'string') return error;
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    // Not JSON (a proxy's page, a cut connection): the status is all there is to tell.
  }
  return { message: `the server answered ${res.status}${res.statusText ? ` (${res.statusText})` : ''}` };
}

/**
 * Drops the oldest exchange (a user turn and the answers after it), never the system prompt nor the
 * turn being asked; false when nothing is left to drop.
 */
function dropOldestTurn(messages) {
  const start = messages.findIndex((m) => m.role !== 'system');
  if (start < 0 || start >= messages.length - 1) return false;
  let end = start + 1;
  while (end < messages.length - 1 && messages[end].role !== 'user') end++;
  messages.splice(start, end - start);
  return true;
}

function setBusy(busy) {
  state.busy = busy;
  $('send').disabled = busy;
  $('stop').disabled = !busy;
}

function newChat() {
  state.controller?.abort();
  state.messages = [];
  $('messages').replaceChildren();
  $('speed').textContent = '';
  $('prompt').focus();
}

async function send() {
  const text = $('prompt').value.trim();
  if (!text || state.busy) return;
  setBusy(true);
  const controller = new AbortController();
  state.controller = controller;
  $('prompt').value = '';
  // A new chat started while this one was answering replaces the list: this turn then belongs to no one.
  const messages = state.messages;
  messages.push({ role: 'user', content: text });
  addMessage('user', text);
  const out = addMessage('assistant', '');
  const started = performance.now();
  let firstAt;
  let reply = '';
  let streaming = false;
  try {
    const headers = { 'content-type': 'application/json' };
    const key = $('api-key').value;
    if (key) headers.authorization = `Bearer ${key}`;
    // The server keeps a long conversation within its context by evicting the oldest tokens but the
    // first few (kv_policy "sinks", a context shift). A server whose cache cannot evict refuses the field:
    // then the oldest exchanges are dropped here instead, until the conversation fits.
    let evict = state.evict ?? true;
    const ask = async () => {
      try {
        return await fetch('/v1/chat/completions', {
          method: 'POST',
          headers,
          signal: controller.signal,
          body: JSON.stringify({
            model: state.model,
            messages,
            stream: true,
            stream_options: { include_usage: true },
            max_tokens: Number($('max-tokens').value) || 128,
            temperature: Number($('temperature').value),
            ...(evict ? { kv_policy: 'sinks' } : {}),
          }),
        });
      } catch (e) {
        if (e.name === 'AbortError') throw e;
        throw new ChatProblem('The server could not be reached.');
      }
    };
    let res = await ask();
    let dropped = 0;
    while (res.status === 400) {
      const error = await errorOf(res);
      if (evict && error.param === 'kv_policy') state.evict = evict = false;
      else if (error.code === 'context_length_exceeded' && dropOldestTurn(messages)) dropped++;
      else throw new ChatProblem(sentence(error.message));
      res = await ask();
    }
    if (!res.ok) throw new ChatProblem(sentence((await errorOf(res)).message));
    if (dropped > 0) {
      const note = document.createElement('div');
      note.className = 'note';
      note.textContent = `The conversation no longer fits the model's context: the ${dropped === 1 ? 'oldest turn was' : `${dropped} oldest turns were`} left out.`;
      out.before(note);
    }
    streaming = true;
    for await (const chunk of sseEvents(res.body)) {
      if (chunk.error) throw new ChatProblem(sentence(chunk.error.message));
      let delta = chunk.choices[0]?.delta?.content;
      // Tokenizers often begin a word with its space; an answer should not begin with one.
      if (delta && !reply) delta = delta.trimStart();
      if (delta) {
        firstAt ??= performance.now();
        reply += delta;
        out.textContent = reply;
        $('messages').scrollTop = $('messages').scrollHeight;
      }
      if (chunk.usage) {
        const secs = (performance.now() - (firstAt ?? started)) / 1000;
        $('speed').textContent = `${chunk.usage.prompt_tokens} prompt + ${chunk.usage.completion_tokens} generated tokens · ` +
          `first token ${Math.round((firstAt ?? started) - started)} ms · ${(chunk.usage.completion_tokens / Math.max(secs, 1e-3)).toFixed(0)} tok/s` +
          (chunk.usage.kv_eviction?.evicted_tokens ? ` · ${chunk.usage.kv_eviction.evicted_tokens} oldest tokens evicted to fit the context` : '');
      }
    }
    messages.push({ role: 'assistant', content: reply });
  } catch (e) {
    if (e.name === 'AbortError' || (streaming && reply)) {
      // Stopped, or cut off part way: what came stays, marked, and the conversation goes on from it.
      out.classList.add(e.name === 'AbortError' ? 'stopped' : 'cut');
      messages.push({ role: 'assistant', content: reply });
      if (e.name !== 'AbortError') addMessage('error', e instanceof ChatProblem ? e.message : 'The connection to the server was lost before the answer was complete.');
    } else {
      out.remove();
      messages.pop();
      // The turn was not taken: give its text back to send again.
      if (!$('prompt').value) $('prompt').value = text;
      addMessage('error', e instanceof ChatProblem ? e.message : streaming ? 'The connection to the server was lost before the answer began.' : 'Something went wrong in this page; see the browser console.');
      if (!(e instanceof ChatProblem)) console.error(e);
    }
  } finally {
    if (state.controller === controller) state.controller = undefined;
    setBusy(false);
  }
}

// EventSource cannot send headers, so the feed takes the API key as ?api_key=; a new key reconnects.
let feed;
function watchKv() {
  feed?.close();
  const key = $('api-key').value;
  feed = new EventSource(key ? `/api/kv/stream?api_key=${encodeURIComponent(key)}` : '/api/kv/stream');
  feed.addEventListener('history', (e) => {
    state.history = JSON.parse(e.data).samples;
  });
  feed.addEventListener('kv', (e) => {
    const snap = JSON.parse(e.data);
    state.history.push(poolSample(snap));
    if (state.history.length > 600) state.history.shift();
    state.kvUpdates++;
    document.body.dataset.kvUpdates = String(state.kvUpdates);
    $('kv-live').classList.add('on');
    state.lastKv = snap;
    renderKv(snap);
    drawPoolGraph($('pool-graph'), state.history, snap.totalPages);
  });
  feed.addEventListener('error', () => $('kv-live').classList.remove('on'));
}

/** The pool's pages by what holds them, as the server's history has them (src/server/kv-feed.ts). */
function poolSample(s) {
  return { t: s.t, running: Math.max(0, s.runningPages), cached: s.cachedPages, idle: s.idlePages, free: s.freePages };
}

// A resized window redraws the graph at its new size.
window.addEventListener('resize', () => {
  if (state.lastKv) drawPoolGraph($('pool-graph'), state.history, state.lastKv.totalPages);
});

void init();
