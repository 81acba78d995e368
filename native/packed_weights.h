// Q8_0 / Q4_0 (and the super-block types: below) weights re-laid out 16 rows at a time for decode-speed matmuls. GGUF stores each row's
// blocks contiguously, so a kernel reads many rows as separate streams and spends most of its
// instructions per 32-weight block (scale conversion, broadcasts, shuffles). Packed, one vector lane
// is one row: for each group of 16 rows and each block b, the group holds
//   16 f16 scales (row 0..15 of block b)                          32 bytes
//   the quants as dwords: dword (k, r) = weights 4k..4k+3 of row r  512 (Q8_0) or 256 (Q4_0) bytes
// so a u8 x s8 dot of quant vector k with activation dword k (broadcast) advances 16 rows at once,
// and the whole group is one sequential stream. Q8_0 quants are stored as q ^ 0x80 (= q + 128,
// unsigned); Q4_0 keeps its bytes (low nibble = element j, high = element j + 16; value + 8), so
// vector k holds weights 4k.. in the low nibbles and 16 + 4k.. in the high ones. Rows past the last
// whole group stay in the original layout. IQ4_NL (Q4_0's shape, nibbles indexing a 16-entry codebook)
// packs exactly as Q4_0; its kernel maps the nibbles to codebook value + 128, so its bias is 128.
// Q5_0 packs as Q4_0 (its 16 nibble bytes, value + 16 once the fifth bit is in) followed by its fifth bits
// as 8 masks of 64 bits, one per unpacked quant vector (bit j: byte j of that vector), 64 bytes; the
// kernel adds 16 to the masked bytes, so its bias is 16. Q4_1 and Q5_1 pack as Q4_0 and Q5_0 with their
// 16 f16 mins (32 bytes) between the scales and the quants; their quants are unsigned as they stand
// (bias 0), and the kernels add m * s_x per block.
//
// Q4_K is packed the same way per super-block (256 values) instead of per block, 2368 bytes per super-block
// column of a group (16 GGUF super-blocks are 2304 bytes, so decode reads 3% more):
//   16 f16 d, then 16 f16 dmin (row 0..15)                                     64 bytes
//   scales: byte 16j + r = 6-bit scale of sub-block j (0..7) of row r          128 bytes
//   mins:   byte 16j + r = 6-bit min of sub-block j of row r                   128 bytes
//   quants, 4 chunks p of 512 bytes: dword (k, r) of chunk p = GGUF quant bytes 32p + 4k..+3 of row r
// GGUF chunk p holds sub-block 2p in its low nibbles and 2p + 1 in its high ones, so after masking
// (and shifting) vector k of chunk p pairs with activation dword k of sub-block 2p (low nibbles) or of
// sub-block 2p + 1 (high nibbles), and again one u8 x s8 dot advances 16 rows. The scales and mins stay
// bytes so the stream grows by 64 bytes only; the kernel converts them once per group and super-block.
//
// Q6_K is packed per super-block as well, 3392 bytes per super-block column of a group (16 GGUF
// super-blocks are 3360 bytes; d is widened to f32 so every part, and every column, stays 64-byte aligned):
//   16 f32 d (row 0..15)                                                      64 bytes
//   scales: byte 16j + r = int8 scale of sub-block j (0..15) of row r         256 bytes
//   ql: dword (k, r) at 64k + 4r = GGUF ql bytes 4k..4k+3 of row r, k < 32    2048 bytes
//   qh: dword (k, r) at 64k + 4r = GGUF qh bytes 4k..4k+3 of row r, k < 16    1024 bytes
// The quant bytes are GGUF's, only interleaved. For half h (values 128h..) and k < 8, ql vector 16h + k
// holds in its low nibbles values 128h + 4k.. and in its high ones 128h + 64 + 4k..; ql vector 16h + 8 + k
// the same for 128h + 32 + 4k.. and 128h + 96 + 4k..; qh vector 8h + k holds the 2 high bits of those
// four runs in bits 0-1, 2-3, 4-5 and 6-7. The kernel merges them into four vectors of 6-bit values
// (one per run of 32 values, i.e. two 16-value sub-blocks sharing an activation block of 32), each
// lane the same row, and one u8 x s8 dot advances 16 rows as for the other types.
//
// IQ4_XS is packed per super-block too, 2240 bytes per super-block column of a group (16 GGUF super-blocks
// are 2176 bytes; d is widened to f32 as for Q6_K, so every part stays 64-byte aligned):
//   16 f32 d (row 0..15)                                                      64 bytes
//   scales: byte 16j + r = int8 scale - 32 of sub-block j (0..7) of row r     128 bytes
//   quants, 8 chunks j of 256 bytes: dword (k, r) of chunk j = GGUF quant bytes 16j + 4k..+3 of row r
// The 6-bit scales, split over scales_h and scales_l in the file, are assembled once here instead of per
// matmul. A chunk is one sub-block laid out as a packed Q4_0 block column (low nibbles: values 4k..,
// high: 16 + 4k..); the kernel maps the nibbles through the 16-entry codebook with one byte shuffle.
//
// Q5_K is packed as Q4_K plus its fifth bits, 2880 bytes per super-block column of a group (16 GGUF
// super-blocks are 2816 bytes):
//   Q4_K's packed column (d, dmin, unpacked scales and mins, the 4 chunks of nibbles)    2368 bytes
//   qh: dword (k, r) at 64k + 4r = GGUF qh bytes 4k..4k+3 of row r, k < 8                 512 bytes
// Quant vector k of chunk p pairs with qh vector k: bit 2p of each qh byte is the fifth bit of the low
// nibble in the same byte lane, bit 2p + 1 that of the high nibble, so the kernel assembles the 5-bit
// values in registers (AVX-512: a byte test and a masked add per vector; AVX2: a shift and a mask).
//
// Q3_K is packed per super-block as well, 1856 bytes per super-block column of a group (16 GGUF
// super-blocks are 1760 bytes; d is widened to f32 as for Q6_K, so every part stays 64-byte aligned):
//   16 f32 d (row 0..15)                                                      64 bytes
//   scales: byte 16g + r = int8 scale - 32 of sub-block g (0..15) of row r    256 bytes
//   qs: dword (k, r) at 64k + 4r = GGUF quant bytes 4k..4k+3 of row r, k < 16   1024 bytes
//   hmask: dword (k, r) at 64k + 4r = GGUF hmask bytes 4k..4k+3 of row r, k < 8  512 bytes
// The 6-bit scales, split over 12 bytes in the file, are assembled once here. For half h, qs vector
// 8h + k holds in bits 2s..2s+1 values 128h + 32s + 4k.. (s < 4), and bit 4h + s of hmask vector k is
// their third bit; the kernel assembles value + 4 (0..7) in registers, and the -4 goes against the
// activation sums.
//
// Q2_K is packed per super-block in as many bytes as 16 GGUF super-blocks, 1344 per super-block column:
//   16 f16 d (row 0..15), then 16 f16 dmin                                            64 bytes
//   scales: byte 16j + r = GGUF scale byte j of row r (scale in the low nibble, min in the high)  256 bytes
//   qs: dword (k, r) at 64k + 4r = GGUF quant bytes 4k..4k+3 of row r, k < 16           1024 bytes
// The qs vectors hold values as Q3_K's do (half h, bits 2s..2s+1 of vector 8h + k: values 128h + 32s + 4k..).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

