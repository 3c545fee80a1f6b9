// Where siamrec looks for datasets and where it keeps caches.
#pragma once
#include <string>

namespace siamrec {

// --data-dir value if non-empty, else $SIAMREC_DATA_DIR, else ~/.cache/siamrec/datasets.
std::string resolve_data_dir(const std::string& flag_value = "");
// Where the data directory came from, for messages ("--data-dir", "SIAMREC_DATA_DIR", "default").
std::string data_dir_origin(const std::string& flag_value = "");
// $SIAMREC_CACHE_DIR, else ~/.cache/siamrec/cache.
std::string resolve_cache_dir();
std::string home_dir();

}  // namespace siamrec
