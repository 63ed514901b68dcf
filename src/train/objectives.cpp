// Training-objective registry: each objective registers itself in its own file.
#include <dit/registry.h>
#include <dit/train.h>

namespace dit {
namespace {
Registry<ObjectiveFactory>& objective_registry() {
  static Registry<ObjectiveFactory> objectives("training objective");
  return objectives;
}
}  // namespace

bool register_objective(const std::string& name, const std::string& description,
                        ObjectiveFactory factory) {
  return objective_registry().add(name, description, std::move(factory));
}

std::unique_ptr<TrainingObjective> make_objective(const TrainOptions& opts) {
  return objective_registry().find(opts.objective)(opts);
}

std::vector<std::pair<std::string, std::string>> list_objectives() { return objective_registry().list(); }

}  // namespace dit
