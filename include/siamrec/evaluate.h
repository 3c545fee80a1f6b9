// Evaluation results: the protocol line, the metrics in print order, and per-user values for
// significance tests. Every number siamrec reports comes with its protocol.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace siamrec::api {

struct Evaluation {
  std::string kind;                                     // ranking | rating | pairs | retrieval
  std::string protocol;                                 // data | filters | split | candidates | exclusions | ties | K
  std::vector<std::pair<std::string, double>> metrics;  // e.g. {"ndcg@10", 0.29}
  std::vector<std::string> users;                       // evaluated users (original ids)
  std::map<std::string, std::vector<double>> per_user;  // aligned with users
  double seconds = 0;
  std::string table;  // the human table `siamrec evaluate` prints
  std::string json;   // the JSON `--json` writes (protocol, metrics, per-user vectors)

  // The value of a metric; throws ConfigError listing the available names when absent.
  double get(const std::string& metric) const;
};

}  // namespace siamrec::api
