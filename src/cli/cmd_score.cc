// siamrec score: scores of (user, item) pairs, for learning to rank and other outside tools.
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli/commands.h"
#include <siamrec/model.h>

#include "util/error.h"
#include "util/io.h"
#include "util/strings.h"

namespace siamrec::cli {

Command add_score(CLI::App& root, GlobalOptions& g) {
  auto* app =
      root.add_subcommand("score", "Score (user, item) pairs: lines user<TAB>item in, user<TAB>item<TAB>score out");
  struct Opts {
    std::string model, pairs, out;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("-m,--model", o->model, "model file")->required();
  app->add_option("--pairs", o->pairs, "input file of original-id pairs, user<TAB>item per line")->required();
  app->add_option("--out", o->out, "output file (written atomically; default stdout)");
  return {
      app, [o, &g]() {
        api::Model m = api::Model::load(o->model);
        std::string text = read_file(o->pairs);
        LineReader lr(text);
        std::string_view line;
        std::vector<std::string_view> f;
        std::vector<std::string> us, is;
        std::vector<std::string> lines;
        int64_t skipped = 0;
        while (lr.next(line)) {
          if (trim(line).empty()) continue;
          split_ws(line, f);
          std::string problem;
          if (f.size() < 2)
            problem = "expected user<TAB>item";
          else if (m.user_index(std::string(f[0])) < 0)
            problem = fmt::format("unknown user '{}'", printable(f[0], 64));
          else if (m.item_index(std::string(f[1])) < 0)
            problem = fmt::format("unknown item '{}'", printable(f[1], 64));
          if (!problem.empty()) {
            if (!g.skip_bad_lines)
              throw DataError(fmt::format("{}:{}: {} (use --skip-bad-lines to skip)", o->pairs, lr.lineno(), problem));
            ++skipped;
            continue;
          }
          us.emplace_back(f[0]), is.emplace_back(f[1]);
          lines.emplace_back(fmt::format("{}\t{}", printable(f[0]), printable(f[1])));
        }
        std::vector<float> s = m.score(us, is);  // rating models: the predicted rating
        std::string out;
        for (size_t k = 0; k < s.size(); ++k) out += fmt::format("{}\t{:.7g}\n", lines[k], s[k]);
        if (o->out.empty())
          std::cout << out;
        else
          atomic_write(o->out, out);
        if (skipped) spdlog::warn("skipped {} pair(s) with unknown ids or bad format", skipped);
        return 0;
      }};
}

}  // namespace siamrec::cli
