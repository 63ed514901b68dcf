// Job files: TOML in, a validated dit::jobs::Job out. Every error names the file and the key.
#include <dit/error.h>
#include <dit/jobs.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <dit/fs.h>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

namespace dit::jobs {

namespace {

// Reads typed keys of one TOML table and reports unknown ones.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string file, std::string section)
      : table_(table), file_(std::move(file)), section_(std::move(section)) {}

  std::string where(const std::string& key) const {
    return section_.empty() ? fmt::format("{}: {}", file_, key)
                            : fmt::format("{}: [{}] {}", file_, section_, key);
  }

  template <class T>
  bool get(const std::string& key, T& out) {
    known_.insert(key);
    const toml::node* node = table_.get(key);
    if (!node) return false;
    if constexpr (std::is_same_v<T, std::string>) {
      if (auto v = node->value<std::string>(); v && node->is_string()) return out = *v, true;
      throw Error(where(key) + ": must be a string");
    } else if constexpr (std::is_same_v<T, bool>) {
      if (auto v = node->value<bool>(); v && node->is_boolean()) return out = *v, true;
      throw Error(where(key) + ": must be true or false");
    } else if constexpr (std::is_integral_v<T>) {
      if (!node->is_integer()) throw Error(where(key) + ": must be an integer");
      out = static_cast<T>(*node->value<int64_t>());
      if constexpr (std::is_unsigned_v<T>)
        if (*node->value<int64_t>() < 0) throw Error(where(key) + ": must be >= 0");
      return true;
    } else {
      if (!node->is_number()) throw Error(where(key) + ": must be a number");
      out = *node->value<double>();
      if (!std::isfinite(out)) throw Error(where(key) + ": must be finite");
      return true;
    }
  }

  // A table below this one (empty when absent).
  const toml::table* table(const std::string& key) {
    known_.insert(key);
    const toml::node* node = table_.get(key);
    if (!node) return nullptr;
    if (!node->is_table()) throw Error(where(key) + ": must be a table ([" + key + "])");
    return node->as_table();
  }

  std::vector<double> numbers(const std::string& key) {
    known_.insert(key);
    std::vector<double> out;
    const toml::node* node = table_.get(key);
    if (!node) return out;
    if (!node->is_array()) throw Error(where(key) + ": must be an array of numbers");
    for (const auto& item : *node->as_array()) {
      if (!item.is_number()) throw Error(where(key) + ": must be an array of numbers");
      out.push_back(*item.value<double>());
    }
    return out;
  }

  void reject_unknown(const std::set<std::string>& also_allowed = {}) const {
    for (const auto& [key, node] : table_) {
      std::string k(key.str());
      if (!known_.count(k) && !also_allowed.count(k))
        throw Error(where(k) + ": unknown key" +
                    (section_.empty() ? "" : fmt::format(" in [{}]", section_)));
    }
  }

 private:
  const toml::table& table_;
  std::string file_, section_;
  std::set<std::string> known_;
};

void require(bool ok, const std::string& where, const std::string& what) {
  if (!ok) throw Error(where + ": " + what);
}

nlohmann::json to_json(const toml::node& node) {
  if (auto* t = node.as_table()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : *t) out[std::string(k.str())] = to_json(v);
    return out;
  }
  if (auto* a = node.as_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : *a) out.push_back(to_json(v));
    return out;
  }
  if (node.is_string()) return *node.value<std::string>();
  if (node.is_integer()) return *node.value<int64_t>();
  if (node.is_floating_point()) return *node.value<double>();
  if (node.is_boolean()) return *node.value<bool>();
  std::ostringstream s;
  node.visit([&](const auto& value) { s << value; });
  return s.str();  // dates and times: their TOML text
}

}  // namespace

nlohmann::json Job::fingerprint() const {
  const auto& o = sampler.options;
  const auto& g = sampler.guidance;
  nlohmann::json fp = {{"domain", domain},
          {"model", model},
          {"samples", samples},
          {"seed", seed},
          {"batch_size", batch_size},
          {"max_batch_tokens", max_batch_tokens},
          {"bucketing", bucketing},
          {"sampler",
           {{"name", sampler.name}, {"steps", o.steps}, {"time_grid", o.grid.name},
            {"shift", o.grid.shift}, {"atol", o.atol}, {"rtol", o.rtol},
            {"diffusion", o.diffusion}, {"cfg_scale", g.scale},
            {"cfg_interval", {g.t_lo, g.t_hi}}, {"cfg_rescale", g.rescale}}},
          {domain, domain_options}};
  if (!dtype.empty()) fp["dtype"] = dtype;  // older files (no dtype key) keep their fingerprint
  // Likewise the published-checkpoint keys, only when they differ from their defaults.
  if (g.guided_channels != -1) fp["sampler"]["cfg_channels"] = g.guided_channels;
  if (o.eta != 0.0) fp["sampler"]["eta"] = o.eta;
  if (o.noise_scale != 1.0) fp["sampler"]["noise_scale"] = o.noise_scale;
  return fp;
}

