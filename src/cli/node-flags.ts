// The V8 flags vserve's commands run under. Node takes them only on its command line, so they are written
// out where node is started: the first line of bin/vserve and `npm start` in package.json
// (test/cli/node-flags.test.ts keeps both in step with this list), and the benchmarks that start vserve.
//
// --single-threaded-gc: by default V8 marks and sweeps the JS heap on helper threads. In vserve those
// threads take cores from the kernels' compute threads, which already use every core, and from a Redis on
// the same host. Tier reads make collections frequent: each value read allocates its size in buffers,
// and V8 starts a full collection after every few tens of megabytes of them. vserve's JS heap is small (the
// weights and KV live outside it), so collecting it on the JS thread costs little. bench/README.md (the
// cluster benchmark, part 3) has the measurements.
export const NODE_FLAGS: readonly string[] = ['--single-threaded-gc'];
