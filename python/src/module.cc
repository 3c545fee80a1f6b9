// siamrec._core: the Python binding of the public C++ API (include/siamrec). Only public headers are
// used here; the Python layer (python/siamrec/__init__.py) adds the pandas / scipy conversions, the
// progress bar and the id arrays. Long calls release the GIL.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <siamrec/siamrec.h>

namespace py = pybind11;
using namespace pybind11::literals;
using namespace siamrec;

namespace {

// ---- exceptions: siamrec's classes, each also a Python built-in where one fits ----------------
PyObject* g_error = nullptr;          // siamrec.Error(RuntimeError)
PyObject* g_config_error = nullptr;   // siamrec.ConfigError(Error, ValueError)
PyObject* g_data_error = nullptr;     // siamrec.DataError(Error, ValueError)
PyObject* g_missing_error = nullptr;  // siamrec.MissingDataError(Error, FileNotFoundError)

PyObject* new_exception(py::module_& m, const char* name, py::tuple bases, const char* doc) {
  std::string full = std::string("siamrec.") + name;
  PyObject* e = PyErr_NewExceptionWithDoc(full.c_str(), doc, bases.ptr(), nullptr);
  if (!e) throw py::error_already_set();
  m.add_object(name, py::handle(e));
  return e;
}

[[noreturn]] void raise_data(const std::string& msg) { throw DataError(msg); }

// ---- ids: Python / numpy values -> siamrec's original ids (strings) ---------------------------
std::string id_of_object(py::handle v, const std::string& what, size_t row) {
  if (py::isinstance<py::str>(v)) {
    std::string s = v.cast<std::string>();
    if (s.empty()) raise_data(what + "[" + std::to_string(row) + "]: empty id");
    return s;
  }
  if (py::isinstance<py::bool_>(v))
    raise_data(what + "[" + std::to_string(row) + "]: a boolean is not an id (ids are integers or strings)");
  if (py::isinstance<py::int_>(v) || PyObject_HasAttrString(v.ptr(), "__index__")) {
    py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(v.ptr()));
    if (!i) throw py::error_already_set();
    return py::str(i).cast<std::string>();
  }
  if (py::isinstance<py::float_>(v)) {
    double d = v.cast<double>();
    if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e15)
      raise_data(what + "[" + std::to_string(row) + "]: " + py::repr(v).cast<std::string>() +
                 " is not an id (ids are integers or strings; a missing value?)");
    return std::to_string(static_cast<int64_t>(d));
  }
  if (py::isinstance<py::bytes>(v)) return v.cast<std::string>();
  if (v.is_none()) raise_data(what + "[" + std::to_string(row) + "]: missing id (None)");
  raise_data(what + "[" + std::to_string(row) + "]: " + std::string(py::str(py::type::of(v).attr("__name__"))) +
             " is not an id (ids are integers or strings)");
}

