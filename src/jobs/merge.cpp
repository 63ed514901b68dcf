// dit merge: shard files of one job -> one file with every sample once, in index order.
#include <dit/error.h>
#include <dit/files.h>
#include <dit/jobs.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

#include <algorithm>
#include <dit/fs.h>

namespace dit::jobs {

void merge_outputs(const std::vector<std::string>& inputs, const std::string& output) {
  if (inputs.empty()) throw Error("merge: no input files");
  std::vector<h5md::File> files;
  for (const auto& path : inputs) {
    if (dit::fs::absolute(path) == dit::fs::absolute(output))
      throw Error(fmt::format("merge: output {} is also an input", output));
    files.emplace_back(path, h5md::Mode::Read);
  }
  auto fingerprint_of = [](const h5md::File& f) {
    auto fp = f.string_attribute("parameters/job", "fingerprint");
    if (!fp) throw Error(fmt::format("{}: attribute parameters/job/fingerprint missing: not a dit batch output", f.path()));
    return *fp;
  };
  const std::string fingerprint = fingerprint_of(files[0]);
  auto job = nlohmann::json::parse(fingerprint, nullptr, false);
  if (job.is_discarded() || !job.is_object() || !job.contains("samples") ||
      !job["samples"].is_number_integer() || !job.contains("seed") || !job["seed"].is_number_unsigned())
    throw Error(fmt::format("{}: parameters/job/fingerprint is not valid job JSON (an object with "
                            "integer 'samples' and 'seed')", inputs[0]));
  const int64_t total = job["samples"].get<int64_t>();
  if (total < 1 || total > kMaxJobSamples)
    throw Error(fmt::format("{}: parameters/job/fingerprint: samples = {} is outside 1..{}", inputs[0],
                            total, kMaxJobSamples));
  const uint64_t job_seed = job["seed"].get<uint64_t>();

  // Where every sample is: (file, row). Exactly once each.
  std::vector<std::pair<int, int64_t>> where(static_cast<size_t>(total), {-1, -1});
  std::vector<int64_t> row_offset;  // first row of each file in the concatenation
  int64_t rows_so_far = 0;
  const auto datasets = files[0].extendable_datasets();
  for (size_t f = 0; f < files.size(); ++f) {
    if (fingerprint_of(files[f]) != fingerprint)
      throw Error(fmt::format("merge: {} comes from a different job than {}", inputs[f], inputs[0]));
    if (files[f].extendable_datasets() != datasets)
      throw Error(fmt::format("merge: {} holds other datasets than {}", inputs[f], inputs[0]));
    auto idx = files[f].read("samples/index");
    if (idx.dim() != 1 || idx.scalar_type() != torch::kInt64)
      throw Error(fmt::format("{}: 'samples/index' must be [N] int64, is [{}] {}", inputs[f],
                              fmt::join(idx.sizes(), ", "), c10::toString(idx.scalar_type())));
    // Every per-sample dataset has one row per sample, of the same type and inner shape in
    // every file (a shard cut by a crash holds fewer rows in some datasets).
    for (const auto& name : datasets) {
      const auto shape = files[f].shape(name), first = files[0].shape(name);
      if (shape.empty() || shape[0] != idx.numel())
        throw Error(fmt::format("{}: '{}' has {} rows for the {} samples of samples/index: "
                                "incomplete or damaged", inputs[f], name,
                                shape.empty() ? 0 : shape[0], idx.numel()));
      const auto type = files[f].read(name, 0, 0).scalar_type();
      const auto first_type = files[0].read(name, 0, 0).scalar_type();
      if (!std::equal(shape.begin() + 1, shape.end(), first.begin() + 1, first.end()) || type != first_type)
        throw Error(fmt::format("merge: '{}' is [{}] {} in {} but [{}] {} in {}", name,
                                fmt::join(shape.begin() + 1, shape.end(), ", "), c10::toString(type),
                                inputs[f], fmt::join(first.begin() + 1, first.end(), ", "),
                                c10::toString(first_type), inputs[0]));
    }
    const auto seeds = files[f].read("samples/seed");
    if (seeds.scalar_type() != torch::kInt64)
      throw Error(fmt::format("{}: 'samples/seed' must be uint64", inputs[f]));
    const auto* k = idx.data_ptr<int64_t>();
    const auto* seed = seeds.data_ptr<int64_t>();
    for (int64_t r = 0; r < idx.numel(); ++r) {
      if (k[r] < 0 || k[r] >= total)
        throw Error(fmt::format("{}: sample index {} out of range 0..{}", inputs[f], k[r], total - 1));
      if (static_cast<uint64_t>(seed[r]) != mix_seed(job_seed, static_cast<uint64_t>(k[r])))
        throw Error(fmt::format("{}: samples/seed of sample {} is not the job's seed for it", inputs[f], k[r]));
      auto& slot = where[static_cast<size_t>(k[r])];
      if (slot.first >= 0)
        throw Error(fmt::format("merge: sample {} is in both {} and {}", k[r], inputs[slot.first], inputs[f]));
      slot = {static_cast<int>(f), r};
    }
    row_offset.push_back(rows_so_far);
    rows_so_far += idx.numel();
  }
  std::vector<int64_t> missing;
  for (int64_t k = 0; k < total; ++k)
    if (where[static_cast<size_t>(k)].first < 0) missing.push_back(k);
  if (!missing.empty())
    throw Error(fmt::format("merge: {} of {} samples are missing (first: {}) from {}; run the "
                            "shards that hold them to completion",
                            missing.size(), total,
                            fmt::join(missing.begin(), missing.begin() + std::min<size_t>(missing.size(), 8), ", "),
                            fmt::join(inputs, ", ")));
  auto order = torch::empty({total}, torch::kInt64);
  for (int64_t k = 0; k < total; ++k) {
    const auto& [f, r] = where[static_cast<size_t>(k)];
    order[k] = row_offset[static_cast<size_t>(f)] + r;
  }

  AtomicOutput merged(output);
  {  // the file is closed before the rename
    h5md::File out(merged.temp_path(), h5md::Mode::Scratch);
    for (const auto& child : files[0].children(""))
      if (child != "h5md") out.copy_from(files[0], child);
    out.truncate_rows("", 0);
    for (const auto& name : datasets) {
      std::vector<torch::Tensor> parts;
      for (size_t f = 0; f < files.size(); ++f) {
        parts.push_back(files[f].read(name));
        // A sample flagged valid has finite pixels (the runner flags non-finite ones invalid).
        if (name == "images/value" && parts.back().is_floating_point() && parts.back().dim() >= 2) {
          auto bad = ~torch::isfinite(parts.back()).flatten(1).all(1) & files[f].read("samples/valid").ne(0);
          if (bad.any().item<bool>())
            throw Error(fmt::format("{}: sample {} is flagged valid but its images/value holds NaN or Inf",
                                    inputs[f], files[f].read("samples/index")[bad.nonzero()[0][0]].item<int64_t>()));
        }
      }
      auto rows = torch::cat(parts).index_select(0, order);
      const bool seeds = name == "samples/seed";  // stored as uint64
      out.append_rows(name, rows, 1024, seeds);
    }
    out.set_attribute("parameters/job", "shard_index", int64_t{0});
    out.set_attribute("parameters/job", "shard_count", int64_t{1});
    out.set_attribute("parameters/job", "merged_from", inputs);
    out.flush();
  }
  merged.commit();  // an error before this leaves no OUTPUT: `merged` removes the temporary
}

}  // namespace dit::jobs
