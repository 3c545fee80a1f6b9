#include "dist/group.h"

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "util/error.h"

namespace siamrec::dist {

using ms = std::chrono::milliseconds;
static constexpr int kBeatMs = 200;  // heartbeat period

// c10d's messages carry a C++ stack trace after the first line.
static std::string first_line(const char* what) {
  std::string s(what);
  return s.substr(0, s.find('\n'));
}

// ---- environment ------------------------------------------------------------------------------
static bool env_int(const char* name, int& out, int lo, int hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return false;
  char* end = nullptr;
  errno = 0;
  long x = std::strtol(v, &end, 10);
  if (errno || *end || x < lo || x > hi)
    throw ConfigError(fmt::format("environment variable {}='{}' is not an integer in {}..{}", name, v, lo, hi));
  out = static_cast<int>(x);
  return true;
}

Env Env::detect() {
  Env e;
  int world = 0;
  if (env_int("WORLD_SIZE", world, 1, 1 << 16)) {
    e.launcher = "torchrun";
    e.world = world;
    if (!env_int("RANK", e.rank, 0, world - 1))
      throw ConfigError("environment: WORLD_SIZE is set but RANK is not (set both, as torchrun does)");
    env_int("LOCAL_RANK", e.local_rank, 0, world - 1);
  } else if (env_int("OMPI_COMM_WORLD_SIZE", world, 1, 1 << 16)) {
    e.launcher = "mpirun";
    e.world = world;
    if (!env_int("OMPI_COMM_WORLD_RANK", e.rank, 0, world - 1))
      throw ConfigError("environment: OMPI_COMM_WORLD_SIZE is set but OMPI_COMM_WORLD_RANK is not");
    env_int("OMPI_COMM_WORLD_LOCAL_RANK", e.local_rank, 0, world - 1);
  }
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) e.addr = a;
  env_int("MASTER_PORT", e.port, 1, 65535);
  return e;
}

// ---- the group --------------------------------------------------------------------------------
struct Group::Impl {
  Env env;
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  std::atomic<int64_t> seq{0};
  std::thread beat;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  ~Impl() {
    {
      std::lock_guard<std::mutex> l(mu);
      stop = true;
    }
    cv.notify_all();
    if (beat.joinable()) beat.join();
  }
};

static std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }
static std::string string_of(const std::vector<uint8_t>& v) { return {v.begin(), v.end()}; }

