// The public report API over report/ (the HTML report of runs, logs and a model).
#include <siamrec/report.h>

#include "api/impl.h"
#include "report/report.h"
#include "util/io.h"

namespace siamrec::api {

std::string report_html(const ReportOptions& o) {
  report::Options r;
  r.runs = o.runs, r.labels = o.labels, r.logs = o.logs, r.log_labels = o.log_labels, r.studies = o.studies;
  r.model = o.model, r.data_dir = o.data_dir, r.title = o.title;
  r.bootstrap = o.bootstrap, r.level = o.level, r.seed = o.seed, r.max_points = o.max_points, r.map = o.map;
  r.threads = resolve_threads(o.threads);
  return report::render_html(r);
}

void write_report(const ReportOptions& o, const std::string& path) { atomic_write(path, report_html(o)); }

}  // namespace siamrec::api
