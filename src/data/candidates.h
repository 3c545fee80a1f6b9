// Candidate files (eval.candidates file:PATH): per-user candidate lists produced elsewhere (a
// paper's sampled protocol), in one of three layouts, detected from the first line:
//   ncf      "(user,item)<TAB>neg<TAB>neg..."   NCF's test.negative: the test pair, then its negatives
//   pos-negs "user<TAB>pos<TAB>neg,neg,..."     the positive, then a comma-separated negative list
//   list     "user<TAB>cand,cand,..."           every candidate; the user's test items among them
// Ids are original ids of the dataset. Validated with file:line: unknown users or items, duplicate
// candidates, a user listed twice, a stated positive that is not a test item of the user; every
// test user needs a list. In the list layout a test item missing from the list is added (counted);
// a listed negative that is a test item (NCF's file has such lines) is kept as listed (counted).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/readers.h"

namespace siamrec {

struct CandidateLists {
  std::vector<std::vector<int32_t>> negatives;  // per user (dense id): the candidates besides her test items
  std::string layout;                           // ncf | pos-negs | list
  int64_t users = 0;                            // users with a list
  int64_t min_negatives = 0, max_negatives = 0;
  int64_t added_positives = 0;    // list layout: test items that were not in their user's list
  int64_t negatives_in_test = 0;  // ncf / pos-negs: listed negatives that are test items of the user (kept)
  std::string describe(const std::string& path) const;  // for the protocol line
};

// The number of negatives on the first list of a candidate file (no validation against a test
// part; 0 when the file cannot be read or has no list): what a sampled validation mirrors.
int64_t candidate_file_list_length(const std::string& path);

CandidateLists read_candidate_file(const std::string& path, const Dataset& ds, const Interactions& test,
                                   const ReadOptions& o = {});

}  // namespace siamrec
