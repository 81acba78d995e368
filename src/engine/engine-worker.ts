// The worker thread that owns the model, the KV cache and the step loop. One step runs per turn of this
// thread's event loop, so submissions and aborts that arrive meanwhile are seen before the next step.
import { parentPort, workerData } from 'node:worker_threads';
import { BLOCK_LAYOUT_VERSION } from '../kv/block-hash.js';
import { ChatTemplate } from '../model/chat-template.js';
import { loadModel } from '../model/load.js';
import { BlockEventBatch, type BlockSnapshot } from './block-events.js';
import type { EngineCore, EngineEvent } from './engine-core.js';
import type { FromWorker, ToWorker, WorkerInit } from './engine-messages.js';
import { chatRenderer, createEngineCore, resolveEngineOptions } from './engine-setup.js';
import { describeError } from './error-kind.js';
import { openTiers } from './open-tiers.js';
import { parseEngineConfig } from '../config/engine-config.js';

const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);
const send = (events: EngineEvent[]) => {
  if (events.length > 0) post({ type: 'events', events });
};

async function start(init: WorkerInit): Promise<EngineCore | undefined> {
  let tiers: Awaited<ReturnType<typeof openTiers>>;
  try {
    // Tiers open first: a bad store address or directory is reported before minutes of model loading.
    const config = parseEngineConfig(init.options);
    tiers = await openTiers(config, (line) => console.warn(`vserve: ${line}`));
    let reported = -1;
    const onProgress = (done: number, total: number) => {
      const percent = Math.floor((done / total) * 100);
      if (percent > reported) post({ type: 'load-progress', done, total });
      reported = percent;
    };
    const { model, tokenizer, loadMs } = loadModel(init.modelPath, {
      backend: config.backend,
      threads: config.threads,
      sumOrder: config.sumOrder,
      contextSize: (trained) => resolveEngineOptions(init.options, trained).maxContext,
      onProgress,
    });
    const core = createEngineCore(model, tokenizer, init.options, chatRenderer(ChatTemplate.fromGGUF(model.file), tokenizer), tiers?.factory);
    const c = model.config;
    post({
      type: 'ready',
      info: {
        modelPath: init.modelPath, arch: c.arch, vocabSize: c.vocabSize, maxContext: core.kv.maxContext, maxSeqs: core.kv.maxSlots,
        maxBatchTokens: core.scheduler.limits.maxBatchTokens, kvManager: core.kv.kind, scheduler: core.scheduler.kind, backend: model.backend.name,
        isa: model.backend.isa, threads: model.backend.threads, prefixCache: core.kv.prefixStats() !== undefined, kvType: core.kv.stats().kvType,
        loadMs,
      },
    });
    return core;
  } catch (e) {
    await tiers?.close();
    post({ type: 'load-error', error: describeError(e) });
    return undefined;
  }
}

/** Mirrors the prefix cache's blocks to the main thread (the server's /v1/kv/events), in batches. */
function watchBlocks(core: EngineCore): { batch: BlockEventBatch; snapshot: () => BlockSnapshot } | undefined {
  const index = core.kv.prefix;
  if (!index) return undefined;
  const batch = new BlockEventBatch(({ stored, removed }) => post({ type: 'blocks', stored, removed }));
  index.listen(batch);
  return { batch, snapshot: () => ({ fingerprint: index.fingerprint, blockTokens: index.blockTokens, layoutVersion: BLOCK_LAYOUT_VERSION, keys: index.keys() }) };
}

const core = await start(workerData as WorkerInit);
if (core) {
  const blocks = watchBlocks(core);
  let stepQueued = false;
  let closed = false;
  const runStep = () => {
    stepQueued = false;
    if (closed) return;
    send(core.step());
    queueStep();
  };
  const queueStep = () => {
    if (!stepQueued && core.hasWork && !core.waitingOnLoads) {
      stepQueued = true;
      setImmediate(runStep);
    }
  };

  core.onRunnable = queueStep;

  port.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'submit':
        send(core.submit(m.id, m.input, m.params));
        queueStep();
        break;
      case 'abort':
        send(core.abort(m.id));
        break;
      case 'stats':
        post({ type: 'stats', ticket: m.ticket, stats: core.stats() });
        break;
      case 'blocks-snapshot':
        // Events still pending go first: the snapshot then includes everything sent before it.
        blocks?.batch.flush();
        post({ type: 'blocks-snapshot', ticket: m.ticket, snapshot: blocks?.snapshot() ?? null });
        break;
      case 'close':
        closed = true;
        blocks?.batch.close();
        void (async () => {
          const { events, closed: kvClosed } = core.close();
          send(events);
          await kvClosed.catch(() => undefined);
          core.model.backend.close();
          core.model.close();
          post({ type: 'closed' });
          port.close();
        })();
        break;
    }
  });
}
