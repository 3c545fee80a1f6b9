// A process group for data-parallel training and sharded evaluation, on LibTorch's c10d: a
// TCPStore for the rendezvous and ProcessGroupGloo for the collectives (the engine under PyTorch
// DDP). siamrec writes no socket protocol of its own.
//
// Who joins: the environment says (Env::detect): torchrun's RANK / WORLD_SIZE / LOCAL_RANK /
// MASTER_ADDR / MASTER_PORT (also set by `siamrec launch`), or OpenMPI's OMPI_COMM_WORLD_RANK /
// _SIZE / _LOCAL_RANK under mpirun (MASTER_ADDR / MASTER_PORT from the environment, by default
// 127.0.0.1:29500). Rank 0 hosts the store.
//
// Faults: every collective has the group's timeout; when one fails (a peer died, hung or stopped
// with an error), the Error names the lost rank(s): every rank publishes a heartbeat and the
// number of the collective it is in to the store, and a rank that stops with an error publishes
// its message (report_failure) before it exits.
//
// The default group (world()) is the process's, as torch.distributed's: the CLI joins it, the
// engines and the evaluator ask for it. This header does not include torch.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace siamrec::dist {

// The group described by the environment (world = 1 when none is).
struct Env {
  int rank = 0, world = 1, local_rank = 0;
  std::string addr = "127.0.0.1";
  int port = 29500;
  std::string launcher;  // "torchrun" (RANK / WORLD_SIZE), "mpirun" (OMPI_COMM_WORLD_*) or ""
  // Reads the environment; throws ConfigError naming the variable when one is malformed.
  static Env detect();
};

struct Options {
  std::string backend = "gloo";  // gloo | mpi
  double timeout = 300;          // seconds any collective (and the rendezvous) may take
};

class Group {
 public:
  // Joins the group (blocks until every rank has joined or the timeout passes).
  static std::unique_ptr<Group> join(const Env& env, const Options& opt);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  double timeout() const { return timeout_; }

  // Element-wise sums over ranks, in place. Exact for integers; floats are summed in a fixed
  // order for a fixed world size (identical on every rank, run to run).
  void sum(double* v, size_t n, const char* what);
  void sum(float* v, size_t n, const char* what);
  void sum(int64_t* v, size_t n, const char* what);
  // Every rank's vector (any lengths), in rank order.
  std::vector<std::vector<int64_t>> gather(const std::vector<int64_t>& v, const char* what);
  std::vector<std::vector<float>> gather(const std::vector<float>& v, const char* what);
  // Sparse rows summed over ranks: in, this rank's row ids (distinct) and their values (ids.size()
  // x dim); out, the union of every rank's ids (ascending) and each row's sum over ranks. The ids
  // travel in one gather, the values in one allreduce over the union (zeros where a rank has none):
  // the cost grows with the rows touched, never with the table.
  void sum_rows(std::vector<int64_t>& ids, std::vector<float>& vals, int64_t dim, const char* what);
  // Root's bytes to every rank.
  void broadcast(std::string& bytes, int root, const char* what);
  void broadcast(float* v, size_t n, int root, const char* what);
  void barrier(const char* what);
  // Refuses to go on unless every rank passed the same value (what: "config", "training data").
  void check_same(uint64_t hash, const std::string& what);

  // Bytes this rank sent and received in collectives so far (payload, for the scaling study).
  int64_t bytes() const { return bytes_; }
  int64_t collectives() const { return seq_; }
  // Tells the other ranks why this rank stops (they name it in their errors). Never throws.
  void report_failure(const std::string& message) noexcept;

 private:
  Group() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0, size_ = 1;
  double timeout_ = 300;
  int64_t bytes_ = 0, seq_ = 0;
  // Runs one collective; on failure throws an Error naming what failed and which ranks were lost.
  template <class F>
  void run(const char* what, F&& f);
  [[noreturn]] void lost(const char* what, const std::string& cause);
  void allreduce_raw(void* v, size_t n, int type, size_t elem, const char* what);
};

// The process's default group; nullptr when none was joined (one process).
Group* world();
// Joins the default group from the environment when it describes more than one process; returns
// world(). Joining twice is refused.
Group* join_world(const Options& opt);
// Leaves the default group: a barrier unless `failed`, then teardown.
void leave_world(bool failed = false);
// The group collectives may use now: world(), unless a Solo section is open (work one rank does
// alone, such as writing a report, must not wait for the others in a collective).
Group* active();
class Solo {
 public:
  Solo();
  ~Solo();
  Solo(const Solo&) = delete;
  Solo& operator=(const Solo&) = delete;
};
inline int rank() { return world() ? world()->rank() : 0; }
inline int size() { return world() ? world()->size() : 1; }
inline bool is_root() { return rank() == 0; }

// FNV-1a over bytes, for check_same.
uint64_t hash_bytes(const void* p, size_t n, uint64_t h = 1469598103934665603ULL);

}  // namespace siamrec::dist
