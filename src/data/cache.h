// Binary cache of parsed datasets, keyed by the content of their source files.
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"

namespace siamrec {

// SHA-256 over the parser version, the dataset name and each file's content hash.
std::string cache_key(const std::string& name, const std::vector<std::string>& files);
void save_dataset_cache(const Dataset& ds, const std::string& path);
Dataset load_dataset_cache(const std::string& path);

// Dataset <-> binary container sections (also used inside model files).
class BinWriter;
class BinReader;
void write_idmap(BinWriter& w, const IdMap& m);
IdMap read_idmap(BinReader& r);
void write_dataset(BinWriter& w, const Dataset& ds);
Dataset read_dataset(BinReader& r);
// Item side data without content (titles, genres and their vocabulary, tags) and user features.
// read_side_data throws Error on a genre id outside the vocabulary.
void write_side_data(BinWriter& w, const ItemSide& items, const UserSide& users);
void read_side_data(BinReader& r, ItemSide& items, UserSide& users);

}  // namespace siamrec
