#include "eval/validation.h"

#include <string>

#include "eval/evaluator.h"
#include "util/strings.h"

namespace siamrec {

Validator ranking_validator() {
  return [](const ValidationRequest& q) {
    auto at = q.metric.find('@');
    int K = at == std::string::npos ? 10 : static_cast<int>(parse_int(q.metric.substr(at + 1)).value_or(10));
    EvalContext ctx;
    ctx.n_users = q.n_users, ctx.n_items = q.n_items;
    ctx.train = q.exclude;
    ctx.test = q.valid;
    ctx.threads = q.threads;
    ctx.data_protocol = "validation";
    EvalSpec s;
    s.ks = {K};
    if (!q.candidate_items) return evaluate_ranking(*q.scorer, ctx, s).get(q.metric);
    std::vector<char> cand(static_cast<size_t>(q.n_items), 0);
    for (auto i : *q.candidate_items) cand[i] = 1;
    return evaluate_ranking(restrict_to(*q.scorer, cand), ctx, s).get(q.metric);
  };
}

}  // namespace siamrec
