// Bridge from tensors to the fused CPU attention (attention_params.h): checks, picks the ISA,
// packs the kept keys and values of each (batch, head), picks the tile sizes (autotuned per
// shape bucket, kernels/autotune.h) and runs the tiles on libtorch's intra-op threads
// (at::parallel_for, so `--threads` / set_threads applies).
#include <ATen/Parallel.h>
#include <dit/error.h>
#include <dit/kernels.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "attention_params.h"
#include "kernels/backends.h"
#include "kernels/autotune.h"

namespace dit::kernels::cpu {

namespace {

struct IsaEntry {
  const char* name;
  AttentionTraits (*traits)();
  void (*forward)(const AttentionParams&, int64_t, int64_t, float*);
  bool (*supported)();
};

bool cpu_has_avx512() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && attention_traits_avx512().width > 0;
#else
  return false;
#endif
}

bool cpu_has_avx2() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         attention_traits_avx2().width > 0;
#else
  return false;
#endif
}

bool always() { return true; }

// Best first.
const IsaEntry kIsas[] = {
    {"avx512", attention_traits_avx512, attention_forward_avx512, cpu_has_avx512},
    {"avx2", attention_traits_avx2, attention_forward_avx2, cpu_has_avx2},
    {"scalar", attention_traits_scalar, attention_forward_scalar, always},
};

const IsaEntry& find_isa(const std::string& name) {
  if (name.empty()) {
    for (const auto& e : kIsas)
      if (e.supported()) return e;
  }
  for (const auto& e : kIsas) {
    if (name != e.name) continue;
    if (!e.supported())
      throw Error(fmt::format("kernels: CPU ISA '{}' is not available on this machine (have: {})",
                              name, fmt::join(isas(), ", ")));
    return e;
  }
  throw Error(fmt::format("kernels: unknown CPU ISA '{}' (expected one of: avx512, avx2, scalar)",
                          name));
}

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

}  // namespace

std::vector<std::string> isas() {
  std::vector<std::string> out;
  for (const auto& e : kIsas)
    if (e.supported()) out.push_back(e.name);
  return out;
}

std::string best_isa() { return find_isa("").name; }

namespace {

// Everything one call needs; the tile sizes are set per run.
struct Prepared {
  const IsaEntry* isa = nullptr;
  AttentionTraits traits{};
  torch::Tensor out;               // [B, Nq, H, D]
  std::vector<int64_t> nk;         // kept keys per batch element
  std::vector<int64_t> key_index;  // [B, Nk]: kept keys first (with a mask only)
  int64_t nk_max = 0;
  AttentionParams p{};
  bool empty = false;
};

Prepared prepare(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                 const AttentionOptions& opts, const std::string& isa) {
  for (const auto* t : {&q, &k, &v})
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat32)
      throw Error(fmt::format("kernels::cpu::attention: q, k, v must be CPU float32 tensors, got {} {}",
                              t->device().str(), c10::toString(t->scalar_type())));
  Prepared pr;
  pr.isa = &find_isa(isa);
  pr.traits = pr.isa->traits();
  // Any strides (expanded inputs, views into a qkv projection): q, k, v are read in place.
  const int64_t B = q.size(0), H = q.size(1), Nq = q.size(2), D = q.size(3), Nk = k.size(2);
  pr.out = torch::empty({B, Nq, H, D}, q.options());  // heads interleaved
  pr.empty = B == 0 || H == 0 || Nq == 0 || D == 0;
  if (pr.empty) return pr;

  pr.nk.assign(B, Nk);
  if (opts.key_mask) {
    auto mask = opts.key_mask->to(torch::kCPU).to(torch::kBool).contiguous();  // [B, Nk]
    const bool* mp = mask.data_ptr<bool>();
    pr.key_index.resize(static_cast<size_t>(B * Nk));
    for (int64_t b = 0; b < B; ++b) {
      int64_t n = 0;
      for (int64_t j = 0; j < Nk; ++j)
        if (mp[b * Nk + j]) pr.key_index[b * Nk + n++] = j;
      pr.nk[b] = n;
    }
  }
  pr.nk_max = *std::max_element(pr.nk.begin(), pr.nk.end());

  AttentionParams& p = pr.p;
  p.q = q.data_ptr<float>();
  p.k = k.data_ptr<float>();
  p.v = v.data_ptr<float>();
  p.o = pr.out.data_ptr<float>();
  for (int i = 0; i < 4; ++i)
    p.q_stride[i] = q.stride(i), p.k_stride[i] = k.stride(i), p.v_stride[i] = v.stride(i);
  p.o_stride[0] = Nq * H * D, p.o_stride[1] = D, p.o_stride[2] = H * D, p.o_stride[3] = 1;
  p.B = B, p.H = H, p.Nq = Nq, p.D = D;
  p.key_index_stride = Nk;
  p.scale = static_cast<float>(opts.scale.value_or(1.0 / std::sqrt(static_cast<double>(D))));
  return pr;
}

int64_t task_count(const AttentionParams& p, int64_t q_tile) {
  return p.B * p.H * ((p.Nq + q_tile - 1) / q_tile);
}

void execute(const Prepared& pr, const AttentionTiles& tiles) {
  AttentionParams p = pr.p;
  p.nk = pr.nk.data();
  p.key_index = pr.key_index.empty() ? nullptr : pr.key_index.data();
  p.q_tile = tiles.q_tile;
  p.key_tile = tiles.key_tile;
  const int64_t scratch_n = attention_scratch_floats(p.q_tile, p.key_tile, p.D);
  const auto forward = pr.isa->forward;
  at::parallel_for(0, task_count(p, p.q_tile), 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(static_cast<size_t>(scratch_n));
    forward(p, begin, end, scratch.data());
  });
}

