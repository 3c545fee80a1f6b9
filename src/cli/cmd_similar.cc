// siamrec similar: the items most similar to an item (the model's comparator over item embeddings,
// or the neighbourhood of kNN models).
#include <iostream>

#include "cli/commands.h"
#include "util/strings.h"
#include <siamrec/model.h>

#include "util/error.h"

namespace siamrec::cli {

Command add_similar(CLI::App& root, GlobalOptions&) {
  auto* app = root.add_subcommand("similar", "Items most similar to an item, by the model's own similarity");
  struct Opts {
    std::string model, item;
    int k = 10;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("-m,--model", o->model, "model file")->required();
  app->add_option("--item", o->item, "original item id")->required();
  app->add_option("-k,--k", o->k, "how many")->check(CLI::Range(1, 100000));
  return {app, [o]() {
            api::Model m = api::Model::load(o->model);
            auto out = m.similar(o->item, o->k);
            std::cout << fmt::format("# items most similar to {} {} (model {})\n", printable(o->item),
                                     printable(m.item_title(o->item)), m.type());
            std::cout << "rank\titem\tscore\ttitle\n";
            for (size_t r = 0; r < out.size(); ++r)
              std::cout << fmt::format("{}\t{}\t{:.6g}\t{}\n", r + 1, printable(out[r].item), out[r].score,
                                       printable(m.item_title(out[r].item)));
            return 0;
          }};
}

}  // namespace siamrec::cli
