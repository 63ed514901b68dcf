// dit info MODEL: the config inferred from a model or checkpoint's tensor shapes; for a domain
// model (docking, protein, crystal) the architecture and training record its header holds.
#include <dit/model.h>
#include <dit/torch_pt.h>
#include <fmt/format.h>

#include <algorithm>

#include "commands.h"

namespace dit::cli {

void add_info(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto load = std::make_shared<DiTLoadOptions>();
  auto* cmd = app.add_subcommand("info", "Print the config inferred from a model's weights");
  cmd->add_option("model", *path, "Model or checkpoint (.safetensors, or a torch.save .pt); default: bundled model");
  add_load_options(*cmd, *load);
  cmd->callback([path, load] {
    std::string p = path->empty() ? default_model_path() : *path;
    if (is_torch_zip_file(p)) {  // a published .pt: loaded (the pickle reader), then described
      DiT model = load_dit(p, *load);
      int64_t params = 0;
      for (const auto& t : model->parameters()) params += t.numel();
      fmt::print("file: {} (torch.save)\n{}\nparameters: {:.2f} M\n", p, model->config().describe(),
                 params / 1e6);  // pos_embed is a buffer here
      return;
    }
    SafeTensorsFile file(p);
    // The weights under `prefix` (a training checkpoint's EMA copy: "ema."): parameter count (the
    // image model's pos_embed is a fixed buffer, not counted), dtype and number of tensors.
    struct Weights {
      int64_t params = 0, tensors = 0;
      std::string dtype;
    };
    auto weights = [&file](const std::string& prefix) {
      Weights w;
      for (const auto& name : file.names()) {
        if (name.rfind(prefix, 0) != 0 || name.substr(prefix.size()) == "pos_embed") continue;
        w.params += file.numel(name), w.dtype = file.dtype_name(name), ++w.tensors;
      }
      return w;
    };
    const auto& meta = file.metadata();
    const auto kind = meta.find("dit.kind");
    if (kind != meta.end() && kind->second != "image") {
      // A structure-domain model: its header names the domain and the architecture.
      // A training checkpoint holds model.*, ema.* and the optimiser's state: count the EMA weights.
      const auto names = file.names();
      const bool checkpoint =
          std::any_of(names.begin(), names.end(), [](const auto& n) { return n.rfind("ema.", 0) == 0; });
      const auto w = weights(checkpoint ? "ema." : "");
      const auto domain = meta.find("dit.domain");
      fmt::print("file: {}\nkind: {} model{}\nparameters: {:.2f} M ({}, {} tensors)\n", p, kind->second,
                 domain == meta.end() ? "" : " of the " + domain->second + " domain", w.params / 1e6,
                 w.dtype, w.tensors);
      if (checkpoint) fmt::print("training checkpoint: counting its EMA weights\n");
      for (const auto& [k, v] : meta)
        if (k != "dit.kind" && k != "dit.domain") fmt::print("{}: {}\n", k, v);
      return;
    }
    const std::string prefix = weights_prefix(file);
    auto config = infer_config(file, prefix);
    const auto w = weights(prefix);
    fmt::print("file: {}\n{}\nparameters: {:.2f} M ({})\n", p, config.describe(), w.params / 1e6, w.dtype);
    if (!prefix.empty()) fmt::print("training checkpoint: showing its EMA weights\n");
    for (const auto& [k, v] : file.metadata())
      if (k.rfind("dit.", 0) != 0) fmt::print("{}: {}\n", k, v);
  });
}

}  // namespace dit::cli
