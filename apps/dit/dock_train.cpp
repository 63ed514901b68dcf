// dit dock-train: trains the docking DiT by flow matching on ligand poses in their pockets:
// crystal complexes and poses found by the engine's own physics search (see docs/docking.md).
#include <dit/docking.h>
#include <dit/error.h>
#include <dit/runtime.h>
#include <fmt/format.h>

#include "commands.h"

namespace dit::cli {

void add_dock_train(CLI::App& app) {
  auto opts = std::make_shared<docking::DockTrainOptions>();
  auto threads = std::make_shared<int>(0);
  auto* cmd = app.add_subcommand("dock-train", "Train the docking DiT on ligand poses in pockets");
  cmd->add_option("--data", opts->data_dirs,
                  "Folders of complexes: each subfolder holds receptor.pdb, box.txt (cx,cy,cz,sx,sy,sz) "
                  "and crystal.sdf and/or poses.sdf (every record is a training pose)")
      ->required();
  cmd->add_option("-o,--output", opts->output, "Model file (EMA weights)")->required();
  cmd->add_option("--checkpoint", opts->checkpoint, "Training state, written every --checkpoint-every steps")
      ->capture_default_str();
  cmd->add_flag("--resume", opts->resume, "Continue from --checkpoint");
  cmd->add_option("--steps", opts->steps, "Optimisation steps")->capture_default_str();
  cmd->add_option("-b,--batch", opts->batch, "Poses per step")->capture_default_str();
  cmd->add_option("--lr", opts->lr, "Learning rate (AdamW)")->capture_default_str();
  cmd->add_option("--hidden", opts->hidden, "Model width")->capture_default_str();
  cmd->add_option("--depth", opts->depth, "DiT blocks")->capture_default_str();
  cmd->add_option("--heads", opts->heads, "Attention heads")->capture_default_str();
  cmd->add_option("--max-pocket-atoms", opts->max_pocket_atoms, "Pocket context tokens (nearest the box center)")
      ->capture_default_str();
  cmd->add_option("--checkpoint-every", opts->checkpoint_every, "Steps between checkpoints")->capture_default_str();
  cmd->add_option("--seed", opts->seed, "Random seed")->capture_default_str();
  cmd->add_option("--objective", opts->objective,
                  "Training objective of the shared trainer: flow-matching, or shortcut (a "
                  "few-step network, sampled with --sampler flowmap)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", *threads, "CPU threads (0: all)")->capture_default_str();
  cmd->final_callback([opts, threads] {
    set_threads(*threads);
    docking::train_docking_model(*opts);
  });
}

}  // namespace dit::cli
