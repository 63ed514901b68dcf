// Chooses a kernel backend from the selection (ScopedBackend, set_backend, $DIT_KERNELS, auto),
// autograd, device and dtype. See include/dit/kernels.h for the rules.
#include <dit/error.h>
#include <dit/kernels.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

#include <algorithm>
#include <cstdlib>
#include <mutex>

#include "kernels/device_backends.h"
#include "kernels/backends.h"

namespace dit::kernels {

namespace {
void check_attention_shapes(const torch::Tensor& q, const torch::Tensor& k,
                            const torch::Tensor& v, const AttentionOptions& opts) {
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4)
    throw Error(fmt::format("attention: q, k, v must be [B, H, N, Dh], got {}, {}, {} dims",
                            q.dim(), k.dim(), v.dim()));
  if (k.sizes() != v.sizes() || q.size(0) != k.size(0) || q.size(1) != k.size(1) ||
      q.size(3) != k.size(3))
    throw Error("attention: q, k, v shapes disagree (batch, heads or head dim)");
  if (opts.key_mask && (opts.key_mask->dim() != 2 || opts.key_mask->size(0) != q.size(0) ||
                        opts.key_mask->size(1) != k.size(2)))
    throw Error(fmt::format("attention: key_mask must be [B={}, Nk={}]", q.size(0), k.size(2)));
}

// Registered device backends ("cuda"); filled by static initialisers before main.
std::vector<DeviceBackend>& device_backends() {
  static std::vector<DeviceBackend> backends;
  return backends;
}

const DeviceBackend* find_device_backend(const std::string& name) {
  for (const auto& b : device_backends())
    if (b.name == name) return &b;
  return nullptr;
}

const DeviceBackend* device_backend_for(c10::DeviceType type) {
  for (const auto& b : device_backends())
    if (b.device == type) return &b;
  return nullptr;
}

// A selection: "auto", "reference", "cpu" with an optional ISA ("" = best), or a device
// backend's name.
struct Selection {
  std::string kind = "auto";
  std::string isa;
};

Selection parse(const std::string& name, const char* where) {
  Selection s;
  if (name == "auto" || name == "reference" || name == "cpu" || find_device_backend(name)) {
    s.kind = name;
    return s;
  }
  if (name.rfind("cpu:", 0) == 0) {
    s.kind = "cpu";
    s.isa = name.substr(4);
    const auto have = cpu::isas();
    if (std::find(have.begin(), have.end(), s.isa) == have.end())
      throw Error(fmt::format("{}: kernel backend '{}' is not available on this machine "
                              "(available: {})",
                              where, name, fmt::join(available_backends(), ", ")));
    return s;
  }
  throw Error(fmt::format("{}: unknown kernel backend '{}' (expected auto, reference, cpu, a "
                          "device backend, or one of: {})",
                          where, name, fmt::join(available_backends(), ", ")));
}

std::mutex g_mutex;
std::optional<std::string> g_default;                 // set_backend
thread_local std::optional<std::string> t_scoped;     // ScopedBackend

std::string process_default() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_default) {
    const char* env = std::getenv("DIT_KERNELS");
    std::string name = env && *env ? env : "auto";
    parse(name, "DIT_KERNELS");  // throws on a bad value, naming the variable
    g_default = name;
  }
  return *g_default;
}

Selection current() {
  return parse(t_scoped ? *t_scoped : process_default(), "kernel backend");
}

bool needs_autograd(std::initializer_list<const torch::Tensor*> ts) {
  if (!torch::GradMode::is_enabled()) return false;
  for (const auto* t : ts)
    if (t->requires_grad()) return true;
  return false;
}

bool cpu_f32(std::initializer_list<const torch::Tensor*> ts) {
  for (const auto* t : ts)
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat32) return false;
  return true;
}

