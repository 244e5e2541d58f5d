// efficientllm predict: the scaling predictor (docs/SCALING.md).
//   predict fit SWEEP.json... --link shared_memory|interconnect --out NET.json
//   predict JOB.json --report REPORT.json --network NET.json [--tp T --ep E --max-ranks N ...]
#include <boost/program_options.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/command_line.hpp"
#include "cli/subcommands.hpp"
#include "predict/predict.hpp"
#include "predict/sweep.hpp"

namespace ellm::cli {
namespace po = boost::program_options;
using nlohmann::json;

namespace {

const char* kAssumptions[] = {
    "compute: the single-rank run's work phases (gemm, attention, elementwise, loss) scale with rows per replica "
    "and split evenly over tp; the optimizer splits over tp (and dp with ZeRO-1); 'other' stays",
    "communication: alpha-beta per collective (all-reduce 2 log2(p) a + 2(p-1)/p n b; reduce-scatter and all-gather "
    "log2(p) a + (p-1)/p n b; all-to-all (p-1) a + (p-1)/p n b), on shared memory when the group's ranks fit in one "
    "node (ranks placed node by node, tp innermost), else wholly on the interconnect",
    "communication does not overlap compute (unless --overlap: the dp all-reduce hides behind 2/3 of the work)",
    "MoE routing balanced; one micro-batch per step; scalar collectives (loss, norm, stop) included",
};

int fit_main(const std::vector<std::string>& sweeps, const std::string& link, const std::string& out,
             const std::vector<double>& band_edges) {
  if (link != "shared_memory" && link != "interconnect") throw po::error("--link: shared_memory or interconnect");
  if (sweeps.empty() || out.empty()) throw po::error("predict fit needs SWEEP.json... and --out NET.json");
  std::vector<std::pair<predict::Collective, predict::Sample>> samples;
  std::string source = "fitted by efficientllm predict fit from";
  for (const std::string& f : sweeps) {
    const auto s = predict::read_sweep(f);
    samples.insert(samples.end(), s.begin(), s.end());
    source += " " + std::filesystem::path(f).filename().string();
  }
  json net = std::filesystem::exists(out) ? predict::read_json_file(out) : json{{"description", "network profile"}, {"links", json::object()}};
  for (std::size_t i = 0; i < band_edges.size(); i++) {
    if (!(band_edges[i] > 0) || (i > 0 && band_edges[i] <= band_edges[i - 1])) {
      throw po::error("--band-edge: byte sizes > 0 in ascending order");
    }
  }
  net["links"][link] = predict::link_json(predict::fit_link(samples, source, band_edges));
  std::ofstream(out) << net.dump(2) << "\n";
  std::cout << "efficientllm predict fit: " << link << " → " << out << "\n" << net["links"][link].dump(2) << "\n";
  return 0;
}

// The assumptions of this prediction: the fixed ones and those its options add.
std::vector<std::string> assumptions(const predict::Options& o) {
  std::vector<std::string> a(std::begin(kAssumptions), std::end(kAssumptions));
  a.push_back(std::to_string(o.ranks_per_node) + " ranks per node");
  if (o.cores > 0) a.push_back("one-machine validation: all ranks share " + std::to_string(o.cores) + " cores, compute x max(1, ranks / cores)");
  return a;
}

void print_table(const std::vector<predict::Prediction>& curve, const predict::Network& net,
                 const predict::Options& o) {
  std::printf("# predicted step time (%s)\n", net.description.c_str());
  std::printf("%7s %6s %4s %4s %6s %11s %9s %9s %9s %11s %7s\n", "ranks", "dp", "tp", "ep", "rows", "compute ms",
              "tp ms", "dp ms", "ep ms", "step ms", "eff %");
  for (const predict::Prediction& p : curve) {
    std::printf("%7d %6d %4d %4d %6d %11.2f %9.2f %9.2f %9.2f %11.2f %7.1f\n", p.layout.ranks(), p.layout.dp,
                p.layout.tp, p.layout.ep, p.rows_per_replica, p.compute_s * 1e3, p.tp_s * 1e3, p.dp_s * 1e3,
                p.ep_s * 1e3, p.step_s * 1e3, p.efficiency * 100);
  }
  std::printf("# assumptions (docs/SCALING.md):\n");
  for (const std::string& a : assumptions(o)) std::printf("#  - %s\n", a.c_str());
  for (const auto& [l, link] : net.links) std::printf("#  - %s: %s\n", predict::link_name(l), link.source.c_str());
}

}  // namespace

int predict_main(int argc, char** argv) {
  std::string report, network, link, out;
  std::vector<double> band_edges;
  int run_index = 0, tp = 1, ep = 1, max_ranks = 10000, global_batch = 0;
  predict::Options o;
  po::options_description desc(
      "efficientllm predict JOB.json --report REPORT.json --network NET.json [options]\n"
      "efficientllm predict fit SWEEP.json... --link shared_memory|interconnect --out NET.json");
  desc.add_options()("help,h", "show this help")("report", po::value(&report), "report.json of a one-rank run of the job")(
      "network", po::value(&network), "network file: alpha and bandwidth per link class (docs/SCALING.md)")(
      "run", po::value(&run_index), "the run of the job and report (index, default 0)")(
      "tp", po::value(&tp), "tensor-parallel ranks per replica (default 1)")(
      "ep", po::value(&ep), "expert-parallel ranks (default 1; must divide dp)")(
      "max-ranks", po::value(&max_ranks), "the curve's largest rank count (default 10000)")(
      "global-batch", po::value(&global_batch),
      "strong scaling at this global batch (default: weak scaling, the measured batch per replica)")(
      "ranks-per-node", po::value(&o.ranks_per_node), "ranks sharing a node's memory (default 2)")(
      "cores", po::value(&o.cores), "one-machine validation: all ranks share this many cores")(
      "overlap", po::bool_switch(&o.overlap), "hide the dp all-reduce behind backward (parallel.overlap)")(
      "json", "print JSON")("link", po::value(&link), "fit: the link class the sweeps measured")(
      "out", po::value(&out), "fit: the network file to write (an existing one keeps its other link)")(
      "band-edge", po::value(&band_edges)->composing(),
      "fit: a message size (bytes) where a new alpha-beta band starts (repeatable; default one band)");
  po::variables_map vm;
  try {
    vm = parse_command_line(argc, argv, desc, "args", -1);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    const auto args = vm.count("args") ? vm["args"].as<std::vector<std::string>>() : std::vector<std::string>{};
    if (!args.empty() && args[0] == "fit") return fit_main({args.begin() + 1, args.end()}, link, out, band_edges);
    if (args.size() != 1 || report.empty() || network.empty()) throw po::error("needs JOB.json, --report and --network");
    if (tp < 1 || ep < 1 || max_ranks < 1 || global_batch < 0 || o.ranks_per_node < 1 || o.cores < 0) {
      throw po::error("--tp, --ep, --max-ranks, --ranks-per-node must be ≥ 1; --global-batch, --cores ≥ 0");
    }
    const Job job = load_job(args[0]);
    if (run_index < 0 || run_index >= int(job.runs.size())) throw po::error("--run: the job has " + std::to_string(job.runs.size()) + " run(s)");
    const json measured = predict::read_json_file(report);
    const predict::Measured m = predict::read_measured(measured, run_index, report);
    if (measured["runs"][run_index]["config"]["model"] != job.runs[run_index].as_json["model"]) {
      throw std::runtime_error(report + ": /runs/" + std::to_string(run_index) + "/config/model: not the model of " +
                               args[0] + "'s run " + std::to_string(run_index) + " (measure the job you predict)");
    }
    const predict::Network net = predict::load_network(network);
    const auto curve = predict::predict_curve(job.runs[run_index], m, net, tp, ep, max_ranks, global_batch, o);
    if (curve.empty()) {
      throw po::error("no layout up to --max-ranks " + std::to_string(max_ranks) + " has tp " + std::to_string(tp) +
                      ", ep dividing dp" + (global_batch > 0 ? " and dp dividing --global-batch" : std::string()));
    }
    if (vm.count("json")) {
      json j = {{"assumptions", assumptions(o)}, {"network", predict::network_json(net)}, {"curve", json::array()}};
      for (const auto& p : curve) j["curve"].push_back(predict::prediction_json(p));
      std::cout << j.dump(2) << "\n";
    } else {
      print_table(curve, net, o);
    }
    return 0;
  } catch (const po::error& e) {
    std::cerr << "efficientllm predict: " << e.what() << "\n" << desc << "\n";
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "efficientllm predict: " << e.what() << "\n";
    return kExitBadInput;
  }
}

}  // namespace ellm::cli
