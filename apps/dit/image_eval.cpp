#include "commands.h"
namespace dit::cli {
void add_image_eval(CLI::App& image) { image.add_subcommand("eval", "Evaluate samples (coming)"); }
}  // namespace dit::cli
