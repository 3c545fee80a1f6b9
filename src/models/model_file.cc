#include "models/model_file.h"

#include "config/config.h"
#include "data/cache.h"
#include "util/io.h"

namespace siamrec {

static const char kMagic[8] = {'S', 'R', 'M', 'O', 'D', 'E', 'L', '\1'};

void upgrade_model_config(Config& c, uint32_t version) {
  const std::string src = fmt::format("model file format {}", version);
  if (version < 6 && !c.is_set("user_tower.norm")) c.set("user_tower.norm", "post", src);
  if (version < 6 && !c.is_set("user_tower.positions")) c.set("user_tower.positions", "oldest", src);
}

void save_model_file(const TrainedModel& m, const std::string& path) {
  BinWriter w(kMagic, kModelFormatVersion);
  w.put_str(m.config_yaml);
  w.put_str(m.protocol);
  write_idmap(w, m.users);
  write_idmap(w, m.items);
  w.put_strs(m.item_titles);
  w.put_vec(m.train.indptr);
  w.put_vec(m.train.indices);
  w.put_vec(m.valid.indptr);
  w.put_vec(m.valid.indices);
  w.put_strs(m.updates);
  w.put_str(m.model->type());
  w.put<int32_t>(m.model->n_users());
  w.put<int32_t>(m.model->n_items());
  m.model->save(w);
  w.save(path);
}

class ModelIo {
 public:
  static void set_sizes(Model& m, int32_t u, int32_t i) {
    m.n_users_ = u;
    m.n_items_ = i;
  }
};

std::shared_ptr<Model> clone_model(const Model& m) {
  static const char kCopy[8] = {'S', 'R', 'C', 'O', 'P', 'Y', '\0', '\1'};
  BinWriter w(kCopy, kModelFormatVersion);
  m.save(w);
  BinReader r(w.finish(), kCopy, kModelFormatVersion, "(in memory)", "model copy");
  std::shared_ptr<Model> c = create_model(m.type());
  ModelIo::set_sizes(*c, m.n_users(), m.n_items());
  c->load(r);
  return c;
}

TrainedModel load_model_file(const std::string& path) {
  BinReader r = BinReader::open(path, kMagic, kModelFormatVersion, "model file");
  TrainedModel m;
  m.config_yaml = r.get_str();
  if (r.version() < kModelFormatVersion) {
    Config c = Config::from_yaml_text(m.config_yaml, fmt::format("model file '{}'", path));
    upgrade_model_config(c, r.version());
    m.config_yaml = c.to_yaml();
  }
  m.protocol = r.get_str();
  m.users = read_idmap(r);
  m.items = read_idmap(r);
  r.get_strs(m.item_titles);
  r.get_vec(m.train.indptr);
  r.get_vec(m.train.indices);
  if (m.train.indptr.size() != static_cast<size_t>(m.users.size()) + 1 ||
      m.train.indptr.back() != static_cast<int64_t>(m.train.indices.size()))
    throw Error(fmt::format("model file '{}' is malformed (training interactions do not match the id maps)", path));
  if (r.version() >= 4) {
    r.get_vec(m.valid.indptr);
    r.get_vec(m.valid.indices);
    if (m.valid.indptr.size() > 1 && (m.valid.indptr.size() != static_cast<size_t>(m.users.size()) + 1 ||
                                      m.valid.indptr.back() != static_cast<int64_t>(m.valid.indices.size())))
      throw Error(fmt::format("model file '{}' is malformed (validation interactions do not match the id maps)", path));
  }
  if (r.version() >= 5) r.get_strs(m.updates);
  for (const Csr* c : {&m.train, &m.valid})
    for (auto i : c->indices)
      if (i < 0 || i >= m.items.size())
        throw Error(fmt::format("model file '{}' is malformed (item id out of range)", path));
  std::string type = r.get_str();
  m.model = create_model(type);
  int32_t nu = r.get<int32_t>(), ni = r.get<int32_t>();
  if (nu != m.users.size() || ni != m.items.size())
    throw Error(fmt::format("model file '{}' is malformed (model sizes {}x{} differ from id maps {}x{})", path, nu, ni,
                            m.users.size(), m.items.size()));
  ModelIo::set_sizes(*m.model, nu, ni);
  m.model->load(r);
  if (!r.at_end()) throw Error(fmt::format("model file '{}' is malformed (trailing bytes after the weights)", path));
  return m;
}

}  // namespace siamrec