namespace vserve {

constexpr size_t kPackRows = 16;
// Bytes of one packed Q4_K super-block column of a group.
constexpr size_t kQ4_KPackedBytes = 64 + 2 * 8 * kPackRows + 4 * 8 * kPackRows * 4;
static_assert(kQ4_KPackedBytes == 2368, "Q4_K packed column size");
// Bytes of one packed Q6_K super-block column of a group, and where its parts start.
constexpr size_t kQ6_KPackedScalesAt = 4 * kPackRows;
constexpr size_t kQ6_KPackedLowAt = kQ6_KPackedScalesAt + 16 * kPackRows;
constexpr size_t kQ6_KPackedHighAt = kQ6_KPackedLowAt + 128 * kPackRows;
constexpr size_t kQ6_KPackedBytes = kQ6_KPackedHighAt + 64 * kPackRows;
static_assert(kQ6_KPackedBytes == 3392 && kQ6_KPackedBytes % 64 == 0, "Q6_K packed column size");
// The same for IQ4_XS.
constexpr size_t kIQ4_XSPackedScalesAt = 4 * kPackRows;
constexpr size_t kIQ4_XSPackedQuantsAt = kIQ4_XSPackedScalesAt + 8 * kPackRows;
constexpr size_t kIQ4_XSPackedBytes = kIQ4_XSPackedQuantsAt + 8 * 16 * kPackRows;
static_assert(kIQ4_XSPackedBytes == 2240 && kIQ4_XSPackedBytes % 64 == 0, "IQ4_XS packed column size");
// The same for Q3_K.
constexpr size_t kQ3_KPackedScalesAt = 4 * kPackRows;
constexpr size_t kQ3_KPackedLowAt = kQ3_KPackedScalesAt + 16 * kPackRows;
constexpr size_t kQ3_KPackedHighAt = kQ3_KPackedLowAt + 64 * kPackRows;
constexpr size_t kQ3_KPackedBytes = kQ3_KPackedHighAt + 32 * kPackRows;
static_assert(kQ3_KPackedBytes == 1856 && kQ3_KPackedBytes % 64 == 0, "Q3_K packed column size");
// The same for Q2_K.
constexpr size_t kQ2_KPackedScalesAt = 4 * kPackRows;
constexpr size_t kQ2_KPackedQuantsAt = kQ2_KPackedScalesAt + 16 * kPackRows;
constexpr size_t kQ2_KPackedBytes = kQ2_KPackedQuantsAt + 64 * kPackRows;
static_assert(kQ2_KPackedBytes == 1344 && kQ2_KPackedBytes % 64 == 0, "Q2_K packed column size");
// The same for Q5_K (its first kQ4_KPackedBytes are laid out as Q4_K's).
constexpr size_t kQ5_KPackedHighAt = kQ4_KPackedBytes;
constexpr size_t kQ5_KPackedBytes = kQ5_KPackedHighAt + 32 * kPackRows;
static_assert(kQ5_KPackedBytes == 2880 && kQ5_KPackedBytes % 64 == 0, "Q5_K packed column size");

// Bytes of one packed block column of a group (scales, mins + quants), for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 or IQ4_NL.
size_t packedBlockBytes(int type);
// Bytes of one packed 16-row group of a `cols`-column matrix of `type`; 0 when the type (or width) has no packed form.
size_t packedGroupBytes(int type, size_t cols);
// The unsigned bias the packed quants carry (128 for Q8_0 and IQ4_NL, 8 for Q4_0, 16 for Q5_0, 0 for Q4_1 and Q5_1).
int packedBias(int type);
// Packs rows [0, groups * 16) of a Q4_K matrix (rows of rowBytes bytes, `cols` elements).
void packRowsQ4_K16(const uint8_t* src, size_t rowBytes, size_t cols, size_t groups, uint8_t* dst);
// The same for a Q6_K matrix.
void packRowsQ6_K16(const uint8_t* src, size_t rowBytes, size_t cols, size_t groups, uint8_t* dst);
// The same for a Q2_K matrix.
void packRowsQ2_K16(const uint8_t* src, size_t rowBytes, size_t cols, size_t groups, uint8_t* dst);
// The same for a Q3_K matrix.
void packRowsQ3_K16(const uint8_t* src, size_t rowBytes, size_t cols, size_t groups, uint8_t* dst);
// The same for a Q5_K matrix.
void packRowsQ5_K16(const uint8_t* src, size_t rowBytes, size_t cols, size_t groups, uint8_t* dst);
// The same for an IQ4_XS matrix.
void packRowsIQ4_XS16(const uint8_t* src, size_t rowBytes, size_t cols, size_t groups, uint8_t* dst);
// The same for a Q5_0, Q4_1 or Q5_1 matrix.
void packRowsNibbles16(int type, const uint8_t* src, size_t rowBytes, size_t cols, size_t groups, uint8_t* dst);
// Packs rows [0, groups * 16) of a Q8_0 / Q4_0 / IQ4_NL matrix (rows of rowBytes bytes, `cols` elements).
void packRows16(int type, const uint8_t* src, size_t rowBytes, size_t cols, size_t groups, uint8_t* dst);

// A weight's packed copy, made on first use by a kernel set that has packed kernels.
class PackedCache {
 public:
  // The packed matrix for these weights (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS), or nullptr when the type or size has no packed form. With
  // `srcIsFileMapping`, the packed rows' pages of the file mapping are dropped afterwards so the model is
  // not resident twice (reading them again faults them back in from the file).
  const uint8_t* get(int type, const uint8_t* src, size_t rows, size_t cols, size_t rowBytes, bool srcIsFileMapping);

 private:
  std::mutex mutex_;
  bool tried_ = false;
  std::unique_ptr<uint8_t, void (*)(void*)> data_{nullptr, nullptr};
};

}  // namespace vserve
