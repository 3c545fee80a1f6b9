// Item content from a table (data.content_table: CSV item_id,path[,label]): images (resized,
// data.image_*) or audio (log-mel spectrograms, audio.*), attached to a dataset's items, or forming
// an item-only dataset (categories from the label column) when no interactions are configured.
#pragma once
#include "data/dataset.h"

namespace siamrec {

class Config;
struct ReadOptions;

// Attaches content to `ds` (creating the items when ds has none). Items without a file get zeros
// (counted in a warning); ids the dataset does not know are a DataError naming the CSV line, or,
// `known_only` (an update's new data against the whole table), skipped unread.
void attach_content_table(const Config& c, Dataset& ds, const ReadOptions& ro, bool known_only = false);

}  // namespace siamrec
