// shiftKeys: moves stored K rows to other RoPE positions in place (src/backend/backend.ts Backend.shiftKeys).
// Keys are cached after RoPE, and RoPE rotates each pair of dims by pos * theta_i, so R(p + d) = R(d) R(p):
// a row cached at position p becomes the row of position p + d by one more rotation by d * theta_i.
// Each row is decoded from the cache's K format (and turned back from the Walsh-Hadamard rotation when
// the cache stores it so), rotated, and encoded again; formats that encode groups of rows (KIVI's per
// channel keys) are decoded and encoded a whole group at a time. V rows are untouched.
//
// The arithmetic matches the reference backend's bit for bit: cos and sin in double, each rotated value
// x0 c - x1 s in double rounded once to f32 (this file is built without -mfma on x86-64, so nothing is
// fused).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "contiguous_kv.h"
#include "hadamard.h"
#include "js_args.h"
#include "kv_format.h"
#include "kv_store.h"
#include "modules.h"
#include "paged_kv.h"
#include "thread_pool.h"

namespace vserve {
namespace {

// The rotation by `delta` positions: one (cos, sin) per rotated pair, and where the pairs sit in a head.
struct KeyRotation {
  size_t headDim = 0;
  size_t ropeDim = 0;
  bool neox = false;  // pairs (i, i + ropeDim / 2) rather than (2i, 2i + 1)
  std::vector<double> cos, sin;

