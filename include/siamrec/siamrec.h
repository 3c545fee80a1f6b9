// siamrec's public C++ API: datasets, models, evaluation, in namespace siamrec::api (errors in
// namespace siamrec). Link with -lsiamrec (find_package(siamrec) -> siamrec::siamrec, or
// pkg-config siamrec).
#pragma once
#include <siamrec/config.h>
#include <siamrec/dataset.h>
#include <siamrec/error.h>
#include <siamrec/evaluate.h>
#include <siamrec/model.h>

namespace siamrec::api {
// The library version ("0.1.0").
const char* version();
}  // namespace siamrec::api
