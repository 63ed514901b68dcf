// dit: the command-line front end. Errors from any command become one line on stderr and a
// non-zero exit code.
#include <dit/error.h>
#include <dit/image.h>
#include <dit/inference.h>
#include <dit/kernels.h>
#include <dit/runtime.h>
#include <fmt/format.h>

#include "../autotune_flag.h"
#include "../report_error.h"
#include "commands.h"

namespace dit::cli {
std::string default_model_path() { return default_image_model_path(); }
std::string default_classifier_path() { return data_dir() + "/models/fmnist-classifier.safetensors"; }
double resolve_cfg_scale(double requested, bool uses_flow_map, const std::string& prediction) {
  if (!(requested < 0)) return requested;  // NaN passes through to the guidance's own check
  if (uses_flow_map) return 1.0;
  return prediction == "flow" ? 2.0 : 4.0;
}
void add_load_options(CLI::App& cmd, DiTLoadOptions& target) {
  cmd.add_option("--heads", target.heads,
                 "Attention heads (not stored in .pt files; default: head size 64, 16 for DiT-XL)")
      ->check(CLI::Range(1, 4096));
  cmd.add_option("--prediction", target.prediction,
                 "Model kind when the file does not say: epsilon (DiT .pt), sit (SiT .pt), flow")
      ->check(CLI::IsMember({"flow", "epsilon", "sit"}));
}

void add_placement_options(CLI::App& cmd, Placement& target) {
  cmd.add_option("--device", target.device,
                 "Where to sample: cpu, cuda, cuda:N, or auto (a GPU when this build and the "
                 "machine have one, else the CPU)")
      ->capture_default_str();
  cmd.add_option("--dtype,--precision", target.dtype,
                 "Precision: fp32; bf16 (on the CPU: bf16 linear layers, about 2x faster on "
                 "CPUs with AVX512-BF16, fp32 with a message elsewhere; on a GPU: bf16 weights "
                 "and kernels); fp16 (GPU only). Default: $DIT_LINEAR_PRECISION, else fp32")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
}
}  // namespace dit::cli

int main(int argc, char** argv) {
  CLI::App app{"dit-engine: diffusion transformers for images and science"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("dit-engine ") + DIT_VERSION_STRING);
  dit::apps::add_no_autotune_flag(app, argc, argv);
  auto* image = app.add_subcommand("image", "Image generation: sample, train, eval");
  image->require_subcommand(1);
  dit::cli::add_image_sample(*image);
  dit::cli::add_image_train(*image);
  dit::cli::add_image_eval(*image);
  dit::cli::add_info(app);
  dit::cli::add_batch(app);
  dit::cli::add_merge(app);
  dit::cli::add_convert(app);
#ifdef DIT_HAVE_DOCKING
  dit::cli::add_dock(app);
  dit::cli::add_dock_train(app);
#endif
#ifdef DIT_HAVE_PROTEIN
  dit::cli::add_protein(app);
#endif
#ifdef DIT_HAVE_CRYSTAL
  dit::cli::add_crystal(app);
#endif
  dit::cli::add_check(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // A bad flag or value: one line, like every other error.
    fmt::print(stderr, "dit: error: {} (see --help)\n", e.what());
    return e.get_exit_code();
  } catch (...) {
    return dit::apps::report_current_exception("dit");
  }
  return 0;
}