// Any 1-d sequence or array of ids.
std::vector<std::string> ids_of(py::handle obj, const std::string& what) {
  py::module_ np = py::module_::import("numpy");
  py::array a = np.attr("asarray")(obj);
  if (a.ndim() != 1)
    raise_data(what + ": ids must be one-dimensional, got an array of shape " +
               py::str(a.attr("shape")).cast<std::string>());
  const char kind = a.dtype().kind();
  const size_t n = static_cast<size_t>(a.shape(0));
  std::vector<std::string> out;
  out.reserve(n);
  if (kind == 'i' || kind == 'u') {
    if (kind == 'u' && a.itemsize() == 8) {
      auto big = np.attr("ascontiguousarray")(a, "dtype"_a = "uint64").cast<py::array_t<uint64_t>>();
      for (size_t i = 0; i < n; ++i)
        if (big.data()[i] > static_cast<uint64_t>(INT64_MAX))
          raise_data(what + "[" + std::to_string(i) + "]: " + std::to_string(big.data()[i]) + " exceeds 2^63-1");
    }
    auto v = np.attr("ascontiguousarray")(a, "dtype"_a = "int64").cast<py::array_t<int64_t>>();
    auto r = v.unchecked<1>();
    for (size_t i = 0; i < n; ++i) out.push_back(std::to_string(r(i)));
    return out;
  }
  if (kind == 'f') {
    auto v = np.attr("ascontiguousarray")(a, "dtype"_a = "float64").cast<py::array_t<double>>();
    auto r = v.unchecked<1>();
    for (size_t i = 0; i < n; ++i) {
      double d = r(i);
      if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e15)
        raise_data(what + "[" + std::to_string(i) + "]: " + std::to_string(d) +
                   " is not an id (ids are integers or strings; a missing value?)");
      out.push_back(std::to_string(static_cast<int64_t>(d)));
    }
    return out;
  }
  if (kind == 'b') raise_data(what + ": booleans are not ids (ids are integers or strings)");
  if (kind == 'U' || kind == 'S' || kind == 'O') {
    py::list l = a.attr("tolist")();
    for (size_t i = 0; i < n; ++i) out.push_back(id_of_object(l[i], what, i));
    return out;
  }
  raise_data(what + ": ids of dtype " + py::str(a.dtype()).cast<std::string>() + " (ids are integers or strings)");
}

// Original ids as a numpy array: int64 when every id is an integer, else an object array of str.
py::array id_array(int64_t n, bool numeric, const std::function<std::string(int64_t)>& id) {
  if (numeric) {
    py::array_t<int64_t> out(n);
    auto w = out.mutable_unchecked<1>();
    for (int64_t i = 0; i < n; ++i) w(i) = std::stoll(id(i));
    return out;
  }
  py::list l(n);
  for (int64_t i = 0; i < n; ++i) l[i] = py::str(id(i));
  return py::module_::import("numpy").attr("array")(l, "dtype"_a = "object");
}

template <class T>
py::array_t<int64_t> lookup(const T& owner, py::handle ids, const std::string& what, bool users, bool strict) {
  std::vector<std::string> s = ids_of(ids, what);
  py::array_t<int64_t> out(static_cast<py::ssize_t>(s.size()));
  auto w = out.mutable_unchecked<1>();
  for (size_t i = 0; i < s.size(); ++i) {
    int64_t x = users ? owner.user_index(s[i]) : owner.item_index(s[i]);
    if (x < 0 && strict)
      throw ConfigError(what + "[" + std::to_string(i) + "]: " + (users ? "user" : "item") + " '" + s[i] +
                        "' is not known (" + std::to_string(users ? owner.n_users() : owner.n_items()) + " " +
                        (users ? "users" : "items") + ")");
    w(static_cast<py::ssize_t>(i)) = x;
  }
  return out;
}

// The id tables both Dataset and Model have: original ids by index (user_ids, item_ids) and their
// lookup (user_index, item_index: -1 for unknown ids unless strict, which raises naming the id).
template <class T, class Cls>
void bind_ids(Cls& cls, bool strict_default) {
  cls.def("user_ids",
          [](const T& o) {
            return id_array(o.n_users(), o.numeric_user_ids(), [&](int64_t i) { return o.user_id(i); });
          })
      .def("item_ids",
           [](const T& o) {
             return id_array(o.n_items(), o.numeric_item_ids(), [&](int64_t i) { return o.item_id(i); });
           })
      .def(
          "user_index", [](const T& o, py::handle ids, bool strict) { return lookup(o, ids, "users", true, strict); },
          "ids"_a, "strict"_a = strict_default)
      .def(
          "item_index", [](const T& o, py::handle ids, bool strict) { return lookup(o, ids, "items", false, strict); },
          "ids"_a, "strict"_a = strict_default);
}

api::ConfigSource config_source(const std::string& file, const std::string& yaml, const std::vector<std::string>& set) {
  api::ConfigSource c;
  c.file = file;
  c.yaml = yaml;
  c.set = set;
  return c;
}

