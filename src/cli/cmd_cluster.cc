// siamrec cluster: k-means on item embeddings, with the most popular members of each cluster.
#include <algorithm>
#include <iostream>

#include <siamrec/model.h>

#include "cli/commands.h"
#include "util/io.h"

namespace siamrec::cli {

Command add_cluster(CLI::App& root, GlobalOptions&) {
  auto* app = root.add_subcommand("cluster",
                                  "k-means on item embeddings; prints each cluster's size and its most "
                                  "popular members (titles when the dataset has them)");
  struct Opts {
    std::string model, out;
    int k = 10, members = 5, iters = 100;
    uint64_t seed = 42;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("-m,--model", o->model, "model file")->required();
  app->add_option("-k,--k", o->k, "number of clusters")->check(CLI::Range(1, 1000000));
  app->add_option("--members", o->members, "sample members printed per cluster")->check(CLI::Range(0, 1000));
  app->add_option("--iterations", o->iters, "maximum Lloyd iterations")->check(CLI::Range(1, 100000));
  app->add_option("--seed", o->seed, "seed of the k-means++ initialization");
  app->add_option("--out", o->out, "also write item<TAB>cluster lines here");
  return {app, [o]() {
            api::Model m = api::Model::load(o->model);
            api::Model::Clusters r = m.cluster_items(o->k, o->iters, o->seed);
            const std::vector<int64_t> pop = m.item_popularity();
            const int32_t n = static_cast<int32_t>(m.n_items());
            std::vector<std::vector<int32_t>> members(o->k);
            for (int32_t i = 0; i < n; ++i) members[r.assign[i]].push_back(i);
            std::cout << fmt::format("k-means on {} item embeddings ({} dims): k {}, {} iterations, inertia {:.4g}\n",
                                     n, r.dim, o->k, r.iterations, r.inertia);
            for (int c = 0; c < o->k; ++c) {
              auto& v = members[c];
              std::stable_sort(v.begin(), v.end(), [&](int32_t a, int32_t b) { return pop[a] > pop[b]; });
              std::cout << fmt::format("cluster {} ({} items):", c, v.size());
              for (int j = 0; j < std::min<int>(o->members, v.size()); ++j) {
                const std::string id = m.item_id(v[j]);
                const std::string t = m.item_title(id);
                std::cout << (j ? "; " : " ") << (t.empty() ? id : t);
              }
              std::cout << "\n";
            }
            if (!o->out.empty()) {
              std::string s;
              for (int32_t i = 0; i < n; ++i) s += fmt::format("{}\t{}\n", m.item_id(i), r.assign[i]);
              atomic_write(o->out, s);
            }
            return 0;
          }};
}

}  // namespace siamrec::cli