// Key tile 64; query tiles of 64 rows, halved while there are fewer than 4 tasks per thread
// (never below one vector of queries).
AttentionTiles default_tiles(const Prepared& pr) {
  const int64_t W = pr.traits.width, threads = at::get_num_threads();
  int64_t q_tile = std::min<int64_t>(round_up(64, W), round_up(pr.p.Nq, W));
  while (q_tile > W && task_count(pr.p, q_tile) < 4 * threads) q_tile = round_up(q_tile / 2, W);
  return {q_tile, 64};
}

int64_t pow2_bucket(int64_t n) {
  int64_t b = 1;
  while (b < n) b *= 2;
  return b;
}

// Candidates below `need`, and the smallest at or above it (larger ones do the same work).
std::vector<int64_t> useful(const std::vector<int64_t>& sizes, int64_t need) {
  std::vector<int64_t> out;
  for (int64_t s : sizes) {
    out.push_back(s);
    if (s >= need) break;
  }
  return out;
}

// One decision: the cached value of `key` (a positive multiple of `multiple`), or the fastest
// candidate, timed by `run` and remembered. A cached value that is not such a number (a
// hand-edited file) is searched again and replaced.
int64_t decide(const std::string& key, const char* name, const std::vector<int64_t>& candidates,
               int64_t multiple, const std::function<void(int64_t)>& run, bool force,
               std::vector<TuneReport>* reports) {
  auto valid = [&](const nlohmann::json& entry) -> int64_t {  // 0: not a usable answer
    const auto it = entry.find(name);
    if (it == entry.end() || !it->is_number_integer()) return 0;
    const int64_t v = it->get<int64_t>();
    return v > 0 && v % multiple == 0 ? v : 0;
  };
  TuneReport report;
  report.key = key;
  bool replace = force;
  if (!force) {
    if (auto cached = autotune::lookup(key)) {
      if (const int64_t v = valid(*cached)) {
        if (reports) reports->push_back({key, fmt::format("{}={}", name, v), {}});
        return v;
      }
      replace = true;
    }
  }
  int64_t best = candidates.front();
  double best_ms = 0;
  nlohmann::json timings = nlohmann::json::object();
  if (candidates.size() > 1) {
    std::vector<std::function<void()>> fns;
    for (int64_t c : candidates) fns.push_back([&run, c] { run(c); });
    const auto ms = autotune::time_candidates_ms(fns, 30.0);
    for (size_t i = 0; i < candidates.size(); ++i) {
      report.candidates.push_back({fmt::format("{}={}", name, candidates[i]), ms[i]});
      timings[std::to_string(candidates[i])] = ms[i];
      if (best_ms == 0 || ms[i] < best_ms) best = candidates[i], best_ms = ms[i];
    }
  }
  const int64_t kept = valid(autotune::remember(key, {{name, best}, {"ms", timings}}, replace));
  const int64_t v = kept ? kept : best;
  report.chosen = fmt::format("{}={}", name, v);
  if (reports) reports->push_back(std::move(report));
  return v;
}

// Key tile per (device, ISA, head dim, kept keys); query tile per (that, threads, queries,
// batch x heads) with the chosen key tile.
AttentionTiles choose_tiles(const Prepared& pr, bool force, std::vector<TuneReport>* reports) {
  const AttentionParams& p = pr.p;
  const int64_t W = pr.traits.width;
  AttentionTiles tiles = default_tiles(pr);
  const std::string where = fmt::format("{}|attention|cpu:{}|D={}|Nk={}",
                                        autotune::cpu_device_name(), pr.isa->name, p.D,
                                        pow2_bucket(pr.nk_max));
  tiles.key_tile = decide(where + "|key_tile", "key_tile",
                          useful({32, 64, 128, 256}, std::max<int64_t>(pr.nk_max, 1)), 1,
                          [&](int64_t kt) { execute(pr, {tiles.q_tile, kt}); }, force, reports);
  std::vector<int64_t> q_tiles;  // multiples of the width, each once
  for (int64_t t : {8, 16, 32, 64, 128})
    if (q_tiles.empty() || round_up(t, W) != q_tiles.back()) q_tiles.push_back(round_up(t, W));
  const std::string q_key =
      fmt::format("{}|key_tile={}|threads={}|Nq={}|BH={}|q_tile", where, tiles.key_tile,
                  at::get_num_threads(), pow2_bucket(p.Nq), pow2_bucket(p.B * p.H));
  tiles.q_tile = decide(q_key, "q_tile", useful(q_tiles, round_up(p.Nq, W)), W,
                        [&](int64_t qt) { execute(pr, {qt, tiles.key_tile}); }, force, reports);
  return tiles;
}

AttentionTiles tiles_for(const Prepared& pr) {
  return autotune_enabled() ? choose_tiles(pr, false, nullptr) : default_tiles(pr);
}

}  // namespace

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const AttentionOptions& opts, const std::string& isa) {
  Prepared pr = prepare(q, k, v, opts, isa);
  if (!pr.empty) execute(pr, tiles_for(pr));
  return pr.out.permute({0, 2, 1, 3});  // [B, H, Nq, D] view
}

AttentionTiles attention_tiles(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const AttentionOptions& opts,
                               const std::string& isa) {
  Prepared pr = prepare(q, k, v, opts, isa);
  return pr.empty ? AttentionTiles{} : tiles_for(pr);
}

std::vector<TuneReport> tune_attention(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v, const AttentionOptions& opts,
                                       const std::string& isa, bool force) {
  Prepared pr = prepare(q, k, v, opts, isa);
  std::vector<TuneReport> reports;
  if (!pr.empty) choose_tiles(pr, force, &reports);
  return reports;
}

}  // namespace dit::kernels::cpu
