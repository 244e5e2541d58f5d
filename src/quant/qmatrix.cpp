#include "quant/qmatrix.hpp"

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>

#include "quant/blocks.hpp"
#include "quant/dispatch.hpp"
#include "util/thread_pool.hpp"

namespace ellm::quant {
namespace {

constexpr Format kFormats[] = {Format::F32, Format::BF16, Format::F16, Format::Q8_0, Format::Q4_0};

int groups(int rows) { return (rows + kRowGroup - 1) / kRowGroup; }

// Plain ggml blocks of one row <-> their places in the interleaved group layout (kernels.hpp).
// Copies one row's bytes between its plain ggml blocks and its places in the layout, either way.
template <class Block, bool ToLayout>
void move_row(Block* row, int r, int nb, std::uint8_t* data) {
  constexpr int kChunkBytes = kRowGroup * int(sizeof(Block::qs));
  std::uint8_t* group = data + std::size_t(r / kRowGroup) * group_bytes(nb, kChunkBytes);
  const int i = r % kRowGroup;
  auto move = [](void* layout, void* plain, std::size_t n) { ToLayout ? std::memcpy(layout, plain, n) : std::memcpy(plain, layout, n); };
  for (int b = 0; b < nb; b++) {
    move(group + scale_offset(nb, b, kChunkBytes) + 2 * i, &row[b].d, 2);
    for (int c = 0; c < kChunkBytes / kRowGroup / 4; c++)
      move(group + chunk_offset(b, kChunkBytes) + 64 * c + 4 * i, row[b].qs + 4 * c, 4);
  }
}

template <class Block, void (*Quantize)(const float*, Block*, int)>
AlignedBytes pack_rows(const float* W, int rows, int cols) {
  const int nb = cols / kQK;
  AlignedBytes data(std::size_t(groups(rows)) * group_bytes(nb, kRowGroup * int(sizeof(Block::qs))), 0);  // padding: zero rows
  std::vector<Block> row(nb);
  for (int r = 0; r < rows; r++) {
    Quantize(W + std::size_t(r) * cols, row.data(), cols);
    move_row<Block, true>(row.data(), r, nb, data.data());
  }
  return data;
}

template <class Block, void (*Dequantize)(const Block*, float*, int)>
void unpack_rows(const std::uint8_t* data, int rows, int cols, float* W) {
  const int nb = cols / kQK;
  std::vector<Block> row(nb);
  for (int r = 0; r < rows; r++) {
    move_row<Block, false>(row.data(), r, nb, const_cast<std::uint8_t*>(data));
    Dequantize(row.data(), W + std::size_t(r) * cols, cols);
  }
}

AlignedBytes pack_halves(const float* W, std::size_t count, std::uint16_t (*convert)(float)) {
  AlignedBytes data(count * 2);
  auto* h = reinterpret_cast<std::uint16_t*>(data.data());
  for (std::size_t i = 0; i < count; i++) h[i] = convert(W[i]);
  return data;
}

// fn(g0, g1) over the row groups [0, groups) on the pool's threads. The threads take contiguous
// pieces of ~1/8 of a share (a multiple of the decode tile's groups) from a shared counter rather than one fixed share each, so a thread
// descheduled on a busy machine delays the matmul by a piece, not by its whole share.
template <class Fn>
void for_row_groups(ThreadPool& pool, int groups, Fn fn) {
  const int threads = std::min(pool.threads(), groups);
  const int piece = (std::max(1, groups / (8 * threads)) + kDecodeGroupsMultiple - 1) / kDecodeGroupsMultiple * kDecodeGroupsMultiple;
  std::atomic<int> next{0};
  pool.parallel_for(threads, [&](std::int64_t, std::int64_t) {
    for (int g0; (g0 = next.fetch_add(piece)) < groups;) fn(g0, std::min(groups, g0 + piece));
  });
}

}  // namespace

const char* format_name(Format f) {
  switch (f) {
    case Format::F32: return "fp32";
    case Format::BF16: return "bf16";
    case Format::F16: return "fp16";
    case Format::Q8_0: return "int8";
    case Format::Q4_0: return "int4";
  }
  return "?";
}

std::optional<Format> parse_format(std::string_view name) {
  for (Format f : kFormats)
    if (name == format_name(f)) return f;
  return std::nullopt;
}

double bits_per_weight(Format f) {
  switch (f) {
    case Format::F32: return 32;
    case Format::BF16:
    case Format::F16: return 16;
    case Format::Q8_0: return 8.0 * sizeof(BlockQ8_0) / kQK;
    case Format::Q4_0: return 8.0 * sizeof(BlockQ4_0) / kQK;
  }
  return 0;
}

int block_elems(Format f) { return f == Format::Q8_0 || f == Format::Q4_0 ? kQK : 1; }

QMatrix QMatrix::quantize(Format f, const float* W, int rows, int cols) {
  if (rows < 1 || cols < 1 || cols % block_elems(f) != 0)
    throw std::invalid_argument(std::string("QMatrix::quantize: ") + format_name(f) + " needs rows >= 1 and cols a positive multiple of " +
                                std::to_string(block_elems(f)) + ", got " + std::to_string(rows) + " x " + std::to_string(cols));
  QMatrix m;
  m.format_ = f;
  m.rows_ = rows;
  m.cols_ = cols;
  const std::size_t count = std::size_t(rows) * cols;
  switch (f) {
    case Format::F32:
      m.data_.resize(count * 4);
      std::memcpy(m.data_.data(), W, count * 4);
      break;
    case Format::BF16: m.data_ = pack_halves(W, count, fp32_to_bf16); break;
    case Format::F16: m.data_ = pack_halves(W, count, fp32_to_fp16); break;
    case Format::Q8_0: m.data_ = pack_rows<BlockQ8_0, quantize_row_q8_0>(W, rows, cols); break;
    case Format::Q4_0: m.data_ = pack_rows<BlockQ4_0, quantize_row_q4_0>(W, rows, cols); break;
  }
  return m;
}

void QMatrix::dequantize(float* W) const {
  const std::size_t count = std::size_t(rows_) * cols_;
  const auto* h = reinterpret_cast<const std::uint16_t*>(data_.data());
  switch (format_) {
    case Format::F32: std::memcpy(W, data_.data(), count * 4); break;
    case Format::BF16:
      for (std::size_t i = 0; i < count; i++) W[i] = bf16_to_fp32(h[i]);
      break;
    case Format::F16:
      for (std::size_t i = 0; i < count; i++) W[i] = fp16_to_fp32(h[i]);
      break;
    case Format::Q8_0: unpack_rows<BlockQ8_0, dequantize_row_q8_0>(data_.data(), rows_, cols_, W); break;
    case Format::Q4_0: unpack_rows<BlockQ4_0, dequantize_row_q4_0>(data_.data(), rows_, cols_, W); break;
  }
}

void QMatrix::matmul(const float* x, int n, float* y) const {
  if (n <= 0) return;
  const KernelTable& k = active_kernels();
  ThreadPool& pool = rank_pool();
  const auto* h = reinterpret_cast<const std::uint16_t*>(data_.data());
  const auto* f = reinterpret_cast<const float*>(data_.data());
  if (format_ == Format::Q8_0 || format_ == Format::Q4_0) {
    thread_local std::vector<ActBlock> buffer;  // reused: no allocation per decode step
    if (buffer.size() < std::size_t(n) * (cols_ / kQK)) buffer.resize(std::size_t(n) * (cols_ / kQK));
    const ActBlock* xq = buffer.data();  // the caller's buffer (a worker's thread_local is another)
    k.quantize_act(x, n, cols_, buffer.data());
    auto kernel = format_ == Format::Q8_0 ? k.q8_0 : k.q4_0;
    for_row_groups(pool, groups(rows_), [&](int g0, int g1) { kernel(data_.data(), g0, g1, rows_, cols_, xq, n, y, rows_); });
    return;
  }
  // Float formats: shares of rows, in multiples of 16 so that threads never share a cache line of y.
  for_row_groups(pool, groups(rows_), [&](int g0, int g1) {
    const int r0 = g0 * kRowGroup, r1 = std::min(rows_, g1 * kRowGroup);
    if (format_ == Format::F32) k.f32(f, r0, r1, cols_, x, n, y, rows_);
    else if (format_ == Format::BF16) k.bf16(h, r0, r1, cols_, x, n, y, rows_);
    else k.f16(h, r0, r1, cols_, x, n, y, rows_);
  });
}

}  // namespace ellm::quant
