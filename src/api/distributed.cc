#include <siamrec/distributed.h>

#include "api/impl.h"
#include "dist/group.h"

namespace siamrec::api {

static ProcessGroup describe(const dist::Env& env) {
  ProcessGroup p;
  if (dist::Group* g = dist::world()) {
    p.rank = g->rank(), p.size = g->size(), p.local_rank = env.local_rank, p.launcher = env.launcher;
  }
  return p;
}

ProcessGroup join_process_group(const ConfigSource& config) {
  const Config c = siamrec::resolve_config(config);
  dist::Options o;
  o.backend = c.str("dist.backend");
  o.timeout = c.real("dist.timeout");
  if (dist::Group* g = dist::join_world(o)) {
    const std::string yaml = c.to_yaml();  // refused at once when the ranks' configs differ
    g->check_same(dist::hash_bytes(yaml.data(), yaml.size()), "config");
  }
  return describe(dist::Env::detect());
}

ProcessGroup process_group() { return describe(dist::Env::detect()); }

void leave_process_group(bool failed) { dist::leave_world(failed); }

void report_process_failure(const std::string& message) noexcept {
  if (dist::Group* g = dist::world()) g->report_failure(message);
}

RankLocal::RankLocal() : solo_(new dist::Solo()) {}
RankLocal::~RankLocal() { delete static_cast<dist::Solo*>(solo_); }

}  // namespace siamrec::api
