// siamrec info: dataset summary.
#include <iostream>

#include "cli/commands.h"
#include "data/registry.h"
#include "data/summary.h"
#include "util/io.h"
#include "util/paths.h"

namespace siamrec::cli {

Command add_info(CLI::App& root, GlobalOptions& g) {
  auto* app = root.add_subcommand("info",
                                  "Print a dataset summary (users, items, interactions, density, "
                                  "rating histogram, time range, popularity concentration)");
  struct Opts {
    std::string dataset;
    bool json = false, list = false;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("-d,--dataset", o->dataset, "registered dataset name (see --list)");
  app->add_flag("--json", o->json, "print JSON instead of a table");
  app->add_flag("--list", o->list, "list the registered datasets and whether they are present");
  return {app, [o, &g]() {
            if (o->list || o->dataset.empty()) {
              std::string dir = resolve_data_dir(g.data_dir);
              std::cout << "data directory: " << dir << " (" << data_dir_origin(g.data_dir) << ")\n";
              for (auto* sp : dataset_registry()) {
                const DatasetSpec& s = *sp;
                bool present = true;
                for (auto& f : s.files) present &= file_exists(dir + "/" + f);
                std::cout << fmt::format("  {:<16} {:<8} {}\n", s.name, present ? "present" : "missing", s.description);
              }
              if (o->dataset.empty() && !o->list) {
                std::cerr << "info: give --dataset NAME\n";
                return 2;
              }
              return 0;
            }
            LoadOptions lo;
            lo.data_dir_flag = g.data_dir;
            lo.read.skip_bad_lines = g.skip_bad_lines;
            Dataset ds = load_dataset(o->dataset, lo);
            auto s = summarize(ds);
            if (o->json)
              std::cout << summary_json(s).dump(2) << "\n";
            else
              std::cout << summary_text(s);
            return 0;
          }};
}

}  // namespace siamrec::cli
