#pragma once
// The CUDA features attention_kernel.cuh and adaln_kernel.cuh use, emulated on the CPU so that
// the kernels' own code runs without a GPU (emulated_check.cpp). Included by those headers (in
// place of sm80_ptx.cuh) when DIT_CUDA_EMULATION is defined, in a translation unit built by the
// host compiler (for which the CUDA headers define __global__, __device__ and __shared__ as
// nothing).
//
// - A CTA is a set of fibers (ucontext), one per CUDA thread; a fiber runs until it reaches a
//   barrier (__syncthreads, or the warp rendezvous of a warp instruction), and barriers are
//   released when every thread of the CTA (or warp) has arrived. Each round advances a random
//   subset of the warps (seeded), so warps drift apart as far as the barriers let them and a
//   missing barrier shows as a race. A barrier that can never be released (threads at different
//   barriers, or some already returned) aborts.
// - Warp instructions (ldmatrix, mma, shfl) put each lane's operands in a per-warp exchange
//   area, meet, and compute each lane's result from the whole warp's operands following the
//   PTX ISA's definitions ("Warp-level matrix load instruction: ldmatrix", "Matrix Fragments
//   for mma.m16n8k16 / mma.m16n8k8"), written here from the ISA text, not from the kernel.
//   Lanes at different instructions abort.
// - cp.async either copies when issued or only at the issuing thread's cp.async.wait_all
//   (CopyTiming): a missing barrier before overwriting a buffer shows in the first mode, a
//   read before the wait in the second. Shared addresses are checked for alignment and range,
//   cp.async sources against the registered global buffers.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <ucontext.h>
#include <vector_types.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#define __launch_bounds__(...)

namespace dit::kernels::cuda::emulation {

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "cuda emulation: %s\n", what);
  std::abort();
}

enum class Wait { kNone, kWarp, kBlock };
enum class CopyTiming { kAtIssue, kAtWait };

struct Memory {
  unsigned char* base;
  size_t bytes;
};

struct PendingCopy {
  unsigned char* dst;
  const unsigned char* src;
  bool valid;
};

struct Thread {
  ucontext_t context;
  std::unique_ptr<char[]> stack;
  uint3 thread_idx;
  Wait wait = Wait::kNone;
  bool done = false;
  std::vector<PendingCopy> pending;  // cp.async not yet performed (CopyTiming::kAtWait)
};

// Operands of the warp instruction being executed, one slot per lane.
struct WarpExchange {
  int op[32];
  uint32_t u32[32][6];
  float f32[32];
};

struct Block {
  uint3 block_idx;
  std::vector<Thread> threads;
  std::vector<WarpExchange> warps;
  ucontext_t scheduler;
  int current = 0;
  std::function<void()> body;
};

// One block runs at a time.
inline Block* g_block = nullptr;
inline Memory g_shared{};             // the kernel's dynamic shared memory
inline std::vector<Memory> g_global;  // buffers cp.async may read
inline CopyTiming g_copy_timing = CopyTiming::kAtIssue;
inline std::mt19937 g_schedule{1};  // which warps advance in a round

inline Thread& self() { return g_block->threads[g_block->current]; }
inline int lane() { return g_block->current % 32; }

inline void wait_at(Wait kind) {
  Thread& t = self();
  t.wait = kind;
  swapcontext(&t.context, &g_block->scheduler);
}

inline void fiber_entry() {
  g_block->body();
  if (!self().pending.empty()) fail("a thread returned with cp.async copies it never waited for");
  self().done = true;
}  // returns to the scheduler through uc_link

