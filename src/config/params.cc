#include "config/params.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "util/names.h"
#include "util/strings.h"

namespace siamrec {

static std::vector<std::string> dataset_names() { return registered_names("dataset"); }

static std::string check_candidates(const std::string& v) {
  if (v == "full" || v == "fixed" || v == "heldout") return "";
  if (v.rfind("file:", 0) == 0) return v.size() > 5 ? "" : "eval.candidates 'file:' needs a path (file:PATH)";
  auto c = v.find(':');
  if (c != std::string::npos) {
    std::string kind = v.substr(0, c);
    auto n = parse_int(v.substr(c + 1));
    if ((kind == "uniform" || kind == "popularity") && n && *n > 0) return "";
  }
  return fmt::format(
      "'{}' is not a candidate protocol; allowed: full, uniform:N, popularity:N, fixed, file:PATH, heldout", v);
}

static const double kInf = 1e300;

static std::function<std::vector<std::string>()> names(const char* kind) {
  return [kind] { return registered_names(kind); };
}

const std::vector<ParamDef>& param_table() {
  using T = ParamType;
  // One parameter a line, as `siamrec params` prints them.
  // clang-format off
  static const std::vector<ParamDef> table = {
      // ---- data ----
      {"data.dataset", T::String, "", "registered dataset name (or leave empty and set data.path)", {}, dataset_names},
      {"data.path", T::String, "", "interaction file (format delimited) or file prefix (format recbole: PREFIX.inter)"},
      {"data.format", T::String, "delimited", "format of data.path (a registered format: delimited, sessions, recbole, amazon_json, ...; `siamrec params` lists them)", {}, names("format")},
      {"data.delimiter", T::String, "tab", "field delimiter of a delimited file: tab, comma, ws (spaces/tabs), or any string"},
      {"data.header", T::Bool, "false", "the delimited file's first line names the columns"},
      {"data.comment", T::String, "#", "lines starting with this are skipped (empty: none)"},
      {"data.user_col", T::String, "0", "user column: header name or 0-based index"},
      {"data.item_col", T::String, "1", "item column: header name or 0-based index"},
      {"data.rating_col", T::String, "", "rating column (empty: none, every row is a positive)"},
      {"data.time_col", T::String, "", "timestamp column (empty: none)"},
      {"data.order", T::String, "", "file: the line order of each user's interactions is their time order (for logs without a time column; split.order time, loo, temporal and sequence towers use it)", {"", "file"}},
      {"data.session_col", T::String, "session_id", "sessions: session column (header name or 0-based index)"},
      {"data.session_user_col", T::String, "", "sessions: column of the session's user (kept as the user feature user=ID; empty or NA: anonymous; empty key: none)"},
      {"data.date_col", T::String, "", "YYYY-MM-DD date column; events are ordered by date, then data.time_col (e.g. DIGINETICA's eventdate and timeframe)"},
      {"data.numeric_ids", T::Bool, "false", "require integer user and item ids"},
      {"data.content", T::String, "", "kind of the files of data.content_table", {"", "image", "audio"}},
      {"data.content_table", T::String, "", "CSV item_id,path[,label] of item images or audio (relative paths from the CSV's folder); without data.dataset/data.path the items are the table's (item-only dataset, categories from the label column)"},
      {"data.content_label_col", T::String, "label", "content table column holding an item's category (item-only datasets)"},
      {"data.image_size", T::Int, "64", "content images: resized to this side (pixels)", {}, nullptr, 1, 4096},
      {"data.image_channels", T::Int, "3", "content images: 1 (grey) or 3 (RGB)", {}, nullptr, 1, 3},
      // ---- audio (log-mel spectrograms of data.content audio) ----
      {"audio.sample_rate", T::Int, "16000", "files are resampled (linear interpolation) to this rate", {}, nullptr, 1000, 192000},
      {"audio.n_fft", T::Int, "512", "FFT window", {}, nullptr, 16, 65536},
      {"audio.hop", T::Int, "256", "hop between frames (samples)", {}, nullptr, 1, 65536},
      {"audio.n_mels", T::Int, "64", "mel bands (HTK scale)", {}, nullptr, 1, 1024},
      {"audio.frames", T::Int, "64", "frames per item: longer audio is cropped, shorter padded with silence", {}, nullptr, 1, 100000},
      // ---- filters ----
      {"filter.min_rating", T::Float, "0", "keep interactions with rating >= this (0: keep all)", {}, nullptr, 0, kInf},
      {"filter.dedup", T::Bool, "false", "keep one interaction per (user, item): the latest"},
      {"filter.user_core", T::Int, "0", "iterative k-core: minimum interactions per user", {}, nullptr, 0, 1e9},
      {"filter.item_core", T::Int, "0", "iterative k-core: minimum interactions per item", {}, nullptr, 0, 1e9},
      // ---- split ----
      {"split.type", T::String, "ratio", "how test (and validation) data is held out; cold_items holds out whole items (cold start); files reads your own train / valid / test files (split.train_file, ...)", {"ratio", "loo", "temporal", "fixed", "cold_items", "files"}},
      {"split.order", T::String, "random", "ratio/loo: hold out random interactions or the latest by time", {"random", "time"}},
      {"split.ratios", T::FloatList, "0.8,0.1,0.1", "ratio/temporal: train, validation, test shares (of each user's interactions / of time); cold_items: shares of the items", {}, nullptr, 0, 1},
      {"split.valid", T::Bool, "false", "loo: also hold out a validation item (the second latest)"},
      {"split.name", T::String, "", "fixed: a split the dataset ships (ml-100k: u1..u5, ua, ub; ml-1m-lightgcn: lightgcn; ml-1m-ncf: ncf; fashion-mnist: fashion)"},
      {"split.train_file", T::String, "", "files: the training interactions (read like data.path: data.format, columns, delimiter)"},
      {"split.valid_file", T::String, "", "files: validation interactions (optional: early stopping, refit)"},
      {"split.test_file", T::String, "", "files: test interactions (users absent from training are skipped and counted)"},
      {"split.seed", T::Int, "42", "seed of random splits", {}, nullptr, 0, 9.2e18},
      // ---- evaluation ----
      {"eval.candidates", T::String, "full",
       "full (every item minus the user's train items), uniform:N / popularity:N sampled negatives, fixed (the split's candidate lists, e.g. NCF), file:PATH (your per-user candidate lists: NCF's (u,i)<TAB>neg<TAB>..., user<TAB>pos<TAB>neg,neg,... or user<TAB>cand,cand,...; docs/own-data.md), heldout (full ranking within the split's held-out items only: cold start)",
       {}, nullptr, -kInf, kInf, check_candidates},
      {"eval.k", T::IntList, "5,10,20", "cut-offs K of the ranking metrics", {}, nullptr, 1, 100000},
      {"eval.exclude_train", T::Bool, "true", "full ranking: remove each user's train items from the candidates"},
      {"eval.seed", T::Int, "2024", "seed of sampled negatives", {}, nullptr, 0, 9.2e18},
      {"eval.threshold", T::Float, "0", "pairs task: score threshold for a positive prediction (0 = logit 0.5 for bce)", {}, nullptr, -1e300, 1e300},
      {"eval.head_share", T::Float, "0.2", "share of items (most popular first) forming the short head for long-tail metrics", {}, nullptr, 0.0001, 0.9999},
      // ---- model ----
      {"model.type", T::String, "pop", "model to fit: a baseline or a Siamese model", {}, names("model")},
      {"model.neighbors", T::Int, "100", "itemknn/userknn: neighbours kept per item/user", {}, nullptr, 1, 1e9},
      {"model.shrink", T::Float, "10", "itemknn/userknn: shrinkage added to the cosine denominator", {}, nullptr, 0, kInf},
      {"model.seed", T::Int, "42", "seed of the random baseline", {}, nullptr, 0, 9.2e18},
      {"model.task", T::String, "topn", "what the test evaluation measures: topn (ranking), rating (RMSE/MAE), pairs (pair classification), retrieval (each held-out item queries the others; relevant = same category: Recall@K, MAP@R)", {"topn", "rating", "pairs", "retrieval"}},
      {"model.shared", T::Bool, "true", "siamese: one tower shared by every branch (users and items in one joint space); false = separate user tower (pseudo-Siamese two-tower)"},
      // ---- siamese: towers ----
      {"tower.type", T::String, "id", "siamese: the (shared / item) tower", {}, names("tower")},
      {"tower.dim", T::Int, "64", "embedding dimension of every tower", {}, nullptr, 1, 100000},
      {"tower.hidden", T::IntList, "", "mlp/fusion: hidden layer sizes; image_cnn/audio_cnn: channels of each conv block (default 32,64); text_cnn: filters per width", {}, nullptr, 1, 1e6},
      {"tower.pooling", T::String, "mean", "bag: pooling of token embeddings", {"mean", "sum"}},
      {"tower.dropout", T::Float, "0", "mlp: dropout; image_cnn/audio_cnn: dropout on the input of the final linear layer; fusion: modality dropout of the id part (without one: of the non-first parts); gru/lstm/transformer: dropout", {}, nullptr, 0, 0.99},
      {"tower.parts", T::StringList, "id,bag", "fusion: the towers combined", {}, names("tower")},
      {"tower.combine", T::String, "concat", "fusion: how parts are combined", {"concat", "sum"}},
      {"tower.bag", T::StringList, "self", "bag: what an item's bag holds: self (own id), genres, tags", {"self", "genres", "tags"}},
      {"tower.init_std", T::Float, "0", "std of the normal initialization of embedding tables (0: 1/sqrt(dim))", {}, nullptr, 0, 100},
      {"tower.layers", T::Int, "3", "gcn: propagation layers K; gru/lstm/transformer: stacked layers", {}, nullptr, 0, 64},
      {"tower.layer_combine", T::String, "mean", "gcn: combination of the layer outputs E(0..K): mean (LightGCN) or learned softmax weights", {"mean", "weights"}},
      {"tower.propagation", T::String, "lightgcn", "gcn: lightgcn (E(k+1) = A E(k)) or gcn (E(k+1) = LeakyReLU(A E(k) W_k))", {"lightgcn", "gcn"}},
      {"tower.spmm", T::String, "csr", "gcn: sparse product: csr (siamrec's multithreaded kernel, faster: see docs/benchmarks.md), csr_general (the same kernel's loop without its fixed widths: the speed before them, for benchmarks) or torch (LibTorch sparse mm)", {"csr", "csr_general", "torch"}},
      {"tower.propagate", T::String, "step", "gcn: step = exact propagation in every training step; epoch = the neighbour layers E(1..K) are propagated once per epoch and held fixed (gradients reach the ego embeddings only: cheaper steps, an approximation); evaluation is always exact", {"step", "epoch"}},
      {"tower.heads", T::Int, "2", "transformer: attention heads (must divide tower.dim)", {}, nullptr, 1, 1024},
      {"tower.max_len", T::Int, "50", "gru/lstm/transformer/text_cnn: tokens read per entity (the latest items of a history)", {}, nullptr, 1, 100000},
      {"tower.bidirectional", T::Bool, "false", "gru/lstm over content tokens: read both directions"},
      {"tower.kernel_sizes", T::IntList, "2,3,4", "text_cnn: convolution widths (tokens)", {}, nullptr, 1, 64},
      {"tower.text", T::StringList, "title,genres,tags", "text towers (text_cnn, gru, lstm, transformer as tower.type): the item text read, in this order", {"title", "genres", "tags"}},
      {"tower.cnn_head", T::String, "mean", "image_cnn/audio_cnn: what the final linear layer reads: mean (the global average of the last block's channels) or flatten (the last block's whole map, channels x positions)", {"mean", "flatten"}},
      {"tower.cnn_pool", T::String, "after", "image_cnn/audio_cnn: where each block max-pools: after (conv-BN-ReLU-pool) or before (conv-pool-BN-ReLU: batch norm and ReLU run on a quarter of the values, a faster step; a different model, batch norm sees pooled values)", {"after", "before"}},
      {"tower.precision", T::String, "fp32", "image_cnn/audio_cnn: fp32, or bf16 (autocast: convolutions and linear layers compute in bfloat16 through oneDNN, parameters and the embedding stay float32; about 1.7x faster training steps measured on an AVX-512 BF16 CPU; not measured without native bf16, where it may be slower than fp32)", {"fp32", "bf16"}},
      {"tower.cnn_convs", T::Int, "1", "image_cnn/audio_cnn: 3x3 conv-BN-ReLU layers per block of tower.hidden (2: VGG-style pairs; the block's last one pools); each extra layer costs about as much as the block's first", {}, nullptr, 1, 8},
      {"tower.cnn_tta", T::String, "none", "image_cnn: test-time augmentation outside training: none, or flip (the embedding is the mean of the tower's outputs for the image and its horizontal mirror; twice the embedding work)", {"none", "flip"}},
      {"tower.augment", T::Bool, "false", "image_cnn: random crop (pad 2) and horizontal flip while training; audio_cnn: random time shift"},
      {"user_tower.type", T::String, "id", "siamese with model.shared false: the user tower", {}, names("tower")},
      {"user_tower.hidden", T::IntList, "", "user mlp/fusion: hidden layer sizes", {}, nullptr, 1, 1e6},
      {"user_tower.pooling", T::String, "mean", "user bag: pooling", {"mean", "sum"}},
      {"user_tower.dropout", T::Float, "0", "user mlp dropout / fusion modality dropout", {}, nullptr, 0, 0.99},
      {"user_tower.parts", T::StringList, "id,bag", "user fusion: the towers combined", {}, names("tower")},
      {"user_tower.combine", T::String, "concat", "user fusion: how parts are combined", {"concat", "sum"}},
      {"user_tower.layers", T::Int, "2", "user gru/lstm/transformer: stacked layers", {}, nullptr, 0, 64},
      {"user_tower.heads", T::Int, "2", "user transformer: attention heads (must divide tower.dim)", {}, nullptr, 1, 1024},
      {"user_tower.max_len", T::Int, "50", "user gru/lstm/transformer: latest history items read (SASRec's L)", {}, nullptr, 1, 100000},
      {"user_tower.bidirectional", T::Bool, "false", "user transformer: BERT4Rec, a bidirectional encoder trained by Cloze (train.mask_prob of each window's items replaced by a learned mask token and predicted; a user is the state of a mask token after her latest max_len - 1 items; docs/towers.md); user gru/lstm: must stay false (a history is read causally)"},
      {"user_tower.norm", T::String, "pre", "user transformer: pre = SASRec as published (pmixer's norm_first): LayerNorm before attention and feed-forward, residuals around them, a final LayerNorm; post = LayerNorm after each residual (the blocks of model files before format 6)", {"pre", "post"}},
      {"user_tower.positions", T::String, "latest", "user transformer: latest = position embeddings count back from the latest item (SASRec's left padding: the latest item always has the last position); oldest = from the oldest item read (model files before format 6)", {"latest", "oldest"}},
      {"user_tower.rnn_fold", T::Bool, "true", "user gru, rnn_kernel own: when the item tower gathers table rows (id with dense gradients, gcn) and has fewer items than a batch has positions, the first layer's input projection is taken over the item table once (items x 3 dim) and gathered, and its gradient scattered back by item: the same values, fewer products (docs/towers.md); false projects every position"},
      {"user_tower.rnn_kernel", T::String, "own", "user gru: own = siamrec's GRU forward/backward (a fused loop per step, the same equations and weights; docs/towers.md); torch = LibTorch's GRU", {"own", "torch"}},
      {"user_tower.bag", T::StringList, "history", "user bag: history (her train items), features (demographics)", {"history", "features"}},
      // ---- siamese: comparator and loss ----
      // ---- text towers: tokenizer ----
      {"text.lower", T::Bool, "true", "tokenizer: lower-case ASCII letters"},
      {"text.min_count", T::Int, "1", "tokenizer: tokens seen fewer times are the unknown token", {}, nullptr, 1, 1e9},
      {"text.char_ngrams", T::Int, "0", "tokenizer: also add character n-grams of this length to each word (fastText style; 0 = off)", {}, nullptr, 0, 10},
      {"text.max_vocab", T::Int, "0", "tokenizer: keep the most frequent tokens only (0 = all)", {}, nullptr, 0, 1e9},
      {"comparator.type", T::String, "sq_euclidean", "similarity / distance between two embeddings", {}, names("comparator")},
      {"comparator.hidden", T::IntList, "", "learned comparator: hidden sizes (default: [tower.dim])", {}, nullptr, 1, 1e6},
      {"loss.type", T::String, "triplet", "training objective", {}, names("loss")},
      {"loss.margin", T::Float, "1", "triplet alpha, contrastive / warp / ccl margin", {}, nullptr, -10, 100},
      {"loss.margin2", T::Float, "0.5", "quadruplet: second margin", {}, nullptr, -10, 100},
      {"loss.bpreg", T::Float, "1", "bpr_max: weight of the score regularization (GRU4Rec's bpreg)", {}, nullptr, 0, 100},
      {"loss.temperature", T::Float, "0.1", "infonce: softmax temperature", {}, nullptr, 1e-6, 100},
      {"loss.pos_margin", T::Float, "0", "infonce: subtracted from the positive's score before the temperature (additive margin softmax: AM-softmax / CosFace with a cosine comparator); the positive must beat each negative by this much to reach the same loss", {}, nullptr, -10, 10},
      {"loss.neg_weight", T::Float, "1", "ccl: weight of the negative term", {}, nullptr, 0, 1e6},
      {"reg.l2", T::Float, "0", "L2 penalty on the batch's embeddings", {}, nullptr, 0, 1e6},
      {"reg.cov", T::Float, "0", "CML covariance regularizer weight (decorrelates dimensions)", {}, nullptr, 0, 1e6},
      {"reg.max_norm", T::Float, "0", "clip embedding rows to this norm after each step (CML unit ball: 1; 0 = off)", {}, nullptr, 0, 1e6},
      // ---- siamese: tuples and negatives ----
      {"sampler.builder", T::String, "user_item", "what anchors and positives are", {}, names("builder")},
      {"sampler.type", T::String, "uniform", "how negatives are drawn or mined", {}, names("sampler")},
      {"sampler.batch_mining", T::String, "all", "in_batch: use all valid in-batch negatives, or one per anchor: the hardest, or the semi-hard one (farther than the positive, closest; FaceNet)", {"all", "hard", "semi_hard"}},
      {"sampler.negatives", T::Int, "1", "negatives per positive (k)", {}, nullptr, 0, 100000},
      {"sampler.alpha", T::Float, "0.75", "popularity sampler exponent", {}, nullptr, 0, 10},
      {"sampler.candidates", T::Int, "20", "hard/semi_hard: uniform draws to mine from", {}, nullptr, 1, 100000},
      {"sampler.window", T::Int, "3", "item_item: co-consumption window (positions)", {}, nullptr, 1, 100000},
      {"sampler.pairs_per_item", T::Int, "10", "label: positive pairs drawn per item", {}, nullptr, 1, 100000},
      // ---- training ----
      {"train.engine", T::String, "auto", "auto: the fused kernel whenever the model allows it (id/bag towers, dot/cosine/euclidean/sq_euclidean, no mining, sgd/adagrad/lazy_adam), else LibTorch; fused; torch", {"auto", "fused", "torch"}},
      {"train.deterministic", T::Bool, "false", "fused engine: synchronous mini-batches with ordered reductions (identical results for a seed and thread count) instead of Hogwild"},
      {"train.update", T::String, "minibatch", "fused engine: minibatch (average the gradient of train.batch_size examples, then update; the LibTorch engine's semantics) or example (update after every example, lock-free across threads, as StarSpace/LightFM/fastText; lr is per example; the fastest mode with sgd/adagrad: docs/benchmarks.md)", {"minibatch", "example"}},
      {"train.hot_rows", T::Int, "-1", "fused engine, Hogwild with more than one thread (the CML loop: user anchors, triplet hinge, uniform negatives): each thread updates its own replica of this many of the most popular item rows, merged every train.merge_every examples (a row's change from every thread is summed in), so threads never write one cache line; -1: as many as fit in 4 MB per thread with their optimizer state (the whole item table up to ~4,000 items at d 64 with Adagrad); 0: off, every thread writes the shared rows (docs/benchmarks.md, scaling across cores)", {}, nullptr, -1, 1e12},
      {"train.merge_every", T::Int, "0", "fused engine, train.hot_rows: examples each thread trains between two merges of the replicas; 0: max(262144 / (threads - 1), 64 x the replicated rows / (sampler.negatives + 2)), so that a thread misses at most ~262,144 of the others' examples and merges stay a few per cent of the work", {}, nullptr, 0, 1e12},
      {"train.length_buckets", T::Int, "1", "sequence builders: each epoch's shuffled windows are sorted by length within groups of this many batches and the batches shuffled, so a batch pads to its own windows' length (1: no sorting). Faster epochs, but batches then repeat their make-up: on ML-100K SASRec (9 batches an epoch) 16 lowered validation NDCG@10 by 0.02 at equal epochs (docs/towers.md)", {}, nullptr, 1, 1e6},
      {"train.score_in_place", T::Bool, "true", "sampled negatives of an item tower that gathers table rows (id with dense gradients, gcn) are scored against the table in place for dot and cosine comparators: the same values and gradients without copying the rows (docs/towers.md); false gathers them first"},
      {"train.pack_windows", T::Bool, "true", "sequence builders whose user tower can (transformer with user_tower.norm pre; gru with user_tower.rnn_kernel own): a batch's windows are packed back to back into rows as wide as its longest window, each read alone (a block-diagonal causal mask and its own positions; the GRU restarts from 0 at each window). The same model and batches with fewer padded rows (docs/towers.md); false pads every window to the longest"},
      {"train.session_parallel", T::Bool, "false", "sequence builder with a gru user tower (rnn_kernel own): GRU4Rec's session-parallel mini-batches instead of windows. train.batch_size lanes each read one user's whole history after another (users shuffled per epoch); a mini-batch is every lane's next train.bptt inputs, each predicting its successor, and a lane's GRU state carries over to its next mini-batch until its next user starts (docs/towers.md). Histories are read whole in training: score with a user_tower.max_len that covers them"},
      {"train.bptt", T::Int, "1", "train.session_parallel: inputs per lane and mini-batch; the gradient reaches back this many steps (GRU4Rec's own: 1)", {}, nullptr, 1, 100000},
      {"train.mask_prob", T::Float, "0.2", "user_tower.bidirectional (BERT4Rec): share of each window's items masked and predicted (at least one per window; BERT4Rec's rho, 0.2 on MovieLens)", {}, nullptr, 0.01, 1},
      {"train.prefetch", T::Bool, "false", "LibTorch engine: prepare the next batch (tuples, negatives, in-batch masks) on a helper thread while the current one trains. Off by default: on a 2-core machine preparation is 0.2-6% of an epoch and the extra thread competes with LibTorch's threads (no gain measured, docs/towers.md); turn it on when cores are spare"},
      {"train.optimizer", T::String, "adam", "optimizer", {}, names("optimizer")},
      {"train.lr", T::Float, "0.001", "learning rate", {}, nullptr, 0, 1e3},
      {"train.weight_decay", T::Float, "0", "optimizer weight decay", {}, nullptr, 0, 1e3},
      {"train.adam_beta2", T::Float, "0.999", "adam / adamw / lazy_adam (LibTorch engine): decay of the squared-gradient average (SASRec uses 0.98)", {}, nullptr, 0, 0.999999},
      {"train.batch_size", T::Int, "1024", "positives per batch", {}, nullptr, 1, 1e8},
      {"train.epochs", T::Int, "20", "maximum epochs", {}, nullptr, 0, 1e6},
      {"train.lr_schedule", T::String, "step", "step: the step schedule of train.lr_step / train.lr_gamma; cosine: epoch e of E = train.epochs trains at lr x (1 + cos(pi (e - 1) / E)) / 2, from train.lr down to lr x (1 - cos(pi / E)) / 2 in the last epoch (a refit keeps the fit's E, so its epochs see the validated rates)", {"step", "cosine"}},
      {"train.lr_step", T::Int, "0", "step schedule: multiply lr by train.lr_gamma every this many epochs (0: constant)", {}, nullptr, 0, 1e6},
      {"train.lr_gamma", T::Float, "0.5", "step schedule factor", {}, nullptr, 0, 1},
      {"train.seed", T::Int, "42", "seed of initialization, shuffling and sampling", {}, nullptr, 0, 9.2e18},
      {"train.valid_share", T::Float, "0.1", "share of each user's train interactions held out for early stopping when the split has no validation data (0: none); retrieval models (sampler.builder label): share of the labelled training items held out, each querying the others by retrieval", {}, nullptr, 0, 0.9},
      {"train.valid_metric", T::String, "ndcg@10", "validation metric for early stopping (full ranking, train items excluded); retrieval models (sampler.builder label): recall@K, the retrieval Recall@K among the held-out items (default recall@1)", {}, nullptr, -1e300, 1e300,
       [](const std::string& v) -> std::string {
         auto at = v.find('@');
         auto names = registered_names("metric");
         if (at == std::string::npos || !parse_int(v.substr(at + 1)) ||
             std::find(names.begin(), names.end(), v.substr(0, at)) == names.end())
           return fmt::format("expected METRIC@K with METRIC one of the registered ranking metrics: {}", fmt::join(names, ", "));
         return "";
       }},
      {"train.valid_candidates", T::String, "auto", "validation candidates: auto = the test's protocol when it is sampled (eval.candidates uniform:N / popularity:N; a candidate file or fixed lists: uniform:N with their length), else full ranking; full; uniform:N; popularity:N (unseen negatives drawn per user, seeded: the same at every validation)"},
      {"train.valid_users", T::Int, "0", "validate on a seeded sample of this many users (0: every validation user); for large catalogues under full ranking", {}, nullptr, 0, 1e9},
      {"train.eval_every", T::Int, "1", "validate every this many epochs", {}, nullptr, 1, 1e6},
      {"train.patience", T::Int, "3", "stop after this many validations without improvement", {}, nullptr, 1, 1e6},
      {"train.refit", T::Bool, "false", "after early stopping on a carved validation set, retrain on all train data for the best epoch count"},
      // Data-parallel training across processes (docs/distributed.md): the group comes from the environment (siamrec launch, torchrun, mpirun).
      {"dist.backend", T::String, "gloo", "distributed: the c10d process group (gloo over TCP; mpi needs a LibTorch built with MPI, which Debian's is not)", {"gloo", "mpi"}},
      {"dist.timeout", T::Float, "300", "distributed: seconds a collective (or the start-up rendezvous) may wait for the other ranks before every rank stops with an error naming the lost rank", {}, nullptr, 0.1, 1e6},
      {"dist.sync_every", T::Int, "0", "distributed, fused engine, train.update example: each rank trains this many examples of its shard, then the rows touched since the last exchange are merged across ranks (local SGD: every rank's updates are applied); 0: 10 merges per epoch (docs/scaling.md measures the trade-off)", {}, nullptr, 0, 1e12},
      // siamrec update / Model::update / partial_fit: continue a trained model on new interactions.
      {"update.epochs", T::Int, "5", "update: epochs over the new interactions and their replay sample", {}, nullptr, 1, 1e6},
      {"update.replay_share", T::Float, "0.5", "update: share of the update's training interactions that are a seeded sample of the model's earlier ones (0: new interactions only), so earlier users are not forgotten", {}, nullptr, 0, 0.95},
      {"update.lr_scale", T::Float, "0.05", "update: the update's learning rate is the model's train.lr times this. Its optimizer starts afresh, and Adagrad's and Adam's first steps are their largest: at 1, the updated CML model fell 0.003-0.028 NDCG@10 below a full retrain on ML-1M and forgot absent users; at 0.05 it was 0.007-0.017 above it in every period over 3 seeds (docs/incremental.md)", {}, nullptr, 1e-4, 100},
      {"update.init", T::String, "mean", "update: rows of new users and items start at the mean of their known neighbours' vectors (a new item: its known users; a new user: her known items), or at the model's initialisation (model). Content towers read new items' content either way; under mean, a new item's rows in a fusion's id part and its own-id token of a bag start at zero, so it starts as what its content says", {"mean", "model"}},
      // siamrec tune: hyper-parameter search on validation data.
      {"tune.sampler", T::String, "tpe", "tune: random search, or TPE (tree-structured Parzen estimator) after tune.startup random trials", {"random", "tpe"}},
      {"tune.startup", T::Int, "8", "tune: random trials before TPE models the results", {}, nullptr, 1, 1e6},
      {"tune.pruner", T::String, "none", "tune: asha = stop trials whose validation metric falls out of the best 1/tune.asha_eta at epochs tune.asha_min_epochs x eta^k", {"none", "asha"}},
      {"tune.asha_min_epochs", T::Int, "2", "tune: the first ASHA rung (epochs)", {}, nullptr, 1, 1e6},
      {"tune.asha_eta", T::Int, "3", "tune: ASHA reduction factor", {}, nullptr, 2, 100},
      {"tune.objectives", T::StringList, "", "tune: validation metrics to maximise (a leading - minimises: [ndcg@10, -pop_lift@10] gives the Pareto front); empty: train.valid_metric (a retrieval model, sampler.builder label: its retrieval recall@K, recall@1 unless set)"},
      {"tune.parallel", T::Int, "1", "tune: trials run at once, each in its own process with --threads / tune.parallel threads (at most --threads); trial k draws its params knowing only the trials of earlier batches of this size, so a study is reproducible for a given tune.parallel", {}, nullptr, 1, 64},
      {"tune.seed", T::Int, "2024", "tune: seed of the samplers (trial k draws from seed and k)", {}, nullptr, 0, 9.2e18},
  };
  // clang-format on
  return table;
}

const ParamDef* find_param(const std::string& key) {
  for (auto& p : param_table())
    if (p.key == key) return &p;
  return nullptr;
}

std::string param_type_name(ParamType t) {
  switch (t) {
    case ParamType::String:
      return "string";
    case ParamType::Int:
      return "int";
    case ParamType::Float:
      return "float";
    case ParamType::Bool:
      return "bool";
    case ParamType::IntList:
      return "list of int";
    case ParamType::FloatList:
      return "list of float";
    case ParamType::StringList:
      return "list of string";
  }
  return "?";
}

std::string params_markdown() {
  std::string o =
      "# Configuration parameters\n\n"
      "Generated by `siamrec params --markdown` from the parameter table in `src/config/params.cc`;\n"
      "a test keeps this file identical to the table. Set keys in a YAML file (nested by section) or\n"
      "with `--set section.key=value`.\n";
  std::string section;
  for (auto& p : param_table()) {
    std::string sec = p.key.substr(0, p.key.find('.'));
    if (sec != section) {
      section = sec;
      o += fmt::format("\n## {}\n\n| key | type | default | allowed | description |\n|---|---|---|---|---|\n", sec);
    }
    std::string allowed = fmt::format("{}", fmt::join(p.allowed_values(), ", "));
    if (allowed.empty() && (p.min > -1e299 || p.max < 1e299)) {
      allowed = p.max < 1e299 ? fmt::format("[{:g}, {:g}]", p.min, p.max) : fmt::format(">= {:g}", p.min);
    }
    o += fmt::format("| `{}` | {} | {} | {} | {} |\n", p.key, param_type_name(p.type),
                     p.default_value.empty() ? "(none)" : "`" + p.default_value + "`", allowed, p.help);
  }
  return o;
}

}  // namespace siamrec
