// siamrec's public C++ API: datasets, models, evaluation, in namespace siamrec::api (errors in
// namespace siamrec). Link with -lsiamrec (find_package(siamrec) -> siamrec::siamrec, or
// pkg-config siamrec).
#pragma once
#include <string>

#include <siamrec/config.h>
#include <siamrec/dataset.h>
#include <siamrec/distributed.h>
#include <siamrec/error.h>
#include <siamrec/evaluate.h>
#include <siamrec/model.h>
#include <siamrec/report.h>
#include <siamrec/tune.h>

namespace siamrec::api {
// The library version ("0.1.0").
const char* version();
// How much siamrec logs to standard error: "debug", "info" (the command line's default), "warn"
// (the Python module's default: its progress bar shows the epochs), "error" or "off". Throws
// ConfigError naming the allowed levels.
void set_log_level(const std::string& level);
}  // namespace siamrec::api
