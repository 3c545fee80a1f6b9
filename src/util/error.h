// Errors: every failure siamrec reports is a siamrec::Error whose message names what and where.
// The classes are public (include/siamrec/error.h); this adds the formatting helper.
#pragma once
#include <siamrec/error.h>

#include <fmt/format.h>

namespace siamrec {

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace siamrec