// "reference", "cpu:<isa>" or a device backend's name for these inputs. A backend selected by
// name with inputs it cannot take (another device or dtype) is an error rather than a silent
// fallback.
std::string choose(std::initializer_list<const torch::Tensor*> ts, const char* op) {
  if (needs_autograd(ts)) return "reference";  // only the reference has a backward
  const Selection s = current();
  if (s.kind == "reference") return "reference";
  const torch::Tensor& first = *ts.begin()[0];
  if (const DeviceBackend* named = find_device_backend(s.kind)) {
    if (first.device().type() != named->device)
      throw Error(fmt::format("kernels::{}: backend '{}' needs {} tensors (got {}); select "
                              "'auto' or 'reference'",
                              op, named->name, c10::DeviceTypeName(named->device, true),
                              first.device().str()));
    return named->name;
  }
  if (!first.device().is_cpu() && s.kind != "cpu") {
    const DeviceBackend* b = device_backend_for(first.device().type());
    return b ? b->name : "reference";
  }
  const bool ok = cpu_f32(ts);
  if (s.kind == "cpu" && !ok)
    throw Error(fmt::format("kernels::{}: backend 'cpu' needs CPU float32 tensors (got {} {}); "
                            "select 'auto' or 'reference'",
                            op, first.device().str(), c10::toString(first.scalar_type())));
  if (!ok) return "reference";
  return "cpu:" + (s.isa.empty() ? cpu::best_isa() : s.isa);
}

// Whether the selection in force names a backend explicitly (then its refusals are errors).
bool selected_by_name(const DeviceBackend& b) { return current().kind == b.name; }

Error refused(const DeviceBackend& b, const char* op, const std::string& why) {
  return Error(fmt::format("kernels::{}: backend '{}' cannot take these inputs: {}; select 'auto' "
                           "or 'reference'",
                           op, b.name, why));
}
}  // namespace

void set_backend(const std::string& name) {
  parse(name, "set_backend");
  std::lock_guard<std::mutex> lock(g_mutex);
  g_default = name;
}

std::string backend() { return t_scoped ? *t_scoped : process_default(); }

std::vector<std::string> available_backends() {
  std::vector<std::string> out = {"reference"};
  for (const auto& isa : cpu::isas()) out.push_back("cpu:" + isa);
  for (const auto& b : device_backends())
    if (b.available()) out.push_back(b.name);
  return out;
}

bool register_device_backend(const DeviceBackend& backend) {
  device_backends().push_back(backend);
  return true;
}

ScopedBackend::ScopedBackend(const std::string& name) : previous_(t_scoped) {
  parse(name, "ScopedBackend");
  t_scoped = name;
}

ScopedBackend::~ScopedBackend() { t_scoped = previous_; }

std::string attention_backend(const torch::Tensor& q) {
  const std::string b = choose({&q}, "attention");
  const DeviceBackend* d = find_device_backend(b);
  return d && d->attention_unsupported(q, q, q) && !selected_by_name(*d) ? "reference" : b;
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const AttentionOptions& opts) {
  check_attention_shapes(q, k, v, opts);
  const std::string b = choose({&q, &k, &v}, "attention");
  if (const DeviceBackend* d = find_device_backend(b)) {
    const char* why = d->attention_unsupported(q, k, v);
    if (!why) return d->attention(q, k, v, opts);
    if (selected_by_name(*d)) throw refused(*d, "attention", why);
  } else if (b != "reference") {
    return cpu::attention(q, k, v, opts, b.substr(4));
  }
  return reference::attention(q, k, v, opts);
}

torch::Tensor adaln_layernorm(const torch::Tensor& x, const torch::Tensor& shift,
                              const torch::Tensor& scale) {
  const std::string b = choose({&x, &shift, &scale}, "adaln_layernorm");
  if (find_device_backend(b)) {
    // The device kernels take row-major tokens: a strided x is copied once (the model passes
    // contiguous tokens: DiTImpl::embed_patches).
    const auto xc = x.contiguous();
    auto out = torch::empty_like(xc);
    adaln_layernorm_out(out, xc, shift, scale);
    return out;
  }
  if (b == "reference") return reference::adaln_layernorm(x, shift, scale);
  return cpu::adaln_layernorm(x, shift, scale);
}

