// Prediction tasks other than top-N (survey: rating prediction, pair compatibility): RMSE / MAE of
// predicted ratings, and accuracy / precision / recall / F1 / ROC-AUC of pair classification. Each
// result carries its protocol line, like the ranking evaluations.
#pragma once
#include <cstdint>
#include <string>

#include "eval/evaluator.h"

namespace siamrec {

class Model;

// RMSE and MAE of score_pairs + rating_offset on the held-out ratings of `test`.
EvalResult evaluate_rating(const Model& model, const Interactions& test, const std::string& data_protocol);

// Each test interaction (label 1) and one seeded unseen item of the same user (label 0: neither a
// train nor a test item of hers, when one is found in 100 draws); threshold on the score.
EvalResult evaluate_pairs(const Model& model, const Csr& train, const Interactions& test, int32_t n_users,
                          int32_t n_items, uint64_t seed, double threshold, const std::string& data_protocol);

}  // namespace siamrec
