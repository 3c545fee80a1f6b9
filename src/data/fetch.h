// Downloads a registered dataset's official archive, verifies its SHA-256, unpacks it into the
// data directory (into a temporary folder first, renamed into place when complete).
#pragma once
#include <string>

namespace siamrec {

struct FetchOptions {
  std::string data_dir_flag;
  bool force = false;        // re-download even when the files are present
  std::string archive_path;  // use this local archive instead of downloading (still verified)
};
// Returns the folder the dataset now lives in.
std::string fetch_dataset(const std::string& name, const FetchOptions& o);
// Unpacks a zip into `dest_dir/<archive folder>`; used by fetch and by tests.
void unpack_archive(const std::string& archive, const std::string& dest_dir);

}  // namespace siamrec
