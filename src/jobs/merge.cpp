// dit merge: shard files of one job -> one file with every sample once, in index order.
#include <dit/error.h>
#include <dit/jobs.h>
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>

namespace dit::jobs {

void merge_outputs(const std::vector<std::string>& inputs, const std::string& output) {
  if (inputs.empty()) throw Error("merge: no input files");
  std::vector<h5md::File> files;
  for (const auto& path : inputs) {
    if (std::filesystem::absolute(path) == std::filesystem::absolute(output))
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
  if (job.is_discarded() || !job.contains("samples"))
    throw Error(fmt::format("{}: parameters/job/fingerprint is not valid job JSON", inputs[0]));
  const int64_t total = job["samples"].get<int64_t>();

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
    const auto* k = idx.data_ptr<int64_t>();
    for (int64_t r = 0; r < idx.numel(); ++r) {
      if (k[r] < 0 || k[r] >= total)
        throw Error(fmt::format("{}: sample index {} out of range 0..{}", inputs[f], k[r], total - 1));
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
    throw Error(fmt::format("merge: {} of {} samples are missing (first: {}); run the shards that "
                            "hold them to completion",
                            missing.size(), total,
                            fmt::join(missing.begin(), missing.begin() + std::min<size_t>(missing.size(), 8), ", ")));
  auto order = torch::empty({total}, torch::kInt64);
  for (int64_t k = 0; k < total; ++k) {
    const auto& [f, r] = where[static_cast<size_t>(k)];
    order[k] = row_offset[static_cast<size_t>(f)] + r;
  }

  const std::string tmp = output + ".tmp";
  try {
    {
      h5md::File out(tmp, h5md::Mode::Scratch);
      for (const auto& child : files[0].children(""))
        if (child != "h5md") out.copy_from(files[0], child);
      out.truncate_rows("", 0);
      for (const auto& name : datasets) {
        std::vector<torch::Tensor> parts;
        for (auto& f : files) parts.push_back(f.read(name));
        auto rows = torch::cat(parts).index_select(0, order);
        const bool seeds = name == "samples/seed";  // stored as uint64
        out.append_rows(name, rows, 1024, seeds);
      }
      out.set_attribute("parameters/job", "shard_index", int64_t{0});
      out.set_attribute("parameters/job", "shard_count", int64_t{1});
      out.set_attribute("parameters/job", "merged_from", inputs);
      out.flush();
    }
    std::filesystem::rename(tmp, output);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

}  // namespace dit::jobs
