// dit image eval: class accuracy and Frechet distance (classifier features) of generated
// Fashion-MNIST images, for one sampler setting or a table of samplers x steps.
#include <dit/error.h>
#include <dit/eval.h>
#include <dit/image.h>
#include <fmt/format.h>

#include <dit/fs.h>
#include <dit/guidance.h>
#include <dit/sampler.h>

#include <fstream>
#include <sstream>

#include "commands.h"

namespace dit::cli {

namespace {
struct EvalArgs {
  std::string model, classifier, dataset = "fashion-mnist", data_root, out;
  std::string sampler;  // empty: --rows, or the default table
  std::vector<std::string> rows;  // "sampler:steps" (steps 0: adaptive)
  int steps = 30, threads = 0, classifier_epochs = 12;
  int64_t per_class = 100;
  std::vector<double> cfg_scales{kAutoCfgScale};  // one table row per sampler row and scale
  std::vector<double> cfg_interval{0.0, 1.0};
  double cfg_rescale = 0.0, atol = 1e-3, rtol = 1e-3;
  uint64_t seed = 1234;
  bool train_classifier = false, classifier_only = false;
};

struct Row {
  std::string sampler;
  int steps;  // 0 for adaptive
};

std::vector<Row> default_table(const DiTConfig& c) {
  if (c.step_conditioning)  // few-step models: their samplers at 1-8 steps
    return {{"flowmap", 1}, {"flowmap", 2}, {"flowmap", 4}, {"flowmap", 8},
            {"flowmap-renoise", 2}, {"flowmap-renoise", 4}};
  return {{"euler", 4},  {"euler", 8}, {"euler", 16}, {"euler", 32}, {"euler", 64},
          {"heun", 8},   {"heun", 16}, {"heun", 32},  {"dopri5", 0}};
}

std::vector<Row> parse_rows(const std::vector<std::string>& specs) {
  std::vector<Row> rows;
  for (const auto& spec : specs) {
    auto colon = spec.find(':');
    int steps = -1;
    if (colon != std::string::npos) {
      try {
        size_t used = 0;
        steps = std::stoi(spec.substr(colon + 1), &used);
        if (used != spec.size() - colon - 1) steps = -1;
      } catch (const std::exception&) {
      }
    }
    if (colon == std::string::npos || colon == 0 || steps < 0 || steps > 10000)
      throw Error(fmt::format("--rows: '{}' is not SAMPLER:STEPS (steps 0-10000, 0 = adaptive)", spec));
    rows.push_back({spec.substr(0, colon), steps});
  }
  return rows;
}

// "3", or "3 in [0.2,0.8]" when guidance is limited to an interval, "+ rescale 0.7".
std::string describe_guidance(const GuidanceOptions& g) {
  std::string out = fmt::format("{:g}", g.scale);
  if (g.scale != 1.0 && (g.t_lo > 0.0 || g.t_hi < 1.0)) out += fmt::format(" in [{:g},{:g}]", g.t_lo, g.t_hi);
  if (g.scale != 1.0 && g.rescale > 0.0) out += fmt::format(", rescale {:g}", g.rescale);
  return out;
}

// Network passes per image: guidance doubles the batch at the times it is active; with an
// interval only some evaluations are doubled, which the sampler statistics do not record.
std::string network_passes(const GuidanceOptions& g, int nfe) {
  if (g.scale == 1.0) return std::to_string(nfe);
  if (g.t_lo <= 0.0 && g.t_hi >= 1.0) return std::to_string(2 * nfe);
  return fmt::format("{}-{}", nfe, 2 * nfe);
}

void run_eval(const EvalArgs& a) {
  int threads = set_threads(a.threads);
  const std::string model_path = a.model.empty() ? default_model_path() : a.model;
  const std::string clf_path = a.classifier.empty() ? default_classifier_path() : a.classifier;
  DiT model = load_dit(model_path);
  const auto& c = model->config();
  if (c.num_classes <= 0) throw Error(fmt::format("{}: eval needs a class-conditional model", model_path));

  auto train = load_image_dataset(a.dataset, "train", a.data_root);
  auto test = load_image_dataset(a.dataset, "test", a.data_root);
  auto train_x = images_to_model_space(train.images), test_x = images_to_model_space(test.images);

  ImageClassifier clf{nullptr};
  if (a.train_classifier || !dit::fs::exists(clf_path)) {
    fmt::print(stderr, "training the evaluation classifier ({} epochs) -> {}\n", a.classifier_epochs, clf_path);
    Progress p("classifier", 0);
    clf = train_classifier(train_x, train.labels, a.classifier_epochs, 0, p);
    if (auto dir = dit::fs::path(clf_path).parent_path(); !dir.empty())
      dit::fs::create_directories(dir);
    save_classifier(clf_path, clf);
  } else {
    clf = load_classifier(clf_path);
  }
  torch::NoGradGuard no_grad;
  double test_acc = classifier_accuracy(clf, test_x, test.labels);
  auto test_feats = classifier_features(clf, test_x);
  // Floor: a real sample of the same size as the generated set, from the train split.
  const int64_t n_gen = a.per_class * c.num_classes;
  auto floor_idx = at::randperm(train_x.size(0), sample_generator(a.seed, 0),
                                torch::TensorOptions().dtype(torch::kLong)).narrow(0, 0, n_gen);
  double floor_fd = frechet_distance(classifier_features(clf, train_x.index_select(0, floor_idx)), test_feats);

  if (a.classifier_only) {
    fmt::print("classifier {}: test accuracy {:.2f}%, floor FD ({} train vs test) {:.2f}\n", clf_path,
               100 * test_acc, n_gen, floor_fd);
    return;
  }
  auto labels = torch::arange(c.num_classes, torch::kLong).repeat_interleave(a.per_class);
  std::vector<Row> rows = !a.sampler.empty() ? std::vector<Row>{{a.sampler, a.steps}}
                          : !a.rows.empty()   ? parse_rows(a.rows)
                                              : default_table(c);

  // NFE: velocity (or flow-map) evaluations per image; network passes count both halves of
  // classifier-free guidance.
  std::ostringstream table;
  table << "| sampler | steps | CFG scale | NFE | network passes | class accuracy | FD (classifier features) | ms / image |\n";
  table << "|---|---|---|---|---|---|---|---|\n";
  for (const auto& row : rows) {
    for (double cfg_scale : a.cfg_scales) {
      ImageSampling s;
      s.sampler = row.sampler, s.seed = a.seed;
      s.options.steps = row.steps > 0 ? row.steps : 10;
      s.options.atol = a.atol, s.options.rtol = a.rtol;
      s.guidance.scale = resolve_cfg_scale(cfg_scale, make_sampler(row.sampler)->uses_flow_map(), model->prediction());
      s.guidance.t_lo = a.cfg_interval[0], s.guidance.t_hi = a.cfg_interval[1];
      s.guidance.rescale = a.cfg_rescale;
      SampleStats stats;
      Progress progress(fmt::format("{} {}", row.sampler, row.steps), 0);
      auto t0 = std::chrono::steady_clock::now();
      auto images = generate_images(model, labels, s, progress, &stats);
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      progress.finish();
      auto clamped = images.clamp(-1, 1);  // what a PNG would hold
      double acc = classifier_accuracy(clf, clamped, labels);
      double fd = frechet_distance(classifier_features(clf, clamped), test_feats);
      std::string steps = row.steps > 0 ? std::to_string(row.steps)
                                        : fmt::format("adaptive (tol {:g})", a.atol);
      std::string line = fmt::format("| {} | {} | {} | {} | {} | {:.1f}% | {:.2f} | {:.1f} |\n",
                                     row.sampler, steps, describe_guidance(s.guidance), stats.nfe,
                                     network_passes(s.guidance, stats.nfe), 100 * acc, fd, ms / n_gen);
      fmt::print("{}", line);
      std::fflush(stdout);
      table << line;
    }
  }
  std::ostringstream report;
  report << fmt::format(
      "Model: {} ({})\nSamples: {} per class ({} images), seed {}, {} threads\n"
      "Classifier: {} (accuracy on the real test set {:.1f}%)\n"
      "Floor: FD of {} real train images vs the test set = {:.2f}\n\n",
      model_path, c.describe(), a.per_class, n_gen, a.seed, threads, clf_path,
      100 * test_acc, n_gen, floor_fd);
  report << table.str();
  fmt::print("\n{}", report.str());
  if (!a.out.empty()) {
    write_file_atomic(a.out, report.str());
    fmt::print(stderr, "wrote {}\n", a.out);
  }
}
}  // namespace

void add_image_eval(CLI::App& image) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = image.add_subcommand(
      "eval", "Class accuracy and classifier-feature FD of generated images (sampler x steps table)");
  cmd->add_option("-m,--model", a->model, "Model file; default: bundled model");
  cmd->add_option("--classifier", a->classifier, "Classifier weights; default: bundled (trained if missing)");
  cmd->add_flag("--train-classifier", a->train_classifier, "Retrain the classifier and save it to --classifier");
  cmd->add_flag("--classifier-only", a->classifier_only, "Only train/load the classifier and report its test accuracy");
  cmd->add_option("--classifier-epochs", a->classifier_epochs, "Epochs when training the classifier")->capture_default_str();
  cmd->add_option("--dataset", a->dataset, "fashion-mnist or mnist")->capture_default_str()
      ->check(CLI::IsMember({"fashion-mnist", "mnist"}));
  cmd->add_option("--data-root", a->data_root, "Directory of the IDX files");
  cmd->add_option("--per-class", a->per_class, "Generated images per class")->capture_default_str()->check(CLI::Range(2, 100000));
  cmd->add_option("--sampler", a->sampler, "Evaluate one sampler (default: the full table)");
  cmd->add_option("--steps", a->steps, "Steps for --sampler")->capture_default_str()->check(CLI::Range(1, 10000));
  cmd->add_option("--rows", a->rows, "Table rows SAMPLER:STEPS,... (0 steps: adaptive)")->delimiter(',');
  cmd->add_option("--cfg-scale", a->cfg_scales, "Guidance scale, or a list (one row each; default as dit image sample: 2 for our models, 1 for flowmap samplers)")
      ->delimiter(',')->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--cfg-interval", a->cfg_interval, "Guidance only for t in [lo,hi] (t = 1 noise)")->delimiter(',')->expected(2)->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--cfg-rescale", a->cfg_rescale, "Guidance rescale phi in [0,1]")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--atol", a->atol, "dopri5 tolerance (atol)")->capture_default_str();
  cmd->add_option("--rtol", a->rtol, "dopri5 tolerance (rtol)")->capture_default_str();
  cmd->add_option("-s,--seed", a->seed, "Seed")->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "Threads (0: all cores)")->capture_default_str();
  cmd->add_option("-o,--out", a->out, "Write the report (markdown) here");
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace dit::cli