// A numpy view of memory owned by `owner` (kept alive by the array's base capsule); read-only.
template <class T>
py::array view(const T* data, std::vector<py::ssize_t> shape, std::shared_ptr<const void> owner) {
  auto* keep = new std::shared_ptr<const void>(std::move(owner));
  py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<const void>*>(p); });
  py::array a(py::dtype::of<T>(), shape, {}, data, base);
  a.attr("setflags")("write"_a = false);
  return a;
}

// ---- Ctrl-C during fit: stop after the current epoch, then raise KeyboardInterrupt ------------
std::atomic<bool> g_interrupted{false};
struct sigaction g_previous_sigint;

extern "C" void on_sigint(int sig) {
  g_interrupted.store(true);
  // Python's own handler records the signal; PyErr_CheckSignals() raises it once fit returns.
  if (!(g_previous_sigint.sa_flags & SA_SIGINFO) && g_previous_sigint.sa_handler != SIG_DFL &&
      g_previous_sigint.sa_handler != SIG_IGN)
    g_previous_sigint.sa_handler(sig);
}

struct SigintGuard {
  bool installed = false;
  explicit SigintGuard(bool install) {
    g_interrupted.store(false);
    if (!install) return;
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    installed = sigaction(SIGINT, &sa, &g_previous_sigint) == 0;
  }
  ~SigintGuard() {
    if (installed) sigaction(SIGINT, &g_previous_sigint, nullptr);
  }
};

py::dict epoch_dict(const api::EpochProgress& e) {
  py::dict d;
  d["epoch"] = e.epoch;
  d["epochs"] = e.epochs;
  d["loss"] = e.loss;
  d["seconds"] = e.seconds;
  d["refit"] = e.refit;
  if (e.has_valid) {
    d["valid_metric"] = e.valid_metric;
    d["valid"] = e.valid;
  }
  return d;
}