std::unique_ptr<Group> Group::join(const Env& env, const Options& opt) {
  if (opt.backend == "mpi")
    throw ConfigError(
        "dist.backend 'mpi': this LibTorch (Debian's 1.13) was built without MPI; use dist.backend gloo "
        "(mpirun can still start the processes: siamrec reads OMPI_COMM_WORLD_RANK / _SIZE)");
  if (opt.backend != "gloo") throw ConfigError(fmt::format("dist.backend '{}': expected gloo or mpi", opt.backend));
  if (!(opt.timeout > 0)) throw ConfigError("dist.timeout must be > 0 seconds");
  std::unique_ptr<Group> g(new Group());
  g->impl_ = std::make_unique<Impl>();
  Impl& I = *g->impl_;
  I.env = env;
  g->rank_ = env.rank, g->size_ = env.world, g->timeout_ = opt.timeout;
  const ms timeout(static_cast<int64_t>(opt.timeout * 1000));
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(env.port);
  so.isServer = env.rank == 0;
  so.numWorkers = env.world;
  so.waitWorkers = true;
  so.timeout = timeout;
  try {
    I.store = c10::make_intrusive<c10d::TCPStore>(env.addr, so);
  } catch (const std::exception& e) {
    if (env.rank == 0)
      throw Error(
          fmt::format("rank 0 cannot host the group's store at {}:{} ({}): is the port in use? set "
                      "MASTER_PORT (siamrec launch --master-port)",
                      env.addr, env.port, first_line(e.what())));
    throw Error(
        fmt::format("rank {} cannot reach the group's store at {}:{} within {} s ({}): is rank 0 running, "
                    "and are MASTER_ADDR / MASTER_PORT the same on every rank?",
                    env.rank, env.addr, env.port, opt.timeout, first_line(e.what())));
  }
  try {
    auto po = c10d::ProcessGroupGloo::Options::create(timeout);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname && *ifname)
      po->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (env.addr.rfind("127.", 0) == 0 || env.addr == "localhost")
      po->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      po->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    I.pg = c10::make_intrusive<c10d::ProcessGroupGloo>(I.store, env.rank, env.world, po);
  } catch (const std::exception& e) {
    throw Error(
        fmt::format("rank {} could not connect to the other {} rank(s) of the group ({}); set "
                    "GLOO_SOCKET_IFNAME to the network interface to use",
                    env.rank, env.world - 1, first_line(e.what())));
  }
  // The heartbeat: "beats seq" under hb/<rank>, on a store connection of its own.
  I.store->set("hb/" + std::to_string(env.rank), bytes_of("0 0"));
  I.beat = std::thread([&I, addr = env.addr, port = env.port, rank = env.rank] {
    c10::intrusive_ptr<c10d::TCPStore> st;
    try {
      c10d::TCPStoreOptions o;
      o.port = static_cast<uint16_t>(port);
      o.isServer = false;
      o.waitWorkers = false;
      o.timeout = ms(2000);
      st = c10::make_intrusive<c10d::TCPStore>(addr, o);
    } catch (...) {
      return;  // no heartbeat: the others will name this rank only by its failed collectives
    }
    int64_t beats = 0;
    std::unique_lock<std::mutex> l(I.mu);
    while (!I.stop) {
      l.unlock();
      try {
        st->set("hb/" + std::to_string(rank), bytes_of(fmt::format("{} {}", ++beats, I.seq.load())));
      } catch (...) {
        // The store is gone (rank 0 exited): collectives report it.
      }
      l.lock();
      I.cv.wait_for(l, ms(kBeatMs), [&] { return I.stop; });
    }
  });
  return g;
}

Group::~Group() = default;

void Group::report_failure(const std::string& message) noexcept {
  try {
    impl_->store->set("fail/" + std::to_string(rank_), bytes_of(message));
  } catch (...) {
  }
}

void Group::lost(const char* what, const std::string& cause) {
  Impl& I = *impl_;
  std::vector<std::string> who;
  try {
    const int W = size_;
    for (int r = 0; r < W; ++r) {
      std::string k = "fail/" + std::to_string(r);
      if (r != rank_ && I.store->check({k}))
        who.push_back(fmt::format("rank {} stopped: {}", r, string_of(I.store->get(k))));
    }
    if (who.empty()) {
      auto read = [&](std::vector<int64_t>& beats, std::vector<int64_t>& seqs) {
        beats.assign(W, -1), seqs.assign(W, -1);
        for (int r = 0; r < W; ++r) {
          std::string k = "hb/" + std::to_string(r);
          if (!I.store->check({k})) continue;
          std::string v = string_of(I.store->get(k));
          std::sscanf(v.c_str(), "%ld %ld", &beats[r], &seqs[r]);
        }
      };
      std::vector<int64_t> b0, s0, b1, s1;
      read(b0, s0);
      std::this_thread::sleep_for(ms(4 * kBeatMs));
      read(b1, s1);
      for (int r = 0; r < W; ++r)
        if (r != rank_ && b1[r] == b0[r])
          who.push_back(fmt::format("rank {} is gone (no heartbeat for {:.1f} s: killed, crashed or stopped)", r,
                                    4 * kBeatMs / 1000.0));
      if (who.empty())
        for (int r = 0; r < W; ++r)
          if (r != rank_ && s1[r] < seq_)
            who.push_back(fmt::format("rank {} is alive but stuck before collective #{} (at #{}): hung or far slower",
                                      r, seq_, s1[r]));
    }
  } catch (const std::exception&) {
    if (rank_ != 0)
      who.push_back(fmt::format("rank 0 is gone (the group's store at {}:{} does not answer)", I.env.addr, I.env.port));
  }
  if (who.empty()) who.push_back("no rank was found lost");
  throw Error(fmt::format("distributed: {} failed on rank {} of {} (collective #{}, timeout {} s): {} [{}]", what,
                          rank_, size_, seq_, timeout_, fmt::join(who, "; "), first_line(cause.c_str())));
}

