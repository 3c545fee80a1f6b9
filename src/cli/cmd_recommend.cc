// siamrec recommend: top-K for one user or every user of a model, seen items excluded.
#include <cerrno>
#include <cstring>
#include <memory>
#include <iostream>

#include "cli/commands.h"
#include <siamrec/model.h>

#include "util/error.h"
#include "util/io.h"
#include "util/strings.h"

namespace siamrec::cli {

Command add_recommend(CLI::App& root, GlobalOptions& g) {
  auto* app = root.add_subcommand("recommend",
                                  "Top-K items for a user (--user) or for every user (--all-users), "
                                  "seen items excluded; original ids");
  struct Opts {
    std::string model, user, out, exclude = "train+valid";
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
  app->add_option("--exclude", o->exclude,
                  "seen items left out: train+valid (her train items and the validation items the model saw without "
                  "training on them: what the evaluation excludes), train, or none")
      ->check(CLI::IsMember({"train+valid", "train", "none"}));
  return {
      app, [o, &g]() {
        if (o->user.empty() && !o->all) throw ConfigError("recommend needs --user ID or --all-users");
        api::Model m = api::Model::load(o->model);
        m.set_exclude(o->exclude);
        if (!o->all) {
          auto top = m.recommend(o->user, o->k, true, g.threads);
          // Ids and titles escaped: a crafted id cannot drive the terminal or break the columns.
          const char* excluded = o->exclude == "train+valid" ? "her train and validation items"
                                 : o->exclude == "train"     ? "her train items"
                                                             : "nothing";
          std::cout << fmt::format("# top-{} for user {} (model {}, excluded: {})\n", o->k, printable(o->user),
                                   m.type(), excluded);
          std::cout << "rank\titem\tscore\ttitle\n";
          for (size_t j = 0; j < top.size(); ++j)
            std::cout << fmt::format("{}\t{}\t{:.6g}\t{}\n", j + 1, printable(top[j].item), top[j].score,
                                     printable(m.item_title(top[j].item)));
          return 0;
        }
        std::string buf;
        std::unique_ptr<OutputFile> file;  // atomic: an interrupted run leaves the old file
        if (!o->out.empty()) file = std::make_unique<OutputFile>(o->out);
        m.recommend_each(o->k, true, g.threads, [&](const std::string& user, const std::vector<api::Scored>& items) {
          buf.clear();
          buf += printable(user);
          buf += '\t';
          for (size_t j = 0; j < items.size(); ++j) {
            if (j) buf += ',';
            buf += printable(items[j].item);
          }
          buf += '\n';
          if (file) {
            file->write(buf);
          } else if (!(std::cout << buf)) {
            throw Error(fmt::format("cannot write the recommendations to standard output: {}", std::strerror(errno)));
          }
        });
        if (file) file->commit();
        return 0;
      }};
}

}  // namespace siamrec::cli
