// Flow-matching training of the docking DiT (see training.h): rectified flow on ligand
// heavy-atom coordinates given the pocket (x_t = (1 - t) x0 + t eps, target eps - x0), random
// rotations of the whole complex and jitter of the box center as augmentation, AdamW with
// warmup, gradient clipping, an EMA of the weights, and resumable checkpoints.
#include "domains/docking/training.h"

#include <GraphMol/FileParsers/MolSupplier.h>
#include <dit/error.h>
#include <dit/runtime.h>
#include <dit/safetensors.h>
#include <fmt/format.h>

#include <filesystem>
#include <fstream>

namespace dit::docking {

namespace fs = std::filesystem;

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
      ex.x0 = torch::empty({static_cast<int64_t>(topology.heavy.size()), 3});
      auto x = ex.x0.accessor<float, 2>();
      for (size_t i = 0; i < topology.heavy.size(); ++i)
        for (int k = 0; k < 3; ++k)
          x[i][k] = static_cast<float>((topology.reference[topology.heavy[i]][k] - box.center[k]) / kCoordScale);
      ex.pocket = pocket_t;
      out.push_back(std::move(ex));
    }
  }
}

// A uniformly random rotation matrix [3, 3] (QR of a Gaussian matrix, signs fixed).
torch::Tensor random_rotation(torch::Generator& gen) {
  auto a = torch::randn({3, 3}, gen, torch::kFloat64);
  auto [q, r] = torch::linalg_qr(a);
  q = q * torch::sign(torch::diagonal(r)).unsqueeze(0);
  if (torch::det(q).item<double>() < 0) q.select(1, 0).neg_();
  return q.to(torch::kFloat32);
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

void train_docking_model(const DockTrainOptions& o) {
  if (o.steps < 1 || o.batch < 1) throw Error("dock-train: --steps and --batch must be positive");
  DockingModelConfig config;
  config.hidden = o.hidden, config.depth = o.depth, config.heads = o.heads;
  config.max_pocket_atoms = o.max_pocket_atoms;
  if (config.hidden % config.heads != 0)
    throw Error(fmt::format("dock-train: --hidden {} is not a multiple of --heads {}", config.hidden, config.heads));
  const auto examples = load_dock_examples(o.data_dirs, config.max_pocket_atoms);
  if (examples.empty()) throw Error("dock-train: no training poses found under --data");
  fmt::print(stderr, "dock-train: {} poses\n", examples.size());

  DockingDiT model(config);
  DockingDiT ema(config);
  {
    torch::NoGradGuard no_grad;
    auto src = ema->named_parameters();
    for (auto& p : model->named_parameters()) src[p.key()].copy_(p.value());
  }
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(o.lr).weight_decay(0.0));
  int64_t start = 0;
  const std::string optimizer_path = o.checkpoint + ".optimizer.pt";
  if (o.resume) {
    Metadata meta;
    auto tensors = load_safetensors(o.checkpoint, &meta);
    TensorMap m, e;
    for (auto& [k, v] : tensors) {
      if (k.rfind("model.", 0) == 0) m[k.substr(6)] = v;
      else if (k.rfind("ema.", 0) == 0) e[k.substr(4)] = v;
    }
    load_state_dict(*model, m, o.checkpoint);
    load_state_dict(*ema, e, o.checkpoint);
    torch::load(optimizer, optimizer_path);
    start = std::stoll(meta.at("train.step"));
    fmt::print(stderr, "dock-train: resumed at step {}\n", start);
  }
  auto save_checkpoint = [&](int64_t step) {
    TensorMap all;
    for (auto& [k, v] : state_dict(*model)) all["model." + k] = v;
    for (auto& [k, v] : state_dict(*ema)) all["ema." + k] = v;
    auto meta = config.to_metadata();
    meta["train.step"] = std::to_string(step);
    torch::save(optimizer, optimizer_path + ".tmp");
    fs::rename(optimizer_path + ".tmp", optimizer_path);
    save_safetensors(o.checkpoint, all, meta);
  };

  Progress progress("dock-train", o.steps);
  double running = 0;
  for (int64_t step = start; step < o.steps; ++step) {
    auto gen = sample_generator(o.seed, static_cast<uint64_t>(step));
    auto pick = torch::randint(static_cast<int64_t>(examples.size()), {o.batch}, gen, torch::kInt64);
    int64_t L = 0, P = 0;
    for (int64_t b = 0; b < o.batch; ++b) {
      const auto& ex = examples[pick[b].item<int64_t>()];
      L = std::max(L, ex.x0.size(0));
      P = std::max(P, ex.pocket.size(0));
    }
    auto lig = torch::zeros({o.batch, L, kLigandFeatures});
    auto x0 = torch::zeros({o.batch, L, 3});
    auto lig_mask = torch::zeros({o.batch, L});
    auto poc = torch::zeros({o.batch, P, kPocketFeatures + 3});
    auto poc_mask = torch::zeros({o.batch, P});
    for (int64_t b = 0; b < o.batch; ++b) {
      const auto& ex = examples[pick[b].item<int64_t>()];
      const int64_t l = ex.x0.size(0), p = ex.pocket.size(0);
      // Augmentation: rotate the complex about the box center, move the center.
      auto rot = random_rotation(gen);
      auto shift = torch::randn({1, 3}, gen) * static_cast<float>(o.center_jitter / kCoordScale);
      lig[b].narrow(0, 0, l).copy_(ex.ligand);
      x0[b].narrow(0, 0, l).copy_(torch::matmul(ex.x0, rot.t()) + shift);
      lig_mask[b].narrow(0, 0, l).fill_(1);
      auto pk = ex.pocket.clone();
      pk.narrow(1, kPocketFeatures, 3).copy_(torch::matmul(ex.pocket.narrow(1, kPocketFeatures, 3), rot.t()) + shift);
      poc[b].narrow(0, 0, p).copy_(pk);
      poc_mask[b].narrow(0, 0, p).fill_(1);
    }
    // Logit-normal times (Esser et al. 2024), noise, the straight path and its velocity.
    auto t = torch::sigmoid(torch::randn({o.batch}, gen));
    auto eps = torch::randn({o.batch, L, 3}, gen);
    auto tb = t.view({-1, 1, 1});
    auto xt = (1 - tb) * x0 + tb * eps;
    auto target = (eps - x0) * lig_mask.unsqueeze(-1);
    auto v = model->forward(xt, lig, lig_mask, poc, poc_mask, t);
    auto loss = (v - target).pow(2).sum() / (3 * lig_mask.sum());
    if (!std::isfinite(loss.item<double>()))
      throw Error(fmt::format("dock-train: the loss is not finite at step {} (lower --lr)", step));
    const double lr = o.lr * std::min(1.0, (step + 1.0) / o.warmup);
    for (auto& group : optimizer.param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    optimizer.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), o.grad_clip);
    optimizer.step();
    {
      torch::NoGradGuard no_grad;
      const double decay = std::min(o.ema_decay, (1.0 + step) / (10.0 + step));
      auto e = ema->named_parameters();
      for (auto& p : model->named_parameters()) e[p.key()].mul_(decay).add_(p.value(), 1 - decay);
    }
    running = step == start ? loss.item<double>() : 0.98 * running + 0.02 * loss.item<double>();
    progress.update(step + 1, fmt::format("loss {:.4f}", running));
    if ((step + 1) % o.checkpoint_every == 0 || step + 1 == o.steps) {
      save_checkpoint(step + 1);
      save_docking_model(o.output, ema, {{"train.step", std::to_string(step + 1)},
                                         {"train.poses", std::to_string(examples.size())}});
    }
  }
  progress.finish(fmt::format("loss {:.4f}", running));
}

}  // namespace dit::docking