template <class F>
void Group::run(const char* what, F&& f) {
  impl_->seq = ++seq_;
  try {
    f();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    lost(what, e.what());
  }
}

template <class T>
static at::Tensor blob(T* v, size_t n, at::ScalarType t) {
  return at::from_blob(static_cast<void*>(v), {static_cast<int64_t>(n)}, at::TensorOptions().dtype(t));
}

// The typed sums share one allreduce (ScalarType is c10's enum; the header stays torch-free).
void Group::allreduce_raw(void* v, size_t n, int type, size_t elem, const char* what) {
  if (!n) return;
  run(what, [&] {
    std::vector<at::Tensor> t{
        at::from_blob(v, {static_cast<int64_t>(n)}, at::TensorOptions().dtype(static_cast<at::ScalarType>(type)))};
    impl_->pg->allreduce(t)->wait();
  });
  bytes_ += static_cast<int64_t>(n * elem);
}
void Group::sum(double* v, size_t n, const char* what) {
  allreduce_raw(v, n, static_cast<int>(at::kDouble), sizeof(double), what);
}
void Group::sum(float* v, size_t n, const char* what) {
  allreduce_raw(v, n, static_cast<int>(at::kFloat), sizeof(float), what);
}
void Group::sum(int64_t* v, size_t n, const char* what) {
  allreduce_raw(v, n, static_cast<int>(at::kLong), sizeof(int64_t), what);
}

template <class T>
static std::vector<std::vector<T>> gather_impl(Group& g, c10d::ProcessGroupGloo& pg, const std::vector<T>& v,
                                               at::ScalarType type, std::vector<int64_t>& sizes) {
  const int W = g.size();
  // Lengths first, then every vector padded to the longest.
  std::vector<at::Tensor> in{at::tensor({static_cast<int64_t>(v.size())}, at::kLong)};
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < W; ++r) out[0].push_back(at::empty({1}, at::kLong));
  pg.allgather(out, in)->wait();
  sizes.resize(W);
  int64_t mx = 0;
  for (int r = 0; r < W; ++r) mx = std::max(mx, sizes[r] = out[0][r].item<int64_t>());
  std::vector<std::vector<T>> res(W);
  if (mx == 0) return res;
  std::vector<T> mine(static_cast<size_t>(mx), T{});
  std::copy(v.begin(), v.end(), mine.begin());
  std::vector<at::Tensor> in2{blob(mine.data(), mine.size(), type)};
  std::vector<std::vector<at::Tensor>> out2(1);
  for (int r = 0; r < W; ++r) out2[0].push_back(at::empty({mx}, at::TensorOptions().dtype(type)));
  pg.allgather(out2, in2)->wait();
  for (int r = 0; r < W; ++r) {
    const T* p = out2[0][r].data_ptr<T>();
    res[r].assign(p, p + sizes[r]);
  }
  return res;
}

std::vector<std::vector<int64_t>> Group::gather(const std::vector<int64_t>& v, const char* what) {
  std::vector<std::vector<int64_t>> res;
  std::vector<int64_t> sizes;
  run(what, [&] { res = gather_impl(*this, *impl_->pg, v, at::kLong, sizes); });
  for (auto s : sizes) bytes_ += s * static_cast<int64_t>(sizeof(int64_t));
  return res;
}
std::vector<std::vector<float>> Group::gather(const std::vector<float>& v, const char* what) {
  std::vector<std::vector<float>> res;
  std::vector<int64_t> sizes;
  run(what, [&] { res = gather_impl(*this, *impl_->pg, v, at::kFloat, sizes); });
  for (auto s : sizes) bytes_ += s * static_cast<int64_t>(sizeof(float));
  return res;
}

