#include "data/cache.h"

#include "util/io.h"

namespace siamrec {

static const char kMagic[8] = {'S', 'R', 'D', 'A', 'T', 'A', '\0', '\1'};
static constexpr uint32_t kVersion = 1;
static constexpr const char* kParserVersion = "siamrec-parsers-1";

std::string cache_key(const std::string& name, const std::vector<std::string>& files) {
  std::string h = std::string(kParserVersion) + "\n" + name + "\n";
  for (auto& f : files) h += f.substr(f.find_last_of('/') + 1) + " " + sha256_file(f) + "\n";
  return sha256_hex(h);
}

void write_idmap(BinWriter& w, const IdMap& m) { w.put_strs(m.ids()); }
IdMap read_idmap(BinReader& r) {
  std::vector<std::string> ids;
  r.get_strs(ids);
  return IdMap::from_ids(std::move(ids));
}

template <typename T>
static void put_nested(BinWriter& w, const std::vector<std::vector<T>>& v) {
  w.put<uint64_t>(v.size());
  for (auto& x : v) w.put_vec(x);
}
template <typename T>
static void get_nested(BinReader& r, std::vector<std::vector<T>>& v) {
  uint64_t n = r.get<uint64_t>();
  if (n > (1ull << 32)) throw Error("dataset section too large");
  v.resize(n);
  for (auto& x : v) r.get_vec(x);
}
static void put_strs2(BinWriter& w, const std::vector<std::vector<std::string>>& v) {
  w.put<uint64_t>(v.size());
  for (auto& x : v) w.put_strs(x);
}
static void get_strs2(BinReader& r, std::vector<std::vector<std::string>>& v) {
  uint64_t n = r.get<uint64_t>();
  if (n > (1ull << 32)) throw Error("dataset section too large");
  v.resize(n);
  for (auto& x : v) r.get_strs(x);
}

void write_dataset(BinWriter& w, const Dataset& ds) {
  w.put_str(ds.name);
  w.put_str(ds.description);
  write_idmap(w, ds.users);
  write_idmap(w, ds.items);
  w.put_vec(ds.log.user);
  w.put_vec(ds.log.item);
  w.put_vec(ds.log.rating);
  w.put_vec(ds.log.time);
  write_side_data(w, ds.item_side, ds.user_side);
}

void write_side_data(BinWriter& w, const ItemSide& items, const UserSide& users) {
  w.put_strs(items.title);
  put_nested(w, items.genres);
  w.put_strs(items.genre_vocab);
  put_strs2(w, items.tags);
  put_strs2(w, users.features);
}

void read_side_data(BinReader& r, ItemSide& items, UserSide& users) {
  r.get_strs(items.title);
  get_nested(r, items.genres);
  r.get_strs(items.genre_vocab);
  get_strs2(r, items.tags);
  get_strs2(r, users.features);
  for (auto& g : items.genres)
    for (auto k : g)
      if (k < 0 || static_cast<size_t>(k) >= items.genre_vocab.size()) throw Error("genre id out of range");
}

Dataset read_dataset(BinReader& r) {
  Dataset ds;
  ds.name = r.get_str();
  ds.description = r.get_str();
  ds.users = read_idmap(r);
  ds.items = read_idmap(r);
  r.get_vec(ds.log.user);
  r.get_vec(ds.log.item);
  r.get_vec(ds.log.rating);
  r.get_vec(ds.log.time);
  read_side_data(r, ds.item_side, ds.user_side);
  return ds;
}

void save_dataset_cache(const Dataset& ds, const std::string& path) {
  BinWriter w(kMagic, kVersion);
  write_dataset(w, ds);
  w.save(path);
}

Dataset load_dataset_cache(const std::string& path) {
  BinReader r = BinReader::open(path, kMagic, kVersion, "dataset cache");
  return read_dataset(r);
}

}  // namespace siamrec
