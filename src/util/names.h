// Torch-free view of the registries: which names exist for each kind ("tower", "comparator",
// "loss", "builder", "sampler", "optimizer", "model"), so the parameter table and --help can list
// them without including the engine.
#pragma once
#include <string>
#include <vector>

namespace siamrec {

bool register_name(const std::string& kind, const std::string& name, const std::string& help);
std::vector<std::string> registered_names(const std::string& kind);
std::string registered_help(const std::string& kind, const std::string& name);

}  // namespace siamrec
