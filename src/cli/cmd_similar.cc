// siamrec similar: the items most similar to an item (the model's comparator over item embeddings,
// or the neighbourhood of kNN models).
#include <iostream>

#include "cli/commands.h"
#include "models/model_file.h"
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
            TrainedModel m = load_model_file(o->model);
            int32_t i = m.items.find(o->item);
            if (i < 0)
              throw Error(fmt::format("item '{}' is not in model '{}' ({} items)", o->item, o->model, m.items.size()),
                          kExitUsage);
            std::vector<std::pair<int32_t, float>> out;
            if (!m.model->similar_items(i, o->k, out))
              throw Error(fmt::format("model type '{}' has no item similarity (use itemknn or a siamese model)",
                                      m.model->type()),
                          kExitUsage);
            auto title = [&](int32_t x) {
              return x < static_cast<int32_t>(m.item_titles.size()) ? m.item_titles[x] : std::string();
            };
            std::cout << fmt::format("# items most similar to {} {} (model {})\n", o->item, title(i), m.model->type());
            std::cout << "rank\titem\tscore\ttitle\n";
            for (size_t r = 0; r < out.size(); ++r)
              std::cout << fmt::format("{}\t{}\t{:.6g}\t{}\n", r + 1, m.items.original(out[r].first), out[r].second,
                                       title(out[r].first));
            return 0;
          }};
}

}  // namespace siamrec::cli
