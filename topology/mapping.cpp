#include "topology/mapping.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace ellm::topology {
namespace {

// The unit ranks are given: a whole core, or one hardware thread when ranks outnumber cores.
struct Slot {
  std::vector<int> pus;
  int package = 0, numa = 0;
};

std::vector<Slot> slots_of(const NodeTopology& node, int local_size) {
  const bool whole_cores = local_size <= int(node.cores.size());
  std::vector<Slot> slots;
  for (const Core& c : node.cores) {
    if (whole_cores) {
      slots.push_back({c.pus, c.package, c.numa});
    } else {
      for (const int pu : c.pus) slots.push_back({{pu}, c.package, c.numa});
    }
  }
  return slots;
}

// Slot indexes per (package, NUMA node) domain, ordered so that consecutive domains alternate
// packages: package 0's first domain, package 1's first, package 0's second, ...
std::vector<std::vector<int>> scatter_domains(const std::vector<Slot>& slots) {
  std::map<int, std::map<int, std::vector<int>>> by_package;  // package → numa → slots
  for (int i = 0; i < int(slots.size()); i++) by_package[slots[i].package][slots[i].numa].push_back(i);
  std::vector<std::vector<int>> domains;
  for (std::size_t round = 0;; round++) {
    bool any = false;
    for (const auto& [package, numas] : by_package) {
      if (round >= numas.size()) continue;
      domains.push_back(std::next(numas.begin(), long(round))->second);
      any = true;
    }
    if (!any) return domains;
  }
}

// Rank r of n sharing `pool`: a contiguous block (sizes differ by at most one) when there are
// enough slots, otherwise one slot that it shares with the ranks r ± |pool|.
std::vector<int> share(const std::vector<int>& pool, int r, int n) {
  const int size = int(pool.size());
  if (n > size) return {pool[r % size]};
  return {pool.begin() + r * size / n, pool.begin() + (r + 1) * size / n};
}

std::vector<int> chosen_slots(const std::vector<Slot>& slots, MappingPolicy policy, int r, int n) {
  if (policy == MappingPolicy::Compact) {
    std::vector<int> all(slots.size());
    for (int i = 0; i < int(all.size()); i++) all[i] = i;
    return share(all, r, n);
  }
  const std::vector<std::vector<int>> domains = scatter_domains(slots);
  const int d_count = int(domains.size());
  if (n <= d_count) {  // fewer ranks than domains: rank r takes every n-th domain
    std::vector<int> out;
    for (int d = r; d < d_count; d += n) out.insert(out.end(), domains[d].begin(), domains[d].end());
    return out;
  }
  const int d = r % d_count;
  const int ranks_here = (n - d + d_count - 1) / d_count;  // ranks r' < n with r' % d_count == d
  return share(domains[d], r / d_count, ranks_here);
}

}  // namespace

Placement map_rank(const NodeTopology& node, MappingPolicy policy, int local_rank, int local_size,
                   const std::vector<int>& inherited) {
  Placement p;
  p.policy = policy;
  const std::vector<int> all = node.all_pus();
  if (policy == MappingPolicy::Inherit) {
    std::set_intersection(inherited.begin(), inherited.end(), all.begin(), all.end(), std::back_inserter(p.pus));
    if (p.pus.empty()) p.pus = all;
    p.binding = p.pus == all ? "none" : "inherited";
  } else {
    const std::vector<Slot> slots = slots_of(node, local_size);
    for (const int s : chosen_slots(slots, policy, local_rank, local_size)) {
      p.pus.insert(p.pus.end(), slots[s].pus.begin(), slots[s].pus.end());
    }
    std::sort(p.pus.begin(), p.pus.end());
    p.binding = "set";
  }
  std::set<int> packages, numas;
  for (const Core& c : node.cores) {
    const bool touched = std::ranges::any_of(c.pus, [&](int pu) { return std::ranges::binary_search(p.pus, pu); });
    if (!touched) continue;
    p.cores.push_back(c.index);
    packages.insert(c.package);
    numas.insert(c.numa);
  }
  p.packages.assign(packages.begin(), packages.end());
  p.numa_nodes.assign(numas.begin(), numas.end());
  // An unbound rank shares the whole node with the others, so it takes its even part of it.
  const int cores = p.binding == "none" ? int(node.cores.size()) / local_size : int(p.cores.size());
  p.blas_threads = std::max(1, cores);
  if (!node.gpus.empty()) p.gpu = local_rank % int(node.gpus.size());
  p.oversubscribed = local_size > int(all.size());
  return p;
}

std::vector<double> core_shares(const std::vector<std::vector<int>>& cores_of_ranks) {
  std::map<int, int> holders;
  for (const auto& cores : cores_of_ranks) {
    for (const int c : cores) holders[c]++;
  }
  std::vector<double> shares;
  for (const auto& cores : cores_of_ranks) {
    double share = 0;
    for (const int c : cores) share += 1.0 / holders[c];
    shares.push_back(share);
  }
  return shares;
}

nlohmann::json to_json(const Placement& p, const NodeTopology& node) {
  nlohmann::json gpu = nullptr;
  if (p.gpu >= 0) {
    const Gpu& g = node.gpus[p.gpu];
    gpu = {{"index", p.gpu}, {"pci_busid", g.pci_busid}, {"model", g.model}};
  }
  return {{"policy", policy_name(p.policy)}, {"binding", p.binding}, {"pus", list_text(p.pus)},
          {"cores", list_text(p.cores)}, {"packages", p.packages}, {"numa_nodes", p.numa_nodes},
          {"gpu", gpu}, {"blas_threads", p.blas_threads}, {"oversubscribed", p.oversubscribed}};
}

}  // namespace ellm::topology