torch::Tensor gate_residual(const torch::Tensor& x, const torch::Tensor& gate,
                            const torch::Tensor& y) {
  const std::string b = choose({&x, &gate, &y}, "gate_residual");
  if (find_device_backend(b)) {
    auto out = x.clone(at::MemoryFormat::Contiguous);
    gate_residual_(out, gate, y);
    return out;
  }
  if (b == "reference") return reference::gate_residual(x, gate, y);
  return cpu::gate_residual(x, gate, y);
}

void adaln_layernorm_out(const torch::Tensor& out, const torch::Tensor& x,
                         const torch::Tensor& shift, const torch::Tensor& scale) {
  const std::string b = choose({&out, &x, &shift, &scale}, "adaln_layernorm_out");
  if (const DeviceBackend* d = find_device_backend(b)) {
    if (d->adaln_layernorm_out(out, x, shift, scale)) return;
    if (selected_by_name(*d)) {
      const char* why = adaln_layout_unsupported(out, x, shift, scale);
      throw refused(*d, "adaln_layernorm_out", why ? why : "the kernel refused these sizes");
    }
  } else if (b != "reference") {
    return cpu::adaln_layernorm_out(out, x, shift, scale);
  }
  out.copy_(reference::adaln_layernorm(x, shift, scale));
}

void gate_residual_(const torch::Tensor& x, const torch::Tensor& gate, const torch::Tensor& y) {
  const std::string b = choose({&x, &gate, &y}, "gate_residual_");
  if (const DeviceBackend* d = find_device_backend(b)) {
    if (d->gate_residual_(x, gate, y)) return;
    if (selected_by_name(*d)) {
      const char* why = gate_residual_layout_unsupported(x, gate, y);
      throw refused(*d, "gate_residual_", why ? why : "the kernel refused these sizes");
    }
  } else if (b != "reference") {
    return cpu::gate_residual_(x, gate, y);
  }
  x.add_(gate.unsqueeze(1) * y);
}

namespace {
bool device_dtype(const torch::Tensor& t) {
  const auto s = t.scalar_type();
  return s == torch::kFloat32 || s == torch::kBFloat16 || s == torch::kHalf;
}
bool same_place(std::initializer_list<const torch::Tensor*> ts) {
  for (const auto* t : ts)
    if (t->device() != (*ts.begin())->device() || t->scalar_type() != (*ts.begin())->scalar_type())
      return false;
  return true;
}
// A [B, D] operand whose row b is read at data + b * stride(0), unit stride along D.
const char* row_operand_unsupported(const torch::Tensor& r, const torch::Tensor& x, const char* msg) {
  if (r.dim() != 2 || r.size(0) != x.size(0) || r.size(1) != x.size(2) || r.stride(1) != 1) return msg;
  return nullptr;
}
}  // namespace

const char* adaln_layout_unsupported(const torch::Tensor& out, const torch::Tensor& x,
                                     const torch::Tensor& shift, const torch::Tensor& scale) {
  if (!same_place({&out, &x, &shift, &scale}))
    return "x, out, shift and scale must share one device and dtype";
  if (!device_dtype(x)) return "x must be fp32, bf16 or fp16";
  if (x.dim() != 3) return "x must be [B, N, D]";
  if (!x.is_contiguous()) return "x must be row-major contiguous [B, N, D] (got a strided view)";
  if (out.sizes() != x.sizes() || !out.is_contiguous()) return "out must be contiguous and shaped as x";
  if (auto why = row_operand_unsupported(shift, x, "shift must be [B, D] rows with unit stride along D"))
    return why;
  return row_operand_unsupported(scale, x, "scale must be [B, D] rows with unit stride along D");
}

const char* gate_residual_layout_unsupported(const torch::Tensor& x, const torch::Tensor& gate,
                                             const torch::Tensor& y) {
  if (!same_place({&x, &gate, &y})) return "x, gate and y must share one device and dtype";
  if (!device_dtype(x)) return "x must be fp32, bf16 or fp16";
  if (x.dim() != 3 || !x.is_contiguous()) return "x must be row-major contiguous [B, N, D]";
  if (y.sizes() != x.sizes()) return "y must be shaped as x";
  return row_operand_unsupported(gate, x, "gate must be [B, D] rows with unit stride along D");
}

}  // namespace dit::kernels