// Runs body() as `threads` CUDA threads of block `block_idx` until all have returned.
inline void run_block(uint3 block_idx, int threads, std::function<void()> body) {
  if (threads <= 0 || threads % 32 != 0) fail("block size must be a positive multiple of 32");
  constexpr size_t kStackBytes = 128 * 1024;
  Block block;
  block.block_idx = block_idx;
  block.body = std::move(body);
  block.threads.resize(threads);
  block.warps.resize(threads / 32);
  for (int i = 0; i < threads; ++i) {
    Thread& t = block.threads[i];
    t.thread_idx = uint3{static_cast<unsigned>(i), 0, 0};
    t.stack.reset(new char[kStackBytes]);
    getcontext(&t.context);
    t.context.uc_stack.ss_sp = t.stack.get();
    t.context.uc_stack.ss_size = kStackBytes;
    t.context.uc_link = &block.scheduler;
    makecontext(&t.context, fiber_entry, 0);
  }
  g_block = &block;
  std::bernoulli_distribution advance(0.5);
  for (;;) {
    // Run the runnable threads of a random subset of the warps, or of all warps when that
    // subset has none.
    std::vector<bool> chosen(threads / 32);
    for (int w = 0; w < threads / 32; ++w) chosen[w] = advance(g_schedule);
    bool ran = false;
    for (int pass = 0; pass < 2 && !ran; ++pass)
      for (int i = 0; i < threads; ++i) {
        Thread& t = block.threads[i];
        if (t.done || t.wait != Wait::kNone || (pass == 0 && !chosen[i / 32])) continue;
        block.current = i;
        ran = true;
        swapcontext(&block.scheduler, &t.context);
      }
    int done = 0, at_block = 0;
    for (const Thread& t : block.threads) {
      done += t.done;
      at_block += t.wait == Wait::kBlock;
    }
    if (done == threads) break;
    bool released = false;
    if (at_block == threads) {
      for (Thread& t : block.threads) t.wait = Wait::kNone;
      released = true;
    }
    for (int w = 0; w < threads / 32; ++w) {
      bool all = true;
      for (int l = 0; l < 32; ++l) all &= block.threads[32 * w + l].wait == Wait::kWarp;
      if (!all) continue;
      for (int l = 0; l < 32; ++l) block.threads[32 * w + l].wait = Wait::kNone;
      released = true;
    }
    if (!released && !ran)
      fail("deadlock: threads wait at different barriers, or some have already returned");
  }
  g_block = nullptr;
}

// A warp instruction: deposit(x, lane) writes this lane's operands, compute(x, lane) reads the
// whole warp's and produces this lane's results.
enum Op { kLdmatrix = 1, kMma, kShfl, kSyncwarp };
template <class Deposit, class Compute>
void warp_op(int op, Deposit&& deposit, Compute&& compute) {
  WarpExchange& x = g_block->warps[g_block->current / 32];
  const int l = lane();
  x.op[l] = op;
  deposit(x, l);
  wait_at(Wait::kWarp);
  for (int other = 0; other < 32; ++other)
    if (x.op[other] != op) fail("the lanes of a warp are at different warp instructions");
  compute(x, l);
  wait_at(Wait::kWarp);  // every lane has read the operands before any lane writes new ones
}

inline unsigned char* shared_at(uint32_t address, uint32_t bytes, uint32_t alignment) {
  if (address % alignment != 0) fail("misaligned shared memory address");
  if (uint64_t{address} + bytes > g_shared.bytes) fail("shared memory access out of range");
  return g_shared.base + address;
}

inline uint16_t shared_u16(uint32_t address) {
  uint16_t v;
  memcpy(&v, shared_at(address, 2, 2), 2);
  return v;
}

inline void perform(const PendingCopy& c) {
  if (c.valid)
    memcpy(c.dst, c.src, 16);
  else
    memset(c.dst, 0, 16);
}

inline float element_to_float(uint16_t bits, bool bf16) {
  if (bf16) {
    const uint32_t wide = uint32_t{bits} << 16;
    float f;
    memcpy(&f, &wide, 4);
    return f;
  }
  __half_raw raw;
  raw.x = bits;
  return __half2float(__half(raw));
}

