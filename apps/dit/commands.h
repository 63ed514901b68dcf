#pragma once
// Each subcommand lives in its own file and adds itself to the CLI here.
#include <CLI/CLI.hpp>
#include <dit/inference.h>

namespace dit::cli {

void add_image_sample(CLI::App& image);
void add_image_train(CLI::App& image);
void add_image_eval(CLI::App& image);
void add_info(CLI::App& app);
void add_batch(CLI::App& app);
void add_merge(CLI::App& app);
void add_convert(CLI::App& app);  // convert.cpp: .pt checkpoints to safetensors
#ifdef DIT_HAVE_DOCKING
void add_dock(CLI::App& app);        // dock.cpp
void add_dock_train(CLI::App& app);  // dock_train.cpp
#endif
#ifdef DIT_HAVE_PROTEIN
void add_protein(CLI::App& app);     // protein.cpp: dit protein sample | train
#endif
#ifdef DIT_HAVE_CRYSTAL
void add_crystal(CLI::App& app);     // crystal.cpp: dit crystal sample | train
#endif
void add_check(CLI::App& app);  // check.cpp: dit check FILE, checks picked by file type

// Checks shared by commands: the bundled default model and classifier.
std::string default_model_path();
std::string default_classifier_path();

// --cfg-scale default (a negative request): 1 for few-step (flow-map) samplers, whose models
// have guidance distilled in (`dit image train --objective shortcut|progressive
// --distill-guidance W`); 2 for our flow-matching models (the bundled Fashion-MNIST model's
// best class accuracy / FD trade-off, docs/eval-fmnist.md); 4 for the published DiT and SiT
// checkpoints (prediction epsilon / sit: their sample.py's default).
constexpr double kAutoCfgScale = -1;
double resolve_cfg_scale(double requested, bool uses_flow_map, const std::string& prediction);

// --device cpu|cuda[:N]|auto and --dtype fp32|bf16|fp16 (also spelt --precision, its older
// name) of every sampling command, into `target` (dit/inference.h Placement; the net is placed
// with place_for_sampling).
void add_placement_options(CLI::App& cmd, Placement& target);

// --heads and --prediction of the commands that read published checkpoints (dit image sample,
// dit info, dit convert): what a .pt file does not store (dit/model.h DiTLoadOptions).
void add_load_options(CLI::App& cmd, DiTLoadOptions& target);

}  // namespace dit::cli
