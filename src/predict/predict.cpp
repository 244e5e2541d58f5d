#include "predict/predict.hpp"

#include <algorithm>
#include <stdexcept>

namespace ellm::predict {
namespace {

double phase(const nlohmann::json& phases, const char* name, const std::string& file, const std::string& at) {
  if (!phases.contains(name) || !phases[name].is_number()) {
    throw std::runtime_error(file + ": " + at + "/" + name + ": missing (a report written since phase_seconds exists is needed)");
  }
  return phases[name].get<double>();
}

// Seconds of one step's collectives, each on the link its group's span allows.
void communication(const std::vector<Transfer>& transfers, const Network& net, const Layout& l,
                   const Options& o, Prediction& p) {
  for (const Transfer& t : transfers) {
    const Link link = group_span(t.group, l) <= o.ranks_per_node ? Link::shared_memory : Link::interconnect;
    const double s = t.calls * collective_seconds(t.collective, group_size(t.group, l), t.bytes,
                                                  net.link(link).at(t.collective, t.bytes));
    (t.group == Group::tp ? p.tp_s : t.group == Group::ep ? p.ep_s : p.dp_s) += s;
  }
}

}  // namespace

Measured read_measured(const nlohmann::json& report, int run_index, const std::string& file) {
  const std::string at = "/runs/" + std::to_string(run_index);
  if (!report.contains("runs") || !report["runs"].is_array() || run_index < 0 ||
      run_index >= int(report["runs"].size())) {
    throw std::runtime_error(file + ": /runs: no run " + std::to_string(run_index) + " in this report");
  }
  const nlohmann::json& run = report["runs"][run_index];
  if (!run.contains("ranks") || run["ranks"].size() != 1) {
    throw std::runtime_error(file + ": " + at + "/ranks: the measured run must have one rank (run it without mpirun)");
  }
  const nlohmann::json& phases = run["ranks"][0].value("phase_seconds", nlohmann::json());
  const std::string pat = at + "/ranks/0/phase_seconds";
  Measured m;
  m.gemm = phase(phases, "gemm", file, pat);
  m.attention = phase(phases, "attention", file, pat);
  m.elementwise = phase(phases, "elementwise", file, pat);
  m.loss = phase(phases, "loss", file, pat);
  m.optimizer = phase(phases, "optimizer", file, pat);
  m.other = phase(phases, "other", file, pat);
  const nlohmann::json batch = run.value(nlohmann::json::json_pointer("/config/training/batch_size"), nlohmann::json());
  if (!batch.is_number_integer() || batch.get<int>() < 1) {
    throw std::runtime_error(file + ": " + at + "/config/training/batch_size: missing (not a report of efficientllm run?)");
  }
  m.rows = batch.get<int>();
  return m;
}

Prediction predict_step(const RunConfig& run, const Measured& m, const Network& net, const Layout& l,
                        int rows, const Options& o) {
  Prediction p;
  p.layout = l;
  p.rows_per_replica = rows;
  // Work phases scale with the rows and split over tp; the optimizer splits over tp (its shard)
  // and, with ZeRO-1, over dp; the rest (data, bookkeeping) stays.
  const double optimizer_share = double(l.tp) * (run.parallel.zero1 ? l.dp : 1);
  const double work = m.work() * rows / m.rows / l.tp;
  p.compute_s = work + m.optimizer / optimizer_share + m.other;
  if (o.cores > 0) p.compute_s *= std::max(1.0, l.ranks() / o.cores);
  communication(step_traffic(run, l, rows), net, l, o, p);
  if (o.overlap && run.parallel.overlap && !run.parallel.zero1) p.hidden_s = std::min(p.dp_s, work * 2 / 3);
  p.step_s = p.compute_s + p.tp_s + p.dp_s + p.ep_s - p.hidden_s;
  // Against one rank doing the same work: the whole global batch under strong scaling (N ranks
  // share it), one replica's rows under weak scaling (its tp ranks share them). Weak scaling keeps
  // ZeRO-1's optimizer share in the reference: a replica that updates 1/dp of the weights does
  // less work than one rank alone, and without it the efficiency could pass 100 %.
  const double reference_rows = o.strong ? double(rows) * l.dp : rows;
  const double reference_optimizer = o.strong || !run.parallel.zero1 ? m.optimizer : m.optimizer / l.dp;
  const double one_rank = m.work() * reference_rows / m.rows + reference_optimizer + m.other;
  p.efficiency = one_rank / ((o.strong ? l.ranks() : l.tp) * p.step_s);
  return p;
}

std::vector<Prediction> predict_curve(const RunConfig& run, const Measured& m, const Network& net,
                                      int tp, int ep, int max_ranks, int global_batch, const Options& o) {
  std::vector<int> sizes;
  for (int n = 1; n < max_ranks; n *= 2) sizes.push_back(n);
  sizes.push_back(max_ranks);
  std::vector<Prediction> curve;
  for (int n : sizes) {
    if (n % tp != 0 || (n / tp) % ep != 0) continue;
    const int dp = n / tp;
    if (global_batch > 0 && global_batch % dp != 0) continue;
    const int rows = global_batch > 0 ? global_batch / dp : m.rows;
    Options strong = o;
    strong.strong = global_batch > 0;
    curve.push_back(predict_step(run, m, net, {dp, tp, ep}, rows, strong));
  }
  return curve;
}

nlohmann::json prediction_json(const Prediction& p) {
  return {{"ranks", p.layout.ranks()}, {"dp", p.layout.dp}, {"tp", p.layout.tp}, {"ep", p.layout.ep},
          {"rows_per_replica", p.rows_per_replica}, {"compute_s", p.compute_s}, {"tp_s", p.tp_s},
          {"dp_s", p.dp_s}, {"ep_s", p.ep_s}, {"hidden_s", p.hidden_s}, {"step_s", p.step_s},
          {"efficiency", p.efficiency}};
}

}  // namespace ellm::predict
