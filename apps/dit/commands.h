#pragma once
// Each subcommand lives in its own file and adds itself to the CLI here.
#include <CLI/CLI.hpp>

namespace dit::cli {

void add_image_sample(CLI::App& image);
void add_image_train(CLI::App& image);
void add_image_eval(CLI::App& image);
void add_info(CLI::App& app);
void add_batch(CLI::App& app);
void add_merge(CLI::App& app);

// Checks shared by commands: the bundled default model and classifier.
std::string default_model_path();
std::string default_classifier_path();

}  // namespace dit::cli
