// The layouts the device backends' fused adaLN ops take (kernels/device_backends.h), on the CPU:
// the rules themselves, and the model passing what they take. An "audit" device backend on the
// CPU applies the cuda backend's own layout rules and refuses what they refuse, so a model that
// would hand the GPU kernels a strided view fails here, on any machine (on the H200 the bf16
// parity test failed that way: the tokens after the patch embedding were a transposed view).
#include <dit/inference.h>
#include <dit/kernels.h>
#include <dit/model.h>
#include <gtest/gtest.h>

#include <string>

#include "kernels/device_backends.h"

namespace {

using dit::kernels::adaln_layout_unsupported;
using dit::kernels::gate_residual_layout_unsupported;

int g_refusals = 0;

torch::Tensor audit_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const dit::kernels::AttentionOptions& opts) {
  const double scale = opts.scale.value_or(1.0 / std::sqrt(static_cast<double>(q.size(3))));
  auto s = torch::matmul(q.to(torch::kFloat32), k.to(torch::kFloat32).transpose(-1, -2)) * scale;
  if (opts.key_mask)
    s = s.masked_fill(opts.key_mask->logical_not().view({q.size(0), 1, 1, k.size(2)}), -INFINITY);
  return torch::matmul(torch::softmax(s, -1), v.to(torch::kFloat32)).to(q.scalar_type());
}

bool audit_adaln(const torch::Tensor& out, const torch::Tensor& x, const torch::Tensor& shift,
                 const torch::Tensor& scale) {
  if (adaln_layout_unsupported(out, x, shift, scale)) return ++g_refusals, false;
  auto xf = x.to(torch::kFloat32);
  auto ln = torch::layer_norm(xf, {x.size(2)}, {}, {}, 1e-6);
  out.copy_(ln * (1 + scale.to(torch::kFloat32).unsqueeze(1)) + shift.to(torch::kFloat32).unsqueeze(1));
  return true;
}

bool audit_gate_residual(const torch::Tensor& x, const torch::Tensor& gate, const torch::Tensor& y) {
  if (gate_residual_layout_unsupported(x, gate, y)) return ++g_refusals, false;
  x.add_(gate.unsqueeze(1) * y);
  return true;
}

const bool registered_layout_test = dit::kernels::register_device_backend(dit::kernels::DeviceBackend{
    "layout-audit", c10::DeviceType::CPU, [] { return false; },
    [](const torch::Tensor&, const torch::Tensor&, const torch::Tensor&) -> const char* {
      return nullptr;
    },
    audit_attention, audit_adaln, audit_gate_residual});

}  // namespace

TEST(DeviceLayout, RulesAcceptRowMajorTokensAndChunkedRows) {
  ASSERT_TRUE(registered_layout_test);
  const int64_t B = 2, N = 5, D = 16;
  auto x = torch::randn({B, N, D});
  auto out = torch::empty_like(x);
  auto mod = torch::randn({B, 6 * D}).chunk(6, 1);  // as the adaLN projection is split
  EXPECT_EQ(adaln_layout_unsupported(out, x, mod[0], mod[1]), nullptr);
  EXPECT_EQ(gate_residual_layout_unsupported(x, mod[2], torch::randn({B, N, D})), nullptr);
  // y may be strided (copied once); x may not.
  EXPECT_EQ(gate_residual_layout_unsupported(x, mod[2], torch::randn({B, D, N}).transpose(1, 2)), nullptr);

  const auto transposed = torch::randn({B, D, N}).transpose(1, 2);  // the patch embedding's view
  EXPECT_STREQ(adaln_layout_unsupported(out, transposed, mod[0], mod[1]),
               "x must be row-major contiguous [B, N, D] (got a strided view)");
  EXPECT_NE(gate_residual_layout_unsupported(transposed, mod[2], x), nullptr);
  EXPECT_NE(adaln_layout_unsupported(out, x.to(torch::kBFloat16), mod[0], mod[1]), nullptr);  // dtypes
  EXPECT_NE(adaln_layout_unsupported(out, x.to(torch::kFloat64), mod[0].to(torch::kFloat64),
                                     mod[1].to(torch::kFloat64)), nullptr);
  auto strided_rows = torch::randn({B, D, 2}).select(2, 0);  // stride 2 along D
  EXPECT_STREQ(adaln_layout_unsupported(out, x, strided_rows, mod[1]),
               "shift must be [B, D] rows with unit stride along D");
  EXPECT_NE(adaln_layout_unsupported(out.narrow(1, 0, 3), x, mod[0], mod[1]), nullptr);
  EXPECT_NE(gate_residual_layout_unsupported(x, mod[2], torch::randn({B, N, D + 1})), nullptr);
}

// DiT::forward and the inference path, fp32 and bf16, with the audit backend selected by name
// (its refusals are errors, as the cuda backend's are): no refusal, and the result of the
// reference kernels. Tolerance: 1e-4 (fp32) and 5e-2 (bf16) of max |output|.
TEST(DeviceLayout, ModelPassesTheLayoutsTheDeviceKernelsTake) {
  dit::DiTConfig cfg;
  cfg.input_size = 8, cfg.in_channels = 4, cfg.hidden_size = 128, cfg.num_heads = 2;
  cfg.depth = 2, cfg.num_classes = 10;
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    dit::DiT model(cfg);
    model->eval();
    torch::NoGradGuard no_grad;
    torch::manual_seed(21);
    for (auto& p : model->parameters()) p.normal_(0.0, 0.1);
    auto x = torch::randn({3, cfg.in_channels, cfg.input_size, cfg.input_size});
    auto t = torch::tensor({16.0f, 496.0f, 992.0f});
    auto y = torch::tensor({int64_t{0}, int64_t{7}, cfg.null_class()});
    torch::Tensor expected;
    {
      dit::kernels::ScopedBackend ref("reference");
      expected = model->forward(x, t, y);
    }
    model->to(dtype);
    const auto xd = x.to(dtype);
    const double tol = (dtype == torch::kFloat32 ? 1e-4 : 5e-2) *
                       std::max(1.0, expected.abs().max().item<double>());
    g_refusals = 0;
    dit::kernels::ScopedBackend audit("layout-audit");
    torch::Tensor forward, inference;
    ASSERT_NO_THROW(forward = model->forward(xd, t, y)) << c10::toString(dtype);
    dit::DiTInference path(model);
    ASSERT_NO_THROW(inference = path.forward(xd, t, y)) << c10::toString(dtype);
    EXPECT_EQ(g_refusals, 0);
    for (const auto& out : {forward, inference})
      EXPECT_LT((out.to(torch::kFloat32) - expected).abs().max().item<double>(), tol)
          << c10::toString(dtype);
  }
}
