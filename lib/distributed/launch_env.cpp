#include "distributed/launch_env.h"

#include "common/error.h"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace hyft::dist {

namespace {

int read_int(const std::function<const char*(const char*)>& get, const char* name, int lo) {
  const char* text = get(name);
  HYFT_CHECK(text && *text, "the launcher's environment sets some of RANK/WORLD_SIZE but not ", name,
             "; start hyft through torchrun (torchrun --nproc-per-node N build/bin/hyft finetune ...) or srun");
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  HYFT_CHECK(end && *end == '\0' && v >= lo && v < (1L << 24), "environment variable ", name, "='", text,
             "' is not a whole number >= ", lo);
  return int(v);
}

// "2(x3),1" or "4": the tasks of the first node, as SLURM_TASKS_PER_NODE writes them.
int first_node_tasks(const char* text) { return text ? std::atoi(text) : 0; }

}  // namespace

LaunchEnv read_launch_env(const std::function<const char*(const char*)>& get) {
  LaunchEnv e;
  auto set = [&](const char* name) { return get(name) && *get(name); };
  if (set("RANK") || set("WORLD_SIZE")) {
    e.launcher = "torchrun";
    e.rank = read_int(get, "RANK", 0);
    e.world = read_int(get, "WORLD_SIZE", 1);
    e.local_rank = set("LOCAL_RANK") ? read_int(get, "LOCAL_RANK", 0) : e.rank;
    e.local_world = set("LOCAL_WORLD_SIZE") ? read_int(get, "LOCAL_WORLD_SIZE", 1) : e.world;
    if (e.world > 1) {
      HYFT_CHECK(set("MASTER_ADDR"), "WORLD_SIZE=", e.world, " but MASTER_ADDR is not set; torchrun sets it "
                 "(--rdzv-endpoint / --master-addr)");
      e.master_addr = get("MASTER_ADDR");
      e.master_port = read_int(get, "MASTER_PORT", 1);
    }
    e.agent_store = set("TORCHELASTIC_USE_AGENT_STORE") && std::string(get("TORCHELASTIC_USE_AGENT_STORE")) == "True";
    if (set("TORCHELASTIC_RESTART_COUNT")) e.restart_count = read_int(get, "TORCHELASTIC_RESTART_COUNT", 0);
  } else if (set("SLURM_PROCID") && set("SLURM_NTASKS")) {
    e.launcher = "slurm";
    e.rank = read_int(get, "SLURM_PROCID", 0);
    e.world = read_int(get, "SLURM_NTASKS", 1);
    e.local_rank = set("SLURM_LOCALID") ? read_int(get, "SLURM_LOCALID", 0) : 0;
    e.local_world = std::max(1, first_node_tasks(get("SLURM_TASKS_PER_NODE")));
    if (e.world > 1) {
      // The first node of the allocation serves the store: MASTER_ADDR when the job
      // script exports it, else the node srun was started from.
      const char* addr = set("MASTER_ADDR") ? get("MASTER_ADDR") : get("SLURM_LAUNCH_NODE_IPADDR");
      HYFT_CHECK(addr && *addr, "Slurm job with ", e.world, " tasks but neither MASTER_ADDR nor "
                 "SLURM_LAUNCH_NODE_IPADDR is set; export MASTER_ADDR=$(scontrol show hostnames "
                 "\"$SLURM_JOB_NODELIST\" | head -n 1) in the job script");
      e.master_addr = addr;
      // A port of the job's own, so two jobs on one node do not meet.
      e.master_port = set("MASTER_PORT") ? read_int(get, "MASTER_PORT", 1)
                      : set("SLURM_JOB_ID") ? 20000 + read_int(get, "SLURM_JOB_ID", 0) % 20000
                                            : 29500;
    }
  }
  HYFT_CHECK(e.rank < e.world, "rank ", e.rank, " is not below the world size ", e.world);
  return e;
}

LaunchEnv launch_env() {
  return read_launch_env([](const char* name) { return std::getenv(name); });
}

}  // namespace hyft::dist