py::dict evaluation_dict(const api::Evaluation& e) {
  py::dict d;
  d["kind"] = e.kind;
  d["protocol"] = e.protocol;
  py::list metrics;
  for (auto& [k, v] : e.metrics) metrics.append(py::make_tuple(k, v));
  d["metrics"] = metrics;
  d["users"] = e.users;
  py::dict per;
  for (auto& [k, v] : e.per_user) per[py::str(k)] = py::array_t<double>(static_cast<py::ssize_t>(v.size()), v.data());
  d["per_user"] = per;
  d["seconds"] = e.seconds;
  d["table"] = e.table;
  d["json"] = e.json;
  return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  using namespace pybind11::literals;
  m.doc() = "siamrec's C++ engine (use the siamrec package, not this module)";
  m.attr("__version__") = api::version();

  g_error = new_exception(m, "Error", py::make_tuple(py::handle(PyExc_RuntimeError)),
                          "A siamrec failure; the message names what and where.");
  g_config_error = new_exception(m, "ConfigError", py::make_tuple(py::handle(g_error), py::handle(PyExc_ValueError)),
                                 "A bad configuration key or value, argument or id.");
  g_data_error = new_exception(m, "DataError", py::make_tuple(py::handle(g_error), py::handle(PyExc_ValueError)),
                               "Malformed input data (file:line:field, or the array and row).");
  g_missing_error =
      new_exception(m, "MissingDataError", py::make_tuple(py::handle(g_error), py::handle(PyExc_FileNotFoundError)),
                    "A dataset or file is not available locally.");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const MissingDataError& e) {
      PyErr_SetString(g_missing_error, e.what());
    } catch (const DataError& e) {
      PyErr_SetString(g_data_error, e.what());
    } catch (const ConfigError& e) {
      PyErr_SetString(g_config_error, e.what());
    } catch (const Error& e) {
      PyErr_SetString(g_error, e.what());
    }
  });

  m.def("set_log_level", &api::set_log_level, "level"_a);
  api::set_log_level("warn");

  // ---- the HTML report ----
  m.def(
      "write_report",
      [](const std::vector<std::string>& runs, const std::string& out, const std::vector<std::string>& labels,
         const std::vector<std::string>& logs, const std::vector<std::string>& log_labels, const std::string& model,
         const std::string& title, int bootstrap, double level, uint64_t seed, int max_points, const std::string& map,
         const std::string& data_dir, int threads, const std::vector<std::string>& studies) {
        api::ReportOptions o;
        o.runs = runs, o.labels = labels, o.logs = logs, o.log_labels = log_labels, o.model = model;
        o.studies = studies;
        o.title = title, o.bootstrap = bootstrap, o.level = level, o.seed = seed, o.max_points = max_points;
        o.map = map, o.data_dir = data_dir, o.threads = threads;
        py::gil_scoped_release nogil;
        api::write_report(o, out);
      },
      "runs"_a, "out"_a, "labels"_a, "logs"_a, "log_labels"_a, "model"_a, "title"_a, "bootstrap"_a, "level"_a, "seed"_a,
      "max_points"_a, "map"_a, "data_dir"_a, "threads"_a, "studies"_a = std::vector<std::string>{});

  // ---- configuration ----
  m.def(
      "resolve_config",
      [](const std::string& file, const std::string& yaml, const std::vector<std::string>& set) {
        return config_source(file, yaml, set).resolved_yaml();
      },
      "file"_a = "", "yaml"_a = "", "set"_a = std::vector<std::string>{});

  // ---- datasets ----
  py::class_<api::Dataset> dataset(m, "Dataset");
  bind_ids<api::Dataset>(dataset, false);
  dataset
      .def_static(
          "load",
          [](const std::string& name, const std::string& data_dir, bool skip_bad_lines, bool use_cache) {
            api::DatasetOptions o;
            o.data_dir = data_dir, o.skip_bad_lines = skip_bad_lines, o.use_cache = use_cache;
            py::gil_scoped_release nogil;
            return api::Dataset::load(name, o);
          },
          "name"_a, "data_dir"_a = "", "skip_bad_lines"_a = false, "use_cache"_a = true)
      .def_static(
          "from_config",
          [](const std::string& file, const std::string& yaml, const std::vector<std::string>& set,
             const std::string& data_dir, bool skip_bad_lines) {
            api::DatasetOptions o;
            o.data_dir = data_dir, o.skip_bad_lines = skip_bad_lines;
            api::ConfigSource c = config_source(file, yaml, set);
            py::gil_scoped_release nogil;
            return api::Dataset::from_config(c, o);
          },
          "file"_a = "", "yaml"_a = "", "set"_a = std::vector<std::string>{}, "data_dir"_a = "",
          "skip_bad_lines"_a = false)
      .def_static(
          "from_arrays",
          [](py::handle users, py::handle items, py::object ratings, py::object timestamps, const std::string& name) {
            std::vector<std::string> u = ids_of(users, "users"), i = ids_of(items, "items");
            if (u.size() != i.size())
              raise_data(name + ": " + std::to_string(u.size()) + " user ids but " + std::to_string(i.size()) +
                         " item ids (one of each per interaction)");
            if (u.empty()) raise_data(name + ": no interactions (the arrays are empty)");
            std::vector<float> r;
            std::vector<int64_t> t;
            py::module_ np = py::module_::import("numpy");
            if (!ratings.is_none()) {
              py::array a;
              try {
                a = np.attr("asarray")(ratings, "dtype"_a = "float32");
              } catch (py::error_already_set&) {
                raise_data(name + ": ratings must be numbers");
              }
              if (a.ndim() != 1) raise_data(name + ": ratings must be one-dimensional");
              auto v = a.cast<py::array_t<float, py::array::c_style | py::array::forcecast>>();
              r.assign(v.data(), v.data() + v.size());
            }
            if (!timestamps.is_none()) {
              py::array a = np.attr("asarray")(timestamps);
              const char k = a.dtype().kind();
              if (a.ndim() != 1) raise_data(name + ": timestamps must be one-dimensional");
              if (k == 'f') {
                auto v = np.attr("ascontiguousarray")(a, "dtype"_a = "float64").cast<py::array_t<double>>();
                for (py::ssize_t j = 0; j < v.size(); ++j) {
                  double d = v.data()[j];
                  if (!std::isfinite(d) || std::fabs(d) > 9.0e15)
                    raise_data(name + ": timestamps[" + std::to_string(j) + "]: " + std::to_string(d) +
                               " is not a time (seconds since 1970)");
                  t.push_back(static_cast<int64_t>(d));
                }
              } else if (k == 'i' || k == 'u') {
                auto v = np.attr("ascontiguousarray")(a, "dtype"_a = "int64").cast<py::array_t<int64_t>>();
                t.assign(v.data(), v.data() + v.size());
              } else {
                raise_data(name + ": timestamps of dtype " + py::str(a.dtype()).cast<std::string>() +
                           " (give integer seconds since 1970)");
              }
            }
            py::gil_scoped_release nogil;
            return api::Dataset::from_arrays(u, i, r, t, name);
          },
          "users"_a, "items"_a, "ratings"_a = py::none(), "timestamps"_a = py::none(), "name"_a = "arrays")
      .def_static("registered", &api::Dataset::registered)
      .def(
          "split",
          [](const api::Dataset& d, const std::string& file, const std::string& yaml,
             const std::vector<std::string>& set) {
            api::ConfigSource c = config_source(file, yaml, set);
            api::Split s;
            {
              py::gil_scoped_release nogil;
              s = d.split(c);
            }
            return py::make_tuple(s.train, s.valid, s.test, s.protocol);
          },
          "file"_a = "", "yaml"_a = "", "set"_a = std::vector<std::string>{})
      .def_property_readonly("name", &api::Dataset::name)
      .def_property_readonly("protocol", &api::Dataset::protocol)
      .def_property_readonly("n_users", &api::Dataset::n_users)
      .def_property_readonly("n_items", &api::Dataset::n_items)
      .def_property_readonly("size", &api::Dataset::size)
      .def("item_titles",
           [](const api::Dataset& d) {
             std::vector<std::string> t;
             for (int64_t i = 0; i < d.n_items(); ++i) t.push_back(d.item_title(i));
             return t;
           })
      .def("columns", [](py::object self) {
        const auto& d = self.cast<const api::Dataset&>();
        api::Dataset::Columns c = d.columns();
        auto owner = std::make_shared<api::Dataset>(d);  // shares the immutable data
        py::dict out;
        const py::ssize_t n = c.size;
        out["user"] = view(c.user, {n}, owner);
        out["item"] = view(c.item, {n}, owner);
        if (c.rating) out["rating"] = view(c.rating, {n}, owner);
        if (c.time) out["time"] = view(c.time, {n}, owner);
        return out;
      });

  // ---- models ----
  py::class_<api::Model> model(m, "Model");
  bind_ids<api::Model>(model, true);
  model
      .def_static(
          "create",
          [](const std::string& file, const std::string& yaml, const std::vector<std::string>& set) {
            return api::Model::create(config_source(file, yaml, set));
          },
          "file"_a = "", "yaml"_a = "", "set"_a = std::vector<std::string>{})
      .def_static(
          "load",
          [](const std::string& path) {
            py::gil_scoped_release nogil;
            return api::Model::load(path);
          },
          "path"_a)
      .def_static("registered", &api::Model::registered)
      .def(
          "fit",
          [](api::Model& m, const api::Dataset& train, std::optional<api::Dataset> valid, int threads,
             py::object callback, const std::string& checkpoint, bool resume, const std::string& log,
             bool catch_interrupt) {
            api::FitOptions o;
            o.threads = threads, o.checkpoint = checkpoint, o.resume = resume, o.log = log;
            o.stop = &g_interrupted;
            std::optional<py::error_already_set> failed;  // an exception the callback raised
            if (!callback.is_none())
              o.on_epoch = [&](const api::EpochProgress& e) {
                py::gil_scoped_acquire gil;
                try {
                  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
                  py::object r = callback(epoch_dict(e));
                  return r.is_none() || py::bool_(r).cast<bool>();
                } catch (py::error_already_set& err) {
                  failed.emplace(std::move(err));
                  return false;
                }
              };
            {
              SigintGuard guard(catch_interrupt);
              py::gil_scoped_release nogil;
              m.fit(train, valid ? *valid : api::Dataset(), o);
            }
            if (failed) throw std::move(*failed);
            if (PyErr_CheckSignals() != 0) throw py::error_already_set();
            if (g_interrupted.load()) {  // Ctrl-C while Python's own handler was not installed
              PyErr_SetNone(PyExc_KeyboardInterrupt);
              throw py::error_already_set();
            }
          },
          "train"_a, "valid"_a = py::none(), "threads"_a = 0, "callback"_a = py::none(), "checkpoint"_a = "",
          "resume"_a = false, "log"_a = "", "catch_interrupt"_a = true)
      .def(
          "update",
          [](api::Model& m, const api::Dataset& data, const std::vector<std::string>& set, int threads,
             const std::string& log) {
            api::FitOptions o;
            o.threads = threads, o.log = log;
            o.stop = &g_interrupted;
            api::ConfigSource cs;
            cs.set = set;
            api::UpdateResult r;
            {
              SigintGuard guard(true);  // Ctrl-C stops after the current epoch; the model stays as it was
              py::gil_scoped_release nogil;
              r = m.update(data, o, cs);
            }
            py::dict d;
            d["new_interactions"] = r.new_interactions, d["replayed"] = r.replayed, d["new_users"] = r.new_users;
            d["new_items"] = r.new_items, d["known_interactions"] = r.known_interactions, d["epochs"] = r.epochs;
            d["seconds"] = r.seconds;
            return d;
          },
          "data"_a, "set"_a = std::vector<std::string>{}, "threads"_a = 0, "log"_a = "")
      .def_property_readonly("updates", &api::Model::updates)
      .def_property_readonly("fitted", &api::Model::fitted)
      .def_property_readonly("type", &api::Model::type)
      .def_property_readonly("config_yaml", &api::Model::config_yaml)
      .def_property_readonly("protocol", &api::Model::protocol)
      .def_property_readonly("n_users", &api::Model::n_users)
      .def_property_readonly("n_items", &api::Model::n_items)
      .def_property_readonly("retrieval_space", &api::Model::retrieval_space)
      .def_property("exclude", &api::Model::exclude, &api::Model::set_exclude)
      .def("item_title", &api::Model::item_title)
      .def("training_items",
           [](const api::Model& m, int64_t u) {
             std::vector<int64_t> v = m.training_items(u);
             return py::array_t<int64_t>(static_cast<py::ssize_t>(v.size()), v.data());
           })
      .def(
          "recommend",
          [](const api::Model& m, py::array_t<int64_t, py::array::c_style | py::array::forcecast> users, int k,
             bool exclude_seen, int threads) {
            if (users.ndim() != 1) throw ConfigError("recommend: user indices must be one-dimensional");
            if (k < 1) throw ConfigError("recommend: k must be >= 1, got " + std::to_string(k));
            const int64_t n = users.shape(0);
            py::array_t<int64_t> items({n, static_cast<int64_t>(k)});
            py::array_t<float> scores({n, static_cast<int64_t>(k)});
            const int64_t* u = users.data();
            int64_t* it = items.mutable_data();
            float* sc = scores.mutable_data();
            {
              py::gil_scoped_release nogil;
              if (n > 0) m.recommend_indices(u, n, k, exclude_seen, threads, it, sc);
            }
            return py::make_tuple(items, scores);
          },
          "users"_a, "k"_a = 10, "exclude_seen"_a = true, "threads"_a = 0)
      .def(
          "recommend_history",
          [](const api::Model& m, const std::vector<std::vector<std::string>>& histories, int k) {
            if (k < 1) throw ConfigError("recommend_from_history: k must be >= 1, got " + std::to_string(k));
            const int64_t n = static_cast<int64_t>(histories.size());
            py::array_t<int64_t> items({n, static_cast<int64_t>(k)});
            py::array_t<float> scores({n, static_cast<int64_t>(k)});
            std::vector<int> unknown(histories.size());
            {
              int64_t* it = items.mutable_data();
              float* sc = scores.mutable_data();
              py::gil_scoped_release nogil;
              for (int64_t r = 0; r < n; ++r) {
                std::vector<api::Scored> top = m.recommend_history(histories[r], k, &unknown[r]);
                for (int j = 0; j < k; ++j) {
                  it[r * k + j] = j < static_cast<int>(top.size()) ? m.item_index(top[j].item) : -1;
                  sc[r * k + j] = j < static_cast<int>(top.size()) ? top[j].score : -INFINITY;
                }
              }
            }
            return py::make_tuple(items, scores, unknown);
          },
          "histories"_a, "k"_a = 10)
      .def(
          "similar",
          [](const api::Model& m, py::array_t<int64_t, py::array::c_style | py::array::forcecast> items_in, int k) {
            if (k < 1) throw ConfigError("similar_items: k must be >= 1, got " + std::to_string(k));
            const int64_t n = items_in.shape(0);
            py::array_t<int64_t> items({n, static_cast<int64_t>(k)});
            py::array_t<float> scores({n, static_cast<int64_t>(k)});
            const int64_t* q = items_in.data();
            int64_t* it = items.mutable_data();
            float* sc = scores.mutable_data();
            {
              py::gil_scoped_release nogil;
              for (int64_t r = 0; r < n; ++r) {
                std::vector<api::Scored> top = m.similar(m.item_id(q[r]), k);
                for (int j = 0; j < k; ++j) {
                  it[r * k + j] = j < static_cast<int>(top.size()) ? m.item_index(top[j].item) : -1;
                  sc[r * k + j] = j < static_cast<int>(top.size()) ? top[j].score : -INFINITY;
                }
              }
            }
            return py::make_tuple(items, scores);
          },
          "items"_a, "k"_a = 10)
      .def(
          "score",
          [](const api::Model& m, py::array_t<int64_t, py::array::c_style | py::array::forcecast> users,
             py::array_t<int64_t, py::array::c_style | py::array::forcecast> items) {
            if (users.size() != items.size())
              throw ConfigError("score: " + std::to_string(users.size()) + " users but " +
                                std::to_string(items.size()) + " items (one of each per pair)");
            py::array_t<float> out(users.size());
            const int64_t *u = users.data(), *i = items.data();
            float* o = out.mutable_data();
            const int64_t n = users.size();
            {
              py::gil_scoped_release nogil;
              m.score_indices(u, i, n, o);
            }
            return out;
          },
          "users"_a, "items"_a)
      .def("user_embeddings",
           [](const api::Model& m) -> py::object {
             api::MatrixView v = m.user_embeddings_view();
             if (!v.data) return py::none();
             return view(v.data, {v.rows, v.cols}, v.owner);
           })
      .def("item_embeddings",
           [](const api::Model& m) -> py::object {
             api::MatrixView v = m.item_embeddings_view();
             if (!v.data) return py::none();
             return view(v.data, {v.rows, v.cols}, v.owner);
           })
      .def(
          "evaluate",
          [](const api::Model& m, const api::Dataset& test, const std::vector<std::string>& overrides, int threads) {
            api::Evaluation e;
            {
              py::gil_scoped_release nogil;
              e = m.evaluate(test, overrides, threads);
            }
            return evaluation_dict(e);
          },
          "test"_a, "overrides"_a = std::vector<std::string>{}, "threads"_a = 0)
      .def(
          "save",
          [](const api::Model& m, const std::string& path) {
            py::gil_scoped_release nogil;
            m.save(path);
          },
          "path"_a);
}
