// Data-parallel training and sharded evaluation across processes (docs/distributed.md). A process
// joins the group its environment describes: `siamrec launch --nproc N` (one machine), torchrun's
// RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT, or mpirun's OMPI_COMM_WORLD_*.
// Then Model::fit trains on this rank's share of every mini-batch and evaluate() ranks this
// rank's share of the users, with the same results on every rank; rank 0 alone should write files.
#pragma once
#include <string>

#include <siamrec/config.h>

namespace siamrec::api {

struct ProcessGroup {
  int rank = 0, size = 1, local_rank = 0;
  std::string launcher;  // "torchrun", "mpirun" or "" (one process)
  bool root() const { return rank == 0; }
};

// Joins the group of the environment with the config's dist.backend and dist.timeout; a single
// process (no group in the environment) joins nothing and gets size 1. Throws ConfigError for a
// malformed environment, Error when the other ranks cannot be reached within dist.timeout.
ProcessGroup join_process_group(const ConfigSource& config);
// The group joined (size 1 when none).
ProcessGroup process_group();
// Leaves the group: a final barrier, unless this rank failed (then no collective is attempted).
void leave_process_group(bool failed = false);
// Tells the other ranks why this rank stops (their errors quote it). Never throws.
void report_process_failure(const std::string& message) noexcept;
// While one lives, this process runs no collective (work rank 0 does alone, e.g. a report).
class RankLocal {
 public:
  RankLocal();
  ~RankLocal();
  RankLocal(const RankLocal&) = delete;
  RankLocal& operator=(const RankLocal&) = delete;

 private:
  void* solo_;
};

}  // namespace siamrec::api
