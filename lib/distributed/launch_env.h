// Who this process is in a data-parallel run, read from the launcher's
// environment: torchrun's (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT, and TORCHELASTIC_USE_AGENT_STORE when torchrun's agent
// already serves the rendezvous store), else Slurm's (SLURM_PROCID, SLURM_NTASKS,
// SLURM_LOCALID, ...), else a single process. NCCL's own variables are not read.
#pragma once

#include <functional>
#include <string>

namespace hyft::dist {

struct LaunchEnv {
  int rank = 0, world = 1;              // this process among all
  int local_rank = 0, local_world = 1;  // among the processes of this node
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool agent_store = false;  // torchrun's agent serves the store: every rank connects as a client
  int restart_count = 0;     // torchrun's TORCHELASTIC_RESTART_COUNT (the store's key prefix)
  std::string launcher = "single";  // "torchrun", "slurm" or "single"

  bool distributed() const { return world > 1; }
};

// Reads the variables through `get` (nullptr: unset); a malformed or partial set
// is a UserError naming the variable.
LaunchEnv read_launch_env(const std::function<const char*(const char*)>& get);
// The process environment.
LaunchEnv launch_env();

}  // namespace hyft::dist
