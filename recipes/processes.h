// How a recipe joins the other processes of a data-parallel run (torchrun,
// Slurm): each takes the GPU of its local rank, or the CPU, and only rank 0
// prints to stdout.
#pragma once

#include "distributed/communicator.h"

#include <cstdint>
#include <memory>
#include <string>

namespace hyft::recipes {

// nullptr for a single process. Otherwise `device` ("auto", "cuda" or "cpu"; a
// numbered GPU is refused) becomes this rank's ("cuda:LOCAL_RANK" or "cpu"), and
// collectives give up after `timeout_s`.
std::unique_ptr<dist::Communicator> join_processes(std::string& device, int64_t timeout_s);

}  // namespace hyft::recipes