// D (16x8, f32) += A (16xK) B (Kx8) for K = 16 or 8, from the fragments of all 32 lanes.
template <int kK>
void mma(float (&d)[4], const uint32_t* a, const uint32_t* b, bool bf16) {
  constexpr int kARegs = kK / 4, kBRegs = kK / 8;
  warp_op(
      kMma + (kK == 16 ? 0 : 100) + (bf16 ? 0 : 10),
      [&](WarpExchange& x, int l) {
        for (int i = 0; i < kARegs; ++i) x.u32[l][i] = a[i];
        for (int i = 0; i < kBRegs; ++i) x.u32[l][4 + i] = b[i];
      },
      [&](const WarpExchange& x, int l) {
        float A[16][16], B[16][8];
        int a_seen[16][16] = {}, b_seen[16][8] = {};
        for (int from = 0; from < 32; ++from) {
          const int g = from >> 2, t = from % 4;
          for (int i = 0; i < 2 * kARegs; ++i) {  // a0, a1, ... two per register, low half first
            const uint16_t bits = static_cast<uint16_t>(x.u32[from][i / 2] >> (16 * (i % 2)));
            int row, col;
            if (kK == 16) {  // m16n8k16: row g for a0, a1, a4, a5; col 2t + (i & 1) (+8 for i >= 4)
              row = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8;
              col = t * 2 + (i & 1) + (i >= 4 ? 8 : 0);
            } else {  // m16n8k8: row g for a0, a1; col 2t + (i & 1)
              row = i < 2 ? g : g + 8;
              col = t * 2 + (i & 1);
            }
            A[row][col] = element_to_float(bits, bf16);
            ++a_seen[row][col];
          }
          for (int i = 0; i < 2 * kBRegs; ++i) {  // b0, b1, ...: row 2t + (i & 1) (+8 for i >= 2)
            const uint16_t bits = static_cast<uint16_t>(x.u32[from][4 + i / 2] >> (16 * (i % 2)));
            const int row = t * 2 + (i & 1) + (i >= 2 ? 8 : 0), col = g;
            B[row][col] = element_to_float(bits, bf16);
            ++b_seen[row][col];
          }
        }
        for (int r = 0; r < 16; ++r)
          for (int c = 0; c < kK; ++c)
            if (a_seen[r][c] != 1) fail("mma emulation: A fragment map is not a bijection");
        for (int r = 0; r < kK; ++r)
          for (int c = 0; c < 8; ++c)
            if (b_seen[r][c] != 1) fail("mma emulation: B fragment map is not a bijection");
        const int g = l >> 2, t = l % 4;
        for (int i = 0; i < 4; ++i) {  // c0, c1: row g; c2, c3: row g + 8; col 2t + (i & 1)
          const int row = g + (i >= 2 ? 8 : 0), col = t * 2 + (i & 1);
          double acc = d[i];
          for (int k = 0; k < kK; ++k) acc += double{A[row][k]} * B[k][col];
          d[i] = static_cast<float>(acc);
        }
      });
}

// ldmatrix .m8n8 .b16 with kNum matrices: row r of matrix i at the address of lane 8i + r.
template <int kNum, bool kTrans>
void ldmatrix(uint32_t (&r)[kNum], uint32_t address) {
  warp_op(
      kLdmatrix + kNum * 10 + (kTrans ? 100 : 0),
      [&](WarpExchange& x, int l) { x.u32[l][0] = address; },
      [&](const WarpExchange& x, int l) {
        for (int i = 0; i < kNum; ++i) {
          for (int row = 0; row < 8; ++row) shared_at(x.u32[8 * i + row][0], 16, 16);
          uint16_t lo, hi;
          if (!kTrans) {  // row l/4, columns 2(l%4) and 2(l%4) + 1
            const uint32_t at = x.u32[8 * i + l / 4][0] + 2 * (2 * (l % 4));
            lo = shared_u16(at);
            hi = shared_u16(at + 2);
          } else {  // the transpose: rows 2(l%4) and 2(l%4) + 1, column l/4
            lo = shared_u16(x.u32[8 * i + 2 * (l % 4)][0] + 2 * (l / 4));
            hi = shared_u16(x.u32[8 * i + 2 * (l % 4) + 1][0] + 2 * (l / 4));
          }
          r[i] = uint32_t{lo} | (uint32_t{hi} << 16);
        }
      });
}

}  // namespace dit::kernels::cuda::emulation

// ---- CUDA built-ins the kernel calls ------------------------------------------------------------

