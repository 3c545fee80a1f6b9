// siamrec embed: export item or user embeddings to TSV or .npy.
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli/commands.h"
#include "util/strings.h"
#include "models/model_file.h"
#include "tasks/embeddings.h"
#include "util/error.h"
#include "util/io.h"

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
            TrainedModel m = load_model_file(o->model);
            int dim = 0;
            const float* e = o->what == "items" ? m.model->item_embeddings(&dim) : m.model->user_embeddings(&dim);
            if (!e)
              throw Error(fmt::format("model type '{}' has no {} embeddings", m.model->type(), o->what), kExitUsage);
            const auto& ids = o->what == "items" ? m.items.ids() : m.users.ids();
            bool npy = o->out.size() > 4 && o->out.substr(o->out.size() - 4) == ".npy";
            if (npy) {
              write_npy(o->out, e, static_cast<int64_t>(ids.size()), dim);
              std::string list;
              for (auto& id : ids) list += printable(id) + "\n";  // one id per line, whatever the id holds
              atomic_write(o->out.substr(0, o->out.size() - 4) + ".ids", list);
            } else {
              write_embedding_tsv(o->out, ids, e, dim);
            }
            spdlog::info("wrote {} {} x {} embeddings to {}", ids.size(), o->what, dim, o->out);
            return 0;
          }};
}

}  // namespace siamrec::cli
