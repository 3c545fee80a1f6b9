// siamrec params: every config key, its type, default, allowed values (from the parameter table).
#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "config/params.h"
#include "models/model.h"

namespace siamrec::cli {

Command add_params(CLI::App& root, GlobalOptions&) {
  auto* app = root.add_subcommand("params", "List every configuration key (the table that also validates configs)");
  auto markdown = std::make_shared<bool>(false);
  app->add_flag("--markdown", *markdown, "print docs/parameters.md");
  return {app, [markdown]() {
            if (*markdown) {
              std::cout << params_markdown();
              return 0;
            }
            for (auto& p : param_table()) {
              std::cout << fmt::format("{:<22} {:<14} default {:<14} {}\n", p.key, param_type_name(p.type),
                                       p.default_value.empty() ? "(none)" : p.default_value, p.help);
              auto allowed = p.allowed_values();
              if (!allowed.empty()) std::cout << fmt::format("{:<22} allowed: {}\n", "", fmt::join(allowed, ", "));
            }
            std::cout << "\nmodels:\n";
            for (auto& n : model_names()) std::cout << fmt::format("  {:<12} {}\n", n, model_help(n));
            return 0;
          }};
}

}  // namespace siamrec::cli