#define threadIdx (::dit::kernels::cuda::emulation::self().thread_idx)
#define blockIdx (::dit::kernels::cuda::emulation::g_block->block_idx)

inline void __syncthreads() {
  ::dit::kernels::cuda::emulation::wait_at(::dit::kernels::cuda::emulation::Wait::kBlock);
}

inline void __syncwarp(unsigned mask = 0xffffffffu) {
  namespace emu = ::dit::kernels::cuda::emulation;
  if (mask != 0xffffffffu) emu::fail("__syncwarp: only full warps are emulated");
  emu::warp_op(
      emu::kSyncwarp, [](emu::WarpExchange&, int) {}, [](const emu::WarpExchange&, int) {});
}

inline float rsqrtf(float x) { return 1.f / std::sqrt(x); }

inline float __shfl_xor_sync(unsigned mask, float value, int lane_mask, int width = 32) {
  namespace emu = ::dit::kernels::cuda::emulation;
  if (mask != 0xffffffffu || width != 32)
    emu::fail("__shfl_xor_sync: only full warps are emulated");
  float result = 0.f;
  emu::warp_op(
      emu::kShfl, [&](emu::WarpExchange& x, int l) { x.f32[l] = value; },
      [&](const emu::WarpExchange& x, int l) { result = x.f32[(l ^ lane_mask) % 32]; });
  return result;
}

// ---- the instructions of sm80_ptx.cuh -----------------------------------------------------------

namespace dit::kernels::cuda::ptx {

inline uint32_t smem_address(const void* p) {
  const auto* at = static_cast<const unsigned char*>(p);
  if (at < emulation::g_shared.base || at > emulation::g_shared.base + emulation::g_shared.bytes)
    emulation::fail("smem_address of a pointer outside shared memory");
  return static_cast<uint32_t>(at - emulation::g_shared.base);
}

inline void cp_async_16(uint32_t dst, const void* src, bool valid) {
  namespace emu = emulation;
  const auto* from = static_cast<const unsigned char*>(src);
  if (valid) {
    bool inside = false;
    for (const emu::Memory& m : emu::g_global)
      inside |= from >= m.base && from + 16 <= m.base + m.bytes;
    if (!inside) emu::fail("cp.async reads outside the global buffers");
    if (reinterpret_cast<uintptr_t>(from) % 16 != 0)
      emu::fail("cp.async source not 16-byte aligned");
  }
  const emu::PendingCopy copy{emu::shared_at(dst, 16, 16), from, valid};
  if (emu::g_copy_timing == emu::CopyTiming::kAtIssue)
    emu::perform(copy);
  else
    emu::self().pending.push_back(copy);
}

inline void cp_async_commit() {}

inline void cp_async_wait_all() {
  for (const emulation::PendingCopy& copy : emulation::self().pending) emulation::perform(copy);
  emulation::self().pending.clear();
}

inline void ldmatrix_x4(uint32_t (&r)[4], uint32_t address) {
  emulation::ldmatrix<4, false>(r, address);
}
inline void ldmatrix_x2(uint32_t (&r)[2], uint32_t address) {
  emulation::ldmatrix<2, false>(r, address);
}
inline void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t address) {
  emulation::ldmatrix<4, true>(r, address);
}
inline void ldmatrix_x2_trans(uint32_t (&r)[2], uint32_t address) {
  emulation::ldmatrix<2, true>(r, address);
}

inline void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  const uint32_t b[2] = {b0, b1};
  emulation::mma<16>(d, a, b, true);
}
inline void mma_m16n8k16_f16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  const uint32_t b[2] = {b0, b1};
  emulation::mma<16>(d, a, b, false);
}
inline void mma_m16n8k8_bf16(float (&d)[4], const uint32_t (&a)[2], uint32_t b0) {
  emulation::mma<8>(d, a, &b0, true);
}
inline void mma_m16n8k8_f16(float (&d)[4], const uint32_t (&a)[2], uint32_t b0) {
  emulation::mma<8>(d, a, &b0, false);
}

inline float exp2_approx(float x) { return std::exp2(x); }

}  // namespace dit::kernels::cuda::ptx