  void apply(float* row, size_t heads) const {
    const size_t half = ropeDim / 2;
    for (size_t h = 0; h < heads; h++) {
      float* v = row + h * headDim;
      for (size_t i = 0; i < half; i++) {
        float* a = neox ? v + i : v + 2 * i;
        float* b = neox ? v + i + half : v + 2 * i + 1;
        const double x0 = *a, x1 = *b;
        const double x0c = x0 * cos[i], x1s = x1 * sin[i], x0s = x0 * sin[i], x1c = x1 * cos[i];
        *a = float(x0c - x1s);
        *b = float(x0s + x1c);
      }
    }
  }
};

struct ShiftRequest {
  size_t slot = 0, first = 0, count = 0;
  int64_t delta = 0;
  KeyRotation rotation;
};

// Reads (slot, first, count, delta, ropeDim, freqBase, freqScale, neox, freqFactors) at `at`: neox 0 or 1,
// freqFactors ropeDim / 2 positive floats dividing each pair's frequency, or empty for none.
ShiftRequest shiftArgs(const Args& args, size_t at, size_t headDim) {
  ShiftRequest r;
  r.slot = args.index(at, "slot");
  r.first = args.index(at + 1, "first");
  r.count = args.index(at + 2, "count");
  const double delta = args.number(at + 3, "delta");
  if (delta != std::floor(delta) || std::fabs(delta) > double(INT32_MAX)) {
    args.rangeError("delta (" + std::to_string(delta) + ") must be a whole number of positions within the int32 range");
  }
  r.delta = int64_t(delta);
  KeyRotation& rot = r.rotation;
  rot.headDim = headDim;
  rot.ropeDim = args.index(at + 4, "ropeDim");
  const double freqBase = args.number(at + 5, "freqBase");
  const double freqScale = args.number(at + 6, "freqScale");
  rot.neox = args.index(at + 7, "neox", 1) != 0;
  const ArrayArg<float> factors = args.float32(at + 8, "freqFactors");
  if (rot.ropeDim % 2 != 0 || rot.ropeDim > headDim) {
    args.rangeError("ropeDim (" + std::to_string(rot.ropeDim) + ") must be even and at most headDim (" + std::to_string(headDim) + ")");
  }
  if (!(freqBase > 0)) args.rangeError("freqBase must be positive");
  const size_t half = rot.ropeDim / 2;
  if (factors.length != 0 && factors.length != half) {
    args.rangeError("freqFactors has " + std::to_string(factors.length) + " elements, needs none or ropeDim / 2 = " + std::to_string(half));
  }
  rot.cos.resize(half);
  rot.sin.resize(half);
  for (size_t i = 0; i < half; i++) {
    double invFreq = std::pow(freqBase, -double(2 * i) / double(rot.ropeDim));
    if (factors.length != 0) {
      if (!(factors.data[i] > 0) || !std::isfinite(factors.data[i])) {
        args.rangeError("freqFactors[" + std::to_string(i) + "] must be a positive number");
      }
      invFreq /= double(factors.data[i]);
    }
    const double angle = double(r.delta) * freqScale * invFreq;
    rot.cos[i] = std::cos(angle);
    rot.sin[i] = std::sin(angle);
  }
  return r;
}

// What both layouts refuse: a residual window (its newest rows are f16 in a ring that the cache's rows do
// not cover), a slot out of range, and a range of a grouped K format that is not whole groups.
template <class Geometry>
void checkShift(const Args& args, const Geometry& g, const ShiftRequest& r) {
  if (g.residual.ringRows > 0) {
    args.rangeError("shifting keys needs a cache without a residual window (this one keeps its newest tokens in an f16 ring)");
  }
  if (r.slot >= g.maxSlots) {
    args.rangeError("slot " + std::to_string(r.slot) + " is outside [0, " + std::to_string(g.maxSlots) + ")");
  }
  const KVFormatTraits& f = kvFormat(g.format.ids.key);
  if (r.first % f.groupTokens != 0 || r.count % f.groupTokens != 0) {
    args.rangeError(std::string("the K format ") + f.name + " encodes groups of " + std::to_string(f.groupTokens) +
                    " rows: first (" + std::to_string(r.first) + ") and count (" + std::to_string(r.count) +
                    ") must be multiples of " + std::to_string(f.groupTokens));
  }
}

std::string rowSpan(const ShiftRequest& r) {
  return std::to_string(r.first) + ".." + std::to_string(r.first + r.count - 1);
}

void checkRows(const Args& args, const KVGeometry& g, const ShiftRequest& r) {
  if (r.first + r.count > g.maxContext) {
    args.rangeError("rows " + rowSpan(r) + " are outside the context [0, " + std::to_string(g.maxContext) + ")");
  }
}

void checkRows(const Args& args, const PagedGeometry& g, const ShiftRequest& r) {
  const int32_t len = g.seqLens[r.slot];
  const size_t end = r.first + r.count;
  if (end > size_t(std::max(len, 0)) || end > g.maxBlocksPerSlot * g.blockSize) {
    args.rangeError("rows " + rowSpan(r) + " are outside slot " + std::to_string(r.slot) + "'s " +
                    std::to_string(std::max(len, 0)) + " tokens");
  }
  const int32_t* table = g.tables + r.slot * g.maxBlocksPerSlot;
  for (size_t b = r.first / g.blockSize; b <= (end - 1) / g.blockSize; b++) {
    if (table[b] < 0 || size_t(table[b]) >= g.numBlocks) {
      args.rangeError("slot " + std::to_string(r.slot) + "'s block table entry " + std::to_string(b) + " = " +
                      std::to_string(table[b]) + " is not a block id in [0, " + std::to_string(g.numBlocks) + ")");
    }
  }
}

// Decodes, rotates and encodes rows first .. first + count - 1 of the slot's keys; every index is checked.
template <class Geometry>
void shiftRows(const Args& args, const Geometry& g, const ShiftRequest& r) {
  checkShift(args, g, r);
  if (r.count == 0) return;
  checkRows(args, g, r);
  const KVFormatTraits& f = kvFormat(g.format.ids.key);
  const size_t group = f.groupTokens, rowLen = g.rowLen(), rowBytes = g.format.rowBytes;
  // A group is encoded as adjacent rows; pages and blocks that cut one cannot hold this format's groups.
  for (size_t pos = r.first; group > 1 && pos < r.first + r.count; pos += group) {
    if (g.offset(r.slot, pos + group - 1) != g.offset(r.slot, pos) + (group - 1) * rowBytes) {
      args.rangeError("the rows of a group are not adjacent in this cache layout");
    }
  }
  if (r.delta == 0) return;  // R(0) is the identity: leave the bytes as they are
  const size_t groups = r.count / group;
  // Tasks of about kTaskValues values, whole groups each.
  constexpr size_t kTaskValues = 1 << 14;
  const size_t groupsPerTask = std::max<size_t>(1, kTaskValues / (group * rowLen));
  const size_t tasks = (groups + groupsPerTask - 1) / groupsPerTask;
  pool().parallelFor(tasks, [&](size_t t) {
    std::vector<float> rows(group * rowLen);
    for (size_t i = t * groupsPerTask; i < std::min(groups, (t + 1) * groupsPerTask); i++) {
      const size_t pos = r.first + i * group;
      uint8_t* first = g.keys + g.offset(r.slot, pos);
      for (size_t j = 0; j < group; j++) {
        float* row = rows.data() + j * rowLen;
        f.decode(first + j * rowBytes, 0, rowLen, row, rowLen, j, rowBytes);
        // H is its own inverse: undo the stored rotation, rotate by delta, redo it.
        if (g.format.rotateBlock != 0) hadamardInPlace(row, rowLen, g.format.rotateBlock);
        r.rotation.apply(row, g.kvHeads);
        if (g.format.rotateBlock != 0) hadamardInPlace(row, rowLen, g.format.rotateBlock);
      }
      f.encode(rows.data(), rowLen, first, rowBytes);
    }
  });
}

// shiftKeys(<the kvArgs>, slot, first, count, delta, ropeDim, freqBase, freqScale, neox, freqFactors)
Napi::Value ShiftKeys(const Napi::CallbackInfo& info) {
  Args args(info, "shiftKeys");
  const KVGeometry g = kvArgs(args, 0);
  shiftRows(args, g, shiftArgs(args, kKVArgs, g.headDim));
  return info.Env().Undefined();
}

// pagedShiftKeys(<the pagedArgs>, slot, first, count, delta, ropeDim, freqBase, freqScale, neox, freqFactors)
Napi::Value PagedShiftKeys(const Napi::CallbackInfo& info) {
  Args args(info, "pagedShiftKeys");
  const PagedGeometry g = pagedArgs(args, 0);
  shiftRows(args, g, shiftArgs(args, kPagedArgs, g.headDim));
  return info.Env().Undefined();
}

}  // namespace

void InitShiftKeys(Napi::Env env, Napi::Object exports) {
  exports.Set("shiftKeys", Napi::Function::New(env, ShiftKeys, "shiftKeys"));
  exports.Set("pagedShiftKeys", Napi::Function::New(env, PagedShiftKeys, "pagedShiftKeys"));
}

}  // namespace vserve
