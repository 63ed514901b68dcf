// Training data of the docking network (see training.h) and `dit dock-train`: ligand poses in
// their pockets as token sets for the one trainer (dit/train.h: objectives, AdamW, EMA,
// bit-identical resume), with random rotations of the whole complex and jitter of the box
// center as augmentation.
#include "domains/docking/training.h"

#include <GraphMol/FileParsers/MolSupplier.h>
#include <dit/error.h>
#include <dit/runtime.h>
#include <dit/safetensors.h>
#include <dit/train.h>
#include <fmt/format.h>

#include <dit/fs.h>
#include <fstream>

namespace dit::docking {

namespace fs = dit::fs;

namespace {
Box read_box_file(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) throw Error(fmt::format("{}: cannot read the box", path));
  return Box::parse(line, path);
}

void add_examples(const fs::path& dir, int64_t max_pocket_atoms, std::vector<DockExample>& out) {
  const auto box = read_box_file((dir / "box.txt").string());
  const auto receptor = read_receptor((dir / "receptor.pdb").string());
  const auto pocket = pocket_atoms(receptor, box, 8.0);
  const auto pocket_t = pocket_tokens(pocket, box, max_pocket_atoms);
  for (const char* name : {"crystal.sdf", "poses.sdf"}) {
    const auto path = dir / name;
    if (!fs::exists(path)) continue;
    auto reader = LigandReader::from_file(path.string());
    LigandRecord record;
    while (reader.next(record)) {
      if (!record.mol) {
        fmt::print(stderr, "dock-train: skipped {}\n", record.error);
        continue;
      }
      const auto topology = build_topology(*record.mol);
      DockExample ex;
      ex.source = fmt::format("{} record {}", path.string(), record.index + 1);
      ex.ligand = ligand_features(*record.mol, topology);
      ex.x0 = ligand_state(topology, topology.reference, box);
      ex.pocket = pocket_t;
      out.push_back(std::move(ex));
    }
  }
}

}  // namespace

std::vector<DockExample> load_dock_examples(const std::vector<std::string>& dirs, int64_t max_pocket_atoms) {
  std::vector<DockExample> out;
  for (const auto& root : dirs) {
    if (!fs::is_directory(root)) throw Error(fmt::format("--data {}: not a directory", root));
    std::vector<fs::path> complexes;
    for (const auto& entry : fs::directory_iterator(root))
      if (entry.is_directory() && fs::exists(entry.path() / "receptor.pdb")) complexes.push_back(entry.path());
    std::sort(complexes.begin(), complexes.end());
    for (const auto& dir : complexes) {
      try {
        add_examples(dir, max_pocket_atoms, out);
      } catch (const std::exception& e) {
        fmt::print(stderr, "dock-train: skipped {}: {}\n", dir.string(), e.what());
      }
    }
  }
  return out;
}

DockingData::DockingData(std::vector<DockExample> examples, double center_jitter)
    : examples_(std::move(examples)), center_jitter_(center_jitter) {}

TrainBatch DockingData::get(const torch::Tensor& index, at::Generator& gen) const {
  const int64_t B = index.size(0);
  int64_t L = 0, P = 0;
  for (int64_t b = 0; b < B; ++b) {
    const auto& ex = examples_.at(index[b].item<int64_t>());
    L = std::max(L, ex.x0.size(0));
    P = std::max(P, ex.pocket.size(0));
  }
  TrainBatch batch;
  batch.x0 = torch::zeros({B, L, 3});
  auto& in = batch.inputs;
  in.features = torch::zeros({B, L, kLigandFeatures});
  in.mask = torch::zeros({B, L}, torch::kBool);
  in.context = torch::zeros({B, P, kPocketFeatures + 3});
  in.context_mask = torch::zeros({B, P}, torch::kBool);
  for (int64_t b = 0; b < B; ++b) {
    const auto& ex = examples_[index[b].item<int64_t>()];
    const int64_t l = ex.x0.size(0), p = ex.pocket.size(0);
    // Augmentation: rotate the complex about the box center, move the center.
    auto rot = random_rotation(gen);
    auto shift = at::randn({1, 3}, gen, torch::TensorOptions().dtype(torch::kFloat32)) *
                 static_cast<float>(center_jitter_ / kCoordScale);
    in.features[b].narrow(0, 0, l).copy_(ex.ligand);
    batch.x0[b].narrow(0, 0, l).copy_(torch::matmul(ex.x0, rot.t()) + shift);
    in.mask[b].narrow(0, 0, l).fill_(true);
    auto pk = ex.pocket.clone();
    pk.narrow(1, kPocketFeatures, 3).copy_(torch::matmul(ex.pocket.narrow(1, kPocketFeatures, 3), rot.t()) + shift);
    in.context[b].narrow(0, 0, p).copy_(pk);
    in.context_mask[b].narrow(0, 0, p).fill_(true);
  }
  return batch;
}

void train_docking_model(const DockTrainOptions& o) {
  if (o.steps < 1 || o.batch < 1) throw Error("dock-train: --steps and --batch must be positive");
  TrainOptions opts;
  opts.steps = o.steps, opts.batch_size = o.batch, opts.lr = o.lr, opts.lr_schedule = "constant";
  opts.warmup_steps = o.warmup, opts.grad_clip = o.grad_clip, opts.ema_decay = o.ema_decay;
  opts.seed = o.seed, opts.label_dropout = 0, opts.objective = o.objective;
  const bool few_step = make_objective(opts)->needs_step_conditioning();
  auto model = make_docking_model(o.hidden, o.depth, o.heads, o.max_pocket_atoms, few_step);
  auto examples = load_dock_examples(o.data_dirs, model.max_pocket_atoms);
  if (examples.empty()) throw Error("dock-train: no training poses found under --data");
  const auto poses = examples.size();
  fmt::print(stderr, "dock-train: {} poses\n", poses);

  FlowMatchingTrainer trainer(model.net.ptr(),
                              std::make_shared<DockingData>(std::move(examples), o.center_jitter), opts);
  TrainRun run;
  run.label = "dock-train";
  run.checkpoint = o.checkpoint;
  run.checkpoint_every = o.checkpoint_every;
  run.resume = o.resume;
  run.save_model = [&](FlowMatchingTrainer& t) {
    DockingModel ema{TokenDiT(std::static_pointer_cast<TokenDiTImpl>(t.ema_net())), model.max_pocket_atoms};
    save_docking_model(o.output, ema, {{"train.step", std::to_string(t.current_step())},
                                       {"train.poses", std::to_string(poses)}});
  };
  const auto result = run_training(trainer, run);
  fmt::print(stderr, "dock-train: {} at step {}: {}, {}\n", result.stopped ? "stopped" : "finished",
             result.step, o.output, o.checkpoint);
}

}  // namespace dit::docking
