// What one training step sends, per rank, for a dp × tp × ep layout: every collective the trainer
// and the model call (train/trainer.cpp, train/grad_sync.cpp, model/residual_stream.hpp,
// model/gpt.cpp, model/moe.cpp), with its group, buffer size and number of calls. The parameter
// counts come from the model's own layout (plan_model with this rank's tensor-parallel shard),
// the activation sizes from the same (rows·T, C) the layers use. Assumes a balanced routing for
// MoE (every expert gets N·k/E rows) and one micro-batch per step, as the trainer runs it.
#pragma once
#include <string>
#include <vector>

#include <efficientllm/config.hpp>

#include "predict/alpha_beta.hpp"

namespace ellm::predict {

struct Layout {
  int dp = 1, tp = 1, ep = 1;
  int ranks() const { return dp * tp; }
};

// The communicator a collective runs on (mpi/grid.hpp).
enum class Group { tp, dp, edp, ep, world };
const char* group_name(Group g);
int group_size(Group g, const Layout& l);
// World ranks between the group's first and last member, plus one: with ranks placed node by
// node, a group whose span fits in a node's ranks talks over shared memory only.
int group_span(Group g, const Layout& l);

struct Transfer {
  Group group;
  Collective collective;
  double bytes;  // one call's buffer (alpha_beta.hpp's n)
  double calls;  // per step
  std::string what;
};

// Throws std::invalid_argument for a layout or model it cannot describe (naming what and why).
std::vector<Transfer> step_traffic(const RunConfig& run, const Layout& layout, int rows_per_replica);

// Bytes summed over the transfers of one collective kind (calls × bytes): what mpi::Comm's
// CollectiveStats counts on a rank.
double total_bytes(const std::vector<Transfer>& transfers, Collective c);

}  // namespace ellm::predict
