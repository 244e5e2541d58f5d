// Topology discovery and the mapping policies on synthetic machines (tests/topologies/*.xml,
// described in tests/topologies/README.md): 1, 2, 8 and 64 ranks on each.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "topology/mapping.hpp"
#include "topology/topology.hpp"

namespace ellm::topology {
namespace {

NodeTopology machine(const std::string& name) {
  return load_xml(std::string(ELLM_SOURCE_DIR) + "/tests/topologies/" + name + ".xml");
}

std::vector<Placement> map_all(const NodeTopology& node, MappingPolicy policy, int ranks) {
  std::vector<Placement> out;
  for (int r = 0; r < ranks; r++) out.push_back(map_rank(node, policy, r, ranks, node.all_pus()));
  return out;
}

TEST(Discovery, ServerHasTwoPackagesFourNumaNodes64CoresAnd8Gpus) {
  const NodeTopology s = machine("server-2s-64c-8gpu");
  EXPECT_EQ(s.packages, 2);
  EXPECT_EQ(s.numa_nodes, 4);
  ASSERT_EQ(s.cores.size(), 64u);
  EXPECT_EQ(s.pu_count(), 128);
  EXPECT_EQ(s.cores[0].pus, (std::vector<int>{0, 64}));  // hyper-thread siblings 64 apart
  EXPECT_EQ(s.cores[40].package, 1);
  EXPECT_EQ(s.cores[40].numa, 2);
  // Four OS devices (cuda, nvml, card, renderD) under one PCI device are one GPU.
  ASSERT_EQ(s.gpus.size(), 8u);
  EXPECT_EQ(s.gpus[0].model, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(s.gpus[0].pci_busid, "0000:10:00.0");
  EXPECT_EQ(s.gpus[0].os_devices.size(), 4u);
  EXPECT_EQ(s.gpus[5].package, 1);
  EXPECT_EQ(s.gpus[5].numa, 2);
  ASSERT_EQ(s.caches.size(), 3u);
  EXPECT_EQ(s.caches[2].name, "L3");
  EXPECT_EQ(s.caches[2].count, 4);
  EXPECT_EQ(s.caches[2].size_bytes, 32u << 20);
}

TEST(Discovery, DesktopAndThisVm) {
  const NodeTopology d = machine("desktop-1s-8c-1gpu");
  EXPECT_EQ(d.cores.size(), 8u);
  EXPECT_EQ(d.pu_count(), 16);
  ASSERT_EQ(d.gpus.size(), 1u);
  EXPECT_EQ(d.gpus[0].model, "NVIDIA GeForce RTX 4070");
  const NodeTopology vm = machine("vm-2core");
  EXPECT_EQ(vm.cores.size(), 2u);
  EXPECT_EQ(vm.pu_count(), 2);
  EXPECT_EQ(vm.cpu_model, "AMD EPYC");
  EXPECT_TRUE(vm.gpus.empty());  // a disk and a NIC on PCI, no accelerator
}

TEST(Discovery, MissingXmlIsAnError) {
  EXPECT_THROW(load_xml("/nonexistent/topology.xml"), std::runtime_error);
}

TEST(ListText, CompressesRuns) {
  EXPECT_EQ(list_text({0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11");
  EXPECT_EQ(list_text({5}), "5");
  EXPECT_EQ(list_text({}), "");
}

// ---- the server: 2 packages × 2 NUMA nodes × 16 cores × 2 hardware threads, 8 GPUs ----

TEST(ServerMapping, OneRankGetsTheWholeNodeCompactOrScatter) {
  const NodeTopology s = machine("server-2s-64c-8gpu");
  for (const MappingPolicy p : {MappingPolicy::Compact, MappingPolicy::Scatter}) {
    const Placement r = map_all(s, p, 1)[0];
    EXPECT_EQ(r.cores.size(), 64u);
    EXPECT_EQ(r.pus.size(), 128u);
    EXPECT_EQ(r.blas_threads, 64);
    EXPECT_EQ(r.gpu, 0);
    EXPECT_FALSE(r.oversubscribed);
  }
}

TEST(ServerMapping, TwoRanksGetOnePackageEach) {
  const NodeTopology s = machine("server-2s-64c-8gpu");
  for (const MappingPolicy p : {MappingPolicy::Compact, MappingPolicy::Scatter}) {
    const std::vector<Placement> r = map_all(s, p, 2);
    EXPECT_EQ(r[0].packages, std::vector<int>{0});
    EXPECT_EQ(r[1].packages, std::vector<int>{1});
    EXPECT_EQ(r[0].cores.size(), 32u);
    EXPECT_EQ(r[1].numa_nodes, (std::vector<int>{2, 3}));
    EXPECT_EQ(r[1].gpu, 1);
  }
}

TEST(ServerMapping, EightRanksCompactFillsNumaNodesInOrder) {
  const std::vector<Placement> r = map_all(machine("server-2s-64c-8gpu"), MappingPolicy::Compact, 8);
  for (int i = 0; i < 8; i++) {
    EXPECT_EQ(r[i].cores.size(), 8u);
    EXPECT_EQ(r[i].cores.front(), 8 * i);
    EXPECT_EQ(r[i].numa_nodes, std::vector<int>{i / 2});
    EXPECT_EQ(r[i].gpu, i);
  }
  EXPECT_EQ(list_text(r[0].pus), "0-7,64-71");  // whole cores: both hardware threads
}

TEST(ServerMapping, EightRanksScatterAlternatePackagesThenNumaNodes) {
  const std::vector<Placement> r = map_all(machine("server-2s-64c-8gpu"), MappingPolicy::Scatter, 8);
  // Domain order: (pkg 0, numa 0), (pkg 1, numa 2), (pkg 0, numa 1), (pkg 1, numa 3).
  const int numa_of_rank[] = {0, 2, 1, 3, 0, 2, 1, 3};
  for (int i = 0; i < 8; i++) {
    EXPECT_EQ(r[i].numa_nodes, std::vector<int>{numa_of_rank[i]}) << "rank " << i;
    EXPECT_EQ(r[i].packages, std::vector<int>{i % 2}) << "rank " << i;
    EXPECT_EQ(r[i].cores.size(), 8u);
  }
  EXPECT_EQ(r[0].cores.front(), 0);
  EXPECT_EQ(r[4].cores.front(), 8);  // the second rank on NUMA node 0 takes its second half
  EXPECT_EQ(r[1].cores.front(), 32);
}

TEST(ServerMapping, SixtyFourRanksOneCoreEach) {
  const NodeTopology s = machine("server-2s-64c-8gpu");
  for (const MappingPolicy p : {MappingPolicy::Compact, MappingPolicy::Scatter}) {
    const std::vector<Placement> r = map_all(s, p, 64);
    std::vector<int> seen;
    for (const Placement& x : r) {
      ASSERT_EQ(x.cores.size(), 1u);
      EXPECT_EQ(x.pus.size(), 2u);
      EXPECT_EQ(x.blas_threads, 1);
      seen.push_back(x.cores[0]);
    }
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(std::unique(seen.begin(), seen.end()), seen.end()) << "two ranks share a core";
    EXPECT_EQ(r[63].gpu, 7);
  }
  EXPECT_EQ(map_all(s, MappingPolicy::Scatter, 64)[1].packages, std::vector<int>{1});
  EXPECT_EQ(map_all(s, MappingPolicy::Compact, 64)[1].packages, std::vector<int>{0});
}

// ---- the desktop: 8 cores × 2 hardware threads, 1 GPU ----

TEST(DesktopMapping, OneTwoEightAndSixtyFourRanks) {
  const NodeTopology d = machine("desktop-1s-8c-1gpu");
  EXPECT_EQ(map_all(d, MappingPolicy::Compact, 1)[0].blas_threads, 8);
  const std::vector<Placement> two = map_all(d, MappingPolicy::Scatter, 2);  // one domain: as compact
  EXPECT_EQ(list_text(two[1].cores), "4-7");
  EXPECT_EQ(two[1].gpu, 0);  // one GPU shared: local rank modulo GPU count
  const std::vector<Placement> eight = map_all(d, MappingPolicy::Compact, 8);
  EXPECT_EQ(list_text(eight[3].pus), "3,11");
  EXPECT_FALSE(eight[7].oversubscribed);
  // 64 ranks on 16 hardware threads: one PU each, four ranks per PU.
  const std::vector<Placement> many = map_all(d, MappingPolicy::Compact, 64);
  EXPECT_TRUE(many[0].oversubscribed);
  EXPECT_EQ(many[0].pus, many[16].pus);
  EXPECT_EQ(many[0].pus.size(), 1u);
}

TEST(DesktopMapping, SixteenRanksTakeOneHardwareThreadEach) {
  const std::vector<Placement> r = map_all(machine("desktop-1s-8c-1gpu"), MappingPolicy::Compact, 16);
  EXPECT_EQ(r[0].pus, std::vector<int>{0});
  EXPECT_EQ(r[1].pus, std::vector<int>{8});  // the sibling of PU 0 on core 0
  EXPECT_EQ(r[1].cores, std::vector<int>{0});
  EXPECT_FALSE(r[15].oversubscribed);
}

// ---- this VM: 2 cores, no GPU ----

TEST(VmMapping, OneTwoEightAndSixtyFourRanks) {
  const NodeTopology vm = machine("vm-2core");
  EXPECT_EQ(map_all(vm, MappingPolicy::Compact, 1)[0].blas_threads, 2);
  const std::vector<Placement> two = map_all(vm, MappingPolicy::Compact, 2);
  EXPECT_EQ(two[0].pus, std::vector<int>{0});
  EXPECT_EQ(two[1].pus, std::vector<int>{1});
  EXPECT_EQ(two[1].gpu, -1);
  for (const int n : {8, 64}) {
    const std::vector<Placement> r = map_all(vm, MappingPolicy::Scatter, n);
    EXPECT_TRUE(r[0].oversubscribed);
    EXPECT_EQ(r[2].pus, std::vector<int>{0});
    EXPECT_EQ(r[n - 1].pus, std::vector<int>{1});
  }
}

TEST(Inherit, KeepsTheLaunchersBindingOrSharesTheNodeWhenUnbound) {
  const NodeTopology s = machine("server-2s-64c-8gpu");
  const Placement bound = map_rank(s, MappingPolicy::Inherit, 1, 2, {32, 33, 96, 97});
  EXPECT_EQ(bound.binding, "inherited");
  EXPECT_EQ(bound.cores, (std::vector<int>{32, 33}));
  EXPECT_EQ(bound.blas_threads, 2);
  EXPECT_EQ(bound.packages, std::vector<int>{1});
  const Placement unbound = map_rank(s, MappingPolicy::Inherit, 0, 4, s.all_pus());
  EXPECT_EQ(unbound.binding, "none");
  EXPECT_EQ(unbound.blas_threads, 16);  // 64 cores shared by 4 ranks
}

TEST(CoreShares, SharedCoresAreSplit) {
  EXPECT_EQ(core_shares({{0}, {1}}), (std::vector<double>{1, 1}));
  EXPECT_EQ(core_shares({{0}, {0}, {1}, {1}}), (std::vector<double>{0.5, 0.5, 0.5, 0.5}));
  EXPECT_EQ(core_shares({{0, 1}, {0, 1}}), (std::vector<double>{1, 1}));  // unbound on 2 cores
  EXPECT_EQ(core_shares({{0, 1, 2}, {2}}), (std::vector<double>{2.5, 0.5}));
}

}  // namespace
}  // namespace ellm::topology
