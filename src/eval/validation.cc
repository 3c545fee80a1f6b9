#include "eval/validation.h"

#include <cmath>
#include <string>

#include <fmt/format.h>

#include "eval/evaluator.h"
#include "eval/metric.h"
#include "util/error.h"
#include "util/strings.h"

namespace siamrec {

Validator ranking_validator() {
  return [](const ValidationRequest& q) {
    const int K = parse_metric(q.metric, "train.valid_metric").second;
    EvalContext ctx;
    ctx.n_users = q.n_users, ctx.n_items = q.n_items;
    ctx.train = q.exclude;
    ctx.test = q.valid;
    ctx.threads = q.threads;
    ctx.data_protocol = "validation";
    EvalSpec s;
    s.ks = {K};
    double v;
    if (!q.candidate_items) {
      v = evaluate_ranking(*q.scorer, ctx, s).get(q.metric);
    } else {
      std::vector<char> cand(static_cast<size_t>(q.n_items), 0);
      for (auto i : *q.candidate_items) cand[i] = 1;
      v = evaluate_ranking(restrict_to(*q.scorer, cand), ctx, s).get(q.metric);
    }
    if (std::isnan(v))
      throw ConfigError(
          fmt::format("train.valid_metric '{}' is not computed on this validation data (graded metrics "
                      "need ratings)",
                      q.metric));
    return v;
  };
}

}  // namespace siamrec