Job parse_job(const std::string& text, const std::string& path) {
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw Error(fmt::format("{}:{}:{}: {}", path, where.line, where.column, e.description()));
  }
  Job job;
  job.path = path;
  job.text = text;
  TableReader top(root, path, "");
  require(top.get("domain", job.domain), top.where("domain"), "missing (e.g. domain = \"image\")");
  if (auto names = batch_domain_names(); std::find(names.begin(), names.end(), job.domain) == names.end())
    throw Error(fmt::format("{}: unknown domain '{}' (known: {})", top.where("domain"), job.domain,
                            fmt::join(names, ", ")));
  top.get("model", job.model);
  require(top.get("samples", job.samples), top.where("samples"), "missing");
  require(job.samples >= 1 && job.samples <= kMaxJobSamples, top.where("samples"),
          fmt::format("must be in 1..{}, got {}", kMaxJobSamples, job.samples));
  top.get("seed", job.seed);
  require(top.get("output", job.output), top.where("output"), "missing (e.g. output = \"samples.h5\")");
  require(!job.output.empty(), top.where("output"), "must not be empty");
  top.get("batch_size", job.batch_size);
  require(job.batch_size >= 1 && job.batch_size <= 65536, top.where("batch_size"),
          fmt::format("must be in 1..65536, got {}", job.batch_size));
  top.get("max_batch_tokens", job.max_batch_tokens);
  require(job.max_batch_tokens >= 0, top.where("max_batch_tokens"), "must be >= 0");
  top.get("bucketing", job.bucketing);
  top.get("threads", job.threads);
  require(job.threads >= 0, top.where("threads"), "must be >= 0 (0: all cores)");
  top.get("device", job.device);  // checked where the model is placed (resolve_device)
  top.get("dtype", job.dtype);
  require(job.dtype.empty() || job.dtype == "fp32" || job.dtype == "bf16" || job.dtype == "fp16",
          top.where("dtype"), fmt::format("must be fp32, bf16 or fp16, got \"{}\"", job.dtype));

  if (const toml::table* s = top.table("sampler")) {
    TableReader r(*s, path, "sampler");
    auto& o = job.sampler.options;
    auto& g = job.sampler.guidance;
    r.get("name", job.sampler.name);
    try {
      make_sampler(job.sampler.name);
    } catch (const Error& e) {
      throw Error(r.where("name") + ": " + e.what());
    }
    r.get("steps", o.steps);
    require(o.steps >= 1 && o.steps <= 100000, r.where("steps"), fmt::format("must be in 1..100000, got {}", o.steps));
    r.get("time_grid", o.grid.name);
    r.get("shift", o.grid.shift);
    require(o.grid.shift > 0, r.where("shift"), "must be > 0");
    try {
      make_time_grid(o.grid);
    } catch (const Error& e) {
      throw Error(r.where("time_grid") + ": " + e.what());
    }
    r.get("atol", o.atol);
    r.get("rtol", o.rtol);
    require(o.atol > 0 && o.rtol > 0, r.where("atol/rtol"), "must be > 0");
    r.get("diffusion", o.diffusion);
    require(o.diffusion >= 0, r.where("diffusion"), "must be >= 0");
    r.get("noise_scale", o.noise_scale);  // euler-maruyama: < 1 samples at a lower temperature
    require(o.noise_scale >= 0, r.where("noise_scale"), "must be >= 0");
    r.get("cfg_scale", g.scale);
    require(g.scale >= 0 && g.scale <= 100, r.where("cfg_scale"), fmt::format("must be in 0..100, got {}", g.scale));
    if (auto iv = r.numbers("cfg_interval"); !iv.empty()) {
      require(iv.size() == 2 && iv[0] >= 0 && iv[0] <= iv[1] && iv[1] <= 1, r.where("cfg_interval"),
              "must be [t_lo, t_hi] with 0 <= t_lo <= t_hi <= 1");
      g.t_lo = iv[0], g.t_hi = iv[1];
    }
    r.get("cfg_rescale", g.rescale);
    require(g.rescale >= 0 && g.rescale <= 1, r.where("cfg_rescale"), "must be in 0..1");
    // Published checkpoints: guided channels (-1: the model's kind decides, dit/guidance.h) and
    // DDIM's eta.
    r.get("cfg_channels", g.guided_channels);
    require(g.guided_channels >= -1 && g.guided_channels <= 4096, r.where("cfg_channels"),
            fmt::format("must be -1 (the model's default), 0 (all) or a channel count up to 4096, got {}",
                        g.guided_channels));
    r.get("eta", o.eta);
    require(o.eta >= 0 && o.eta <= 1, r.where("eta"), fmt::format("must be in 0..1, got {}", o.eta));
    r.reject_unknown();
  }
  if (const toml::table* d = top.table(job.domain)) job.domain_options = to_json(*d);
  else job.domain_options = nlohmann::json::object();
  top.reject_unknown();
  return job;
}

Job parse_job_file(const std::string& path) {
  std::error_code ec;
  if (dit::fs::is_directory(path, ec))
    throw Error(fmt::format("{}: is a directory, expected a job file (TOML)", path));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open job file: {}", path, std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_job(text.str(), path);
}

}  // namespace dit::jobs
