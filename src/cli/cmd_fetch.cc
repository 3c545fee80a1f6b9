// siamrec fetch: download, verify and unpack an official GroupLens archive.
#include <iostream>

#include "cli/commands.h"
#include "data/fetch.h"

namespace siamrec::cli {

Command add_fetch(CLI::App& root, GlobalOptions& g) {
  auto* app = root.add_subcommand("fetch",
                                  "Download a dataset's official archive (ml-100k, ml-1m, ml-latest-small), "
                                  "verify its SHA-256 and unpack it into the data directory");
  struct Opts {
    std::string name, archive;
    bool force = false;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("name", o->name, "dataset name")->required();
  app->add_option("--archive", o->archive, "use a local copy of the official archive instead of downloading");
  app->add_flag("--force", o->force, "fetch again even if the files are present");
  return {app, [o, &g]() {
            FetchOptions fo;
            fo.data_dir_flag = g.data_dir;
            fo.force = o->force;
            fo.archive_path = o->archive;
            std::cout << fetch_dataset(o->name, fo) << "\n";
            return 0;
          }};
}

}  // namespace siamrec::cli
