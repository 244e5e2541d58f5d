#include <boost/program_options.hpp>
#include <iostream>

#include "cli/node_setup.hpp"
#include "cli/subcommands.hpp"
#include "report/writer.hpp"

namespace ellm::cli {
namespace po = boost::program_options;
using nlohmann::json;

int topo_main(int argc, char** argv) {
  po::options_description desc("efficientllm topo [options]  (under mpirun: the whole cluster)");
  std::string policy_text;
  desc.add_options()("help,h", "show this help")(
      "policy", po::value(&policy_text)->default_value("inherit"), "mapping policy: inherit, compact or scatter")(
      "json", "print JSON instead of tables");
  po::variables_map vm;
  MappingPolicy policy;
  try {
    po::store(po::command_line_parser(argc - 1, argv + 1).options(desc).run(), vm);
    po::notify(vm);
    policy = parse_policy(policy_text, "--policy");
  } catch (const std::exception& e) {  // po::error or JobError: both name the flag
    std::cerr << "efficientllm topo: " << e.what() << "\n" << desc << "\n";
    return kExitBadInput;
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }

  mpi::Session session(&argc, &argv);
  mpi::Comm world = mpi::Comm::world();
  std::vector<std::string> all;
  try {
    NodeContext node = describe_node(world);
    json mine = {{"rank", world.rank()},       {"host", world.host()},
                 {"node", node.leader},        {"local_rank", node.node.rank()},
                 {"placement", place_rank(node, policy)}, {"node_info", node_info(node)}};
    all = world.gather_strings(mine.dump());
  } catch (const std::exception& e) {  // e.g. the OS refused a binding: end every rank
    mpi::abort_all(std::string("efficientllm topo: error: ") + e.what() + "\n", 1);
  }
  if (!world.is_root()) return 0;

  json ranks = json::array(), nodes = json::array(), oversubscribed = json::array();
  for (const std::string& text : all) {
    json r = json::parse(text);
    if (!r["node_info"].is_null()) {
      json n = r["node_info"];
      n["node"] = r["rank"];
      if (n["ranks_on_node"].get<int>() > n["topology"]["pus"].get<int>()) oversubscribed.push_back(n["host"]);
      nodes.push_back(n);
    }
    r.erase("node_info");
    ranks.push_back(r);
  }
  if (vm.count("json")) {
    std::cout << json({{"policy", policy_text}, {"nodes", nodes}, {"ranks", ranks}, {"oversubscribed_hosts", oversubscribed}}).dump(2)
              << "\n";
    return 0;
  }
  std::cout << render_topology(nodes) << "\npolicy " << policy_text << ", " << ranks.size() << " rank(s):\n\n"
            << render_placements(ranks);
  for (const json& h : oversubscribed) {
    std::cout << "\nwarning: host " << h.get<std::string>() << " is oversubscribed (more ranks than hardware threads)\n";
  }
  return 0;
}

}  // namespace ellm::cli
