// siamrec recommend: top-K for one user or every user of a model, seen items excluded.
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "tasks/pipeline.h"
#include "util/error.h"
#include "util/io.h"

namespace siamrec::cli {

Command add_recommend(CLI::App& root, GlobalOptions& g) {
  auto* app = root.add_subcommand("recommend",
                                  "Top-K items for a user (--user) or for every user (--all-users), "
                                  "seen items excluded; original ids");
  struct Opts {
    std::string model, user, out;
    bool all = false;
    int k = 10;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("-m,--model", o->model, "model file")->required();
  auto* u = app->add_option("--user", o->user, "original user id");
  auto* a = app->add_flag("--all-users", o->all, "every user of the model, one line each: user<TAB>item,item,...");
  u->excludes(a);
  app->add_option("--out", o->out, "output file for --all-users (written atomically; default stdout)");
  app->add_option("-k,--k", o->k, "list length")->check(CLI::Range(1, 100000));
  return {app, [o, &g]() {
            if (o->user.empty() && !o->all) throw ConfigError("recommend needs --user ID or --all-users");
            TrainedModel m = load_model_file(o->model);
            if (!o->all) {
              int32_t u = m.users.find(o->user);
              if (u < 0)
                throw Error(fmt::format("user '{}' is not in model '{}' ({} users)", o->user, o->model, m.users.size()),
                            kExitUsage);
              std::cout << fmt::format("# top-{} for user {} (model {}, seen items excluded)\n", o->k, o->user,
                                       m.model->type());
              std::cout << "rank\titem\tscore\ttitle\n";
              recommend_users(m, {u}, o->k, g.threads, [&](int32_t, const int32_t* items, const float* s, int n) {
                for (int j = 0; j < n; ++j)
                  std::cout << fmt::format(
                      "{}\t{}\t{:.6g}\t{}\n", j + 1, m.items.original(items[j]), s[j],
                      items[j] < static_cast<int32_t>(m.item_titles.size()) ? m.item_titles[items[j]] : "");
              });
              return 0;
            }
            std::vector<int32_t> users(m.users.size());
            for (int32_t x = 0; x < m.users.size(); ++x) users[x] = x;
            std::string buf;
            std::ofstream file;
            std::string tmp;
            if (!o->out.empty()) {
              tmp = o->out + ".partial";
              file.open(tmp, std::ios::binary);
              if (!file) throw Error(fmt::format("cannot write '{}'", tmp));
            }
            std::ostream& os = o->out.empty() ? std::cout : file;
            recommend_users(m, users, o->k, g.threads, [&](int32_t user, const int32_t* items, const float*, int n) {
              buf.clear();
              buf += m.users.original(user);
              buf += '\t';
              for (int j = 0; j < n; ++j) {
                if (j) buf += ',';
                buf += m.items.original(items[j]);
              }
              buf += '\n';
              os << buf;
            });
            if (!o->out.empty()) {
              file.close();
              if (!file || std::rename(tmp.c_str(), o->out.c_str()) != 0)
                throw Error(fmt::format("cannot write '{}'", o->out));
            }
            return 0;
          }};
}

}  // namespace siamrec::cli