void Group::sum_rows(std::vector<int64_t>& ids, std::vector<float>& vals, int64_t dim, const char* what) {
  auto all = gather(ids, what);
  std::vector<int64_t> rows;
  for (auto& v : all) rows.insert(rows.end(), v.begin(), v.end());
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  std::vector<float> sum(rows.size() * static_cast<size_t>(dim), 0.0f);
  for (size_t q = 0; q < ids.size(); ++q) {
    const size_t at = static_cast<size_t>(std::lower_bound(rows.begin(), rows.end(), ids[q]) - rows.begin());
    std::copy_n(vals.data() + q * dim, dim, sum.data() + at * dim);
  }
  this->sum(sum.data(), sum.size(), what);
  ids = std::move(rows);
  vals = std::move(sum);
}

void Group::broadcast(std::string& bytes, int root, const char* what) {
  int64_t n = static_cast<int64_t>(bytes.size());
  run(what, [&] {
    c10d::BroadcastOptions o;
    o.rootRank = root;
    std::vector<at::Tensor> t{blob(&n, 1, at::kLong)};
    impl_->pg->broadcast(t, o)->wait();
    bytes.resize(static_cast<size_t>(n));
    if (n) {
      std::vector<at::Tensor> d{blob(bytes.data(), bytes.size(), at::kByte)};
      impl_->pg->broadcast(d, o)->wait();
    }
  });
  bytes_ += n;
}

void Group::broadcast(float* v, size_t n, int root, const char* what) {
  if (!n) return;
  run(what, [&] {
    c10d::BroadcastOptions o;
    o.rootRank = root;
    std::vector<at::Tensor> t{blob(v, n, at::kFloat)};
    impl_->pg->broadcast(t, o)->wait();
  });
  bytes_ += static_cast<int64_t>(n * sizeof(float));
}

void Group::barrier(const char* what) {
  int64_t one = 1;
  sum(&one, 1, what);  // an allreduce: Gloo's barrier has no timeout of its own in 1.13
}

void Group::check_same(uint64_t hash, const std::string& what) {
  std::vector<int64_t> mine{static_cast<int64_t>(hash)};
  auto all = gather(mine, ("the check of the ranks' " + what).c_str());
  std::vector<std::string> differ;
  for (int r = 1; r < size_; ++r)
    if (all[r][0] != all[0][0]) differ.push_back(std::to_string(r));
  if (!differ.empty())
    throw ConfigError(
        fmt::format("distributed: the {} of rank(s) {} differ(s) from rank 0's; every rank must run the "
                    "same {}",
                    what, fmt::join(differ, ", "), what));
}

uint64_t hash_bytes(const void* p, size_t n, uint64_t h) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}

// ---- the default group ------------------------------------------------------------------------
static std::unique_ptr<Group>& world_ptr() {
  static std::unique_ptr<Group> g;
  return g;
}

Group* world() { return world_ptr().get(); }

static std::atomic<int> solo_depth{0};
Solo::Solo() { ++solo_depth; }
Solo::~Solo() { --solo_depth; }
Group* active() { return solo_depth.load() > 0 ? nullptr : world(); }

Group* join_world(const Options& opt) {
  if (world_ptr()) throw Error("this process has already joined a process group");
  Env env = Env::detect();
  if (env.world <= 1) return nullptr;
  world_ptr() = Group::join(env, opt);
  return world();
}

// A group left after a failure (reachable from here, so leak checkers do not report it).
Group* abandoned_group = nullptr;

void leave_world(bool failed) {
  auto& g = world_ptr();
  if (!g) return;
  if (failed) {
    // Peers may be gone and a teardown could block: the process is exiting, the group is left as
    // it is (still reachable, not a leak).
    abandoned_group = g.release();
    return;
  }
  g->barrier("the final barrier");
  g.reset();
}

}  // namespace siamrec::dist
