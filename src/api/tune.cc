// The public tuning API over tune/ (siamrec tune).
#include <siamrec/tune.h>

#include "api/impl.h"
#include "tune/study.h"

namespace siamrec::api {

TuneResult tune(const TuneOptions& o) {
  init_runtime();
  tune::StudyOptions s;
  s.config = o.config, s.sets = o.set, s.space = o.space, s.trials = o.trials, s.budget_minutes = o.budget_minutes;
  s.study = o.study, s.out = o.out, s.resume = o.resume, s.threads = resolve_threads(o.threads);
  s.data_dir = o.data_dir;
  tune::StudyResult r = tune::run_study(s);
  TuneResult out;
  for (auto& t : r.trials) {
    TuneTrial x;
    x.trial = t.trial, x.params = t.params, x.metrics = t.metrics, x.objectives = t.objectives;
    x.status = t.status, x.epochs = t.epochs, x.seconds = t.seconds;
    out.trials.push_back(std::move(x));
  }
  out.objectives = r.objectives, out.best = r.best, out.pareto = r.pareto, out.validation = r.validation;
  out.table = r.table, out.best_yaml = r.best_yaml;
  return out;
}

}  // namespace siamrec::api
