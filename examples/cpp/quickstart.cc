// siamrec's public C++ API end to end: load MovieLens-100K, split it (ua), fit a model from a
// config, evaluate it, recommend for a user, find similar items, save and load the model file.
// Built against the installed package (find_package(siamrec)); see examples/cpp/CMakeLists.txt.
//
//   quickstart [CONFIG.yaml] [key=value ...]      (default: model.type=itemknn on ml-100k ua)
#include <siamrec/siamrec.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  try {
    siamrec::api::ConfigSource cfg;
    int a = 1;
    if (argc > 1 && std::string(argv[1]).find('=') == std::string::npos)
      cfg.file = argv[a++];
    else
      cfg.set = {"data.dataset=ml-100k", "split.type=fixed", "split.name=ua", "model.type=itemknn", "eval.k=10"};
    for (; a < argc; ++a) cfg.set.push_back(argv[a]);

    siamrec::api::Dataset data = siamrec::api::Dataset::from_config(cfg);
    siamrec::api::Split split = data.split(cfg);
    std::cout << "data: " << data.protocol() << "\nsplit: " << split.protocol << "\n";

    siamrec::api::Model model = siamrec::api::Model::create(cfg);
    siamrec::api::FitOptions fo;
    fo.on_epoch = [](const siamrec::api::EpochProgress& p) {
      std::cout << "epoch " << p.epoch << "/" << p.epochs << " loss " << p.loss << "\n";
      return true;  // false would stop training here
    };
    model.fit(split.train, split.valid, fo);

    siamrec::api::Evaluation e = model.evaluate(split.test);
    std::cout << e.table;
    std::cout << "ndcg@10 " << e.get("ndcg@10") << "\n";

    std::string user = data.user_id(0);
    std::cout << "top-5 for user " << user << ":";
    for (const auto& r : model.recommend(user, 5)) std::cout << " " << r.item;
    std::cout << "\nsimilar to item " << data.item_id(0) << ":";
    for (const auto& r : model.similar(data.item_id(0), 5)) std::cout << " " << r.item;
    std::cout << "\n";

    model.save("quickstart.model");
    siamrec::api::Model again = siamrec::api::Model::load("quickstart.model");
    bool same = again.recommend(user, 5).size() == 5;
    for (size_t j = 0; same && j < 5; ++j) same = again.recommend(user, 5)[j].item == model.recommend(user, 5)[j].item;
    std::cout << "saved and loaded: " << (same ? "same recommendations" : "DIFFERENT recommendations") << "\n";
    std::remove("quickstart.model");
    return same ? 0 : 1;
  } catch (const siamrec::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return e.exit_code();
  }
}
