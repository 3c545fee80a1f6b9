// siamrec embed: export item or user embeddings to TSV or .npy.
#include <spdlog/spdlog.h>

#include <iostream>

#include <siamrec/model.h>

#include "cli/commands.h"

namespace siamrec::cli {

Command add_embed(CLI::App& root, GlobalOptions&) {
  auto* app = root.add_subcommand("embed",
                                  "Export embeddings: FILE.tsv (id<TAB>values) or FILE.npy (float32 n x dim, "
                                  "with the ids of its rows in FILE.ids)");
  struct Opts {
    std::string model, out, what = "items";
  };
  auto o = std::make_shared<Opts>();
  app->add_option("-m,--model", o->model, "model file")->required();
  app->add_option("--out", o->out, "output .tsv or .npy")->required();
  app->add_option("--what", o->what, "items or users")->check(CLI::IsMember({"items", "users"}));
  return {app, [o]() {
            api::Model m = api::Model::load(o->model);
            const bool items = o->what == "items";
            m.write_embeddings(o->out, items);
            const api::MatrixView v = items ? m.item_embeddings_view() : m.user_embeddings_view();
            spdlog::info("wrote {} {} x {} embeddings to {}", v.rows, o->what, v.cols, o->out);
            return 0;
          }};
}

}  // namespace siamrec::cli
