// The scaling predictor's arithmetic (src/predict): the α–β step counts, the least-squares fit on
// synthetic α–β data with noise (it must recover α and β), the network file's errors, and the
// step-time prediction's bookkeeping on a layout small enough to work out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "model/plan.hpp"
#include "predict/predict.hpp"
#include "predict/sweep.hpp"
#include "util/rng.hpp"

namespace ellm::predict {
namespace {

TEST(AlphaBeta, StepCountsOfTheAssumedAlgorithms) {
  const AlphaBeta link{1e-6, 1e-9};  // 1 µs, 1 GB/s
  // p = 8: 3 recursive-halving/doubling steps; 7/8 of the buffer moves once (twice for all-reduce)
  EXPECT_NEAR(collective_seconds(Collective::all_reduce, 8, 8e6, link), 6e-6 + 2 * 7e6 * 1e-9, 1e-12);
  EXPECT_NEAR(collective_seconds(Collective::reduce_scatter, 8, 8e6, link), 3e-6 + 7e6 * 1e-9, 1e-12);
  EXPECT_NEAR(collective_seconds(Collective::all_gather, 5, 5e6, link), 3e-6 + 4e6 * 1e-9, 1e-12);
  EXPECT_NEAR(collective_seconds(Collective::all_to_all, 8, 8e6, link), 7e-6 + 7e6 * 1e-9, 1e-12);
  EXPECT_EQ(collective_seconds(Collective::all_reduce, 1, 8e6, link), 0.0);  // nothing to talk to
}

// Times from a known α, β through the formula, each off by up to ±5 % (seeded), at 2–16 ranks
// and 1 KiB – 64 MiB: the fit recovers α and β within 5 %.
TEST(AlphaBeta, FitRecoversAlphaAndBetaFromNoisySyntheticSweeps) {
  const AlphaBeta truth{8e-6, 1 / 3e9};
  Rng rng(5);
  for (Collective c : kCollectives) {
    std::vector<Sample> samples;
    for (int p : {2, 4, 8, 16}) {
      for (double bytes = 1024; bytes <= 64 << 20; bytes *= 4) {
        const double noise = 1 + 0.05 * (2 * rng.uniform() - 1);
        samples.push_back({p, bytes, collective_seconds(c, p, bytes, truth) * noise});
      }
    }
    const AlphaBeta fit = fit_alpha_beta(c, samples);
    EXPECT_NEAR(fit.alpha_s, truth.alpha_s, 0.05 * truth.alpha_s) << collective_name(c);
    EXPECT_NEAR(fit.beta_s_per_byte, truth.beta_s_per_byte, 0.05 * truth.beta_s_per_byte) << collective_name(c);
  }
}

TEST(AlphaBeta, FitNeedsTwoSizesAndPositiveTimes) {
  EXPECT_THROW(fit_alpha_beta(Collective::all_reduce, {{2, 1024, 1e-5}, {4, 1024, 2e-5}}), std::invalid_argument);
  EXPECT_THROW(fit_alpha_beta(Collective::all_reduce, {{2, 1024, 0}, {2, 4096, 1e-5}}), std::invalid_argument);
  // latency-free data: α is fixed at 0 rather than fitted negative
  const AlphaBeta f = fit_alpha_beta(Collective::all_gather, {{2, 1e6, 0.5e-3}, {2, 4e6, 2e-3}});
  EXPECT_EQ(f.alpha_s, 0.0);
  EXPECT_NEAR(f.beta_s_per_byte, 1e-9, 1e-15);
}

nlohmann::json network_file() {
  return nlohmann::json::parse(R"({"description": "test",
    "links": {"shared_memory": {"alpha_us": 2, "bandwidth_gb_s": 4,
                                "collectives": {"all_to_all": {"alpha_us": 5, "bandwidth_gb_s": 2}}},
              "interconnect": {"alpha_us": 100, "bandwidth_gb_s": 0.01}}})");
}

TEST(Network, LinkFiguresAndPerCollectiveOverrides) {
  const Network n = parse_network(network_file(), "net.json");
  EXPECT_DOUBLE_EQ(n.link(Link::shared_memory).at(Collective::all_reduce, 1).alpha_s, 2e-6);
  EXPECT_DOUBLE_EQ(n.link(Link::shared_memory).at(Collective::all_to_all, 1).beta_s_per_byte, 0.5e-9);
  EXPECT_DOUBLE_EQ(n.link(Link::interconnect).at(Collective::all_gather, 1).beta_s_per_byte, 1e-7);
  // written and read back: the same figures
  const Network again = parse_network(network_json(n), "again");
  EXPECT_DOUBLE_EQ(again.link(Link::shared_memory).at(Collective::all_to_all, 1).alpha_s, 5e-6);
}

// Two regimes, as a network whose large messages slow down: the banded fit recovers each, the
// file keeps them, and a call takes its size's band.
TEST(Network, SizeBandsAreFittedWrittenAndLookedUp) {
  const AlphaBeta small{5e-6, 1 / 4.8e6}, large{5e-6, 1 / 3.5e6};
  std::vector<std::pair<Collective, Sample>> samples;
  for (Collective c : kCollectives) {
    for (int p : {2, 4, 8}) {
      for (double bytes = 4096; bytes <= 4 << 20; bytes *= 4) {
        samples.push_back({c, {p, bytes, collective_seconds(c, p, bytes, bytes < 524288 ? small : large)}});
      }
    }
  }
  const LinkClass banded = fit_link(samples, "synthetic", {524288});
  for (Collective c : kCollectives) {
    ASSERT_EQ(banded[c].size(), 2u);
    EXPECT_NEAR(banded.at(c, 65536).beta_s_per_byte, small.beta_s_per_byte, 1e-6 * small.beta_s_per_byte);
    EXPECT_NEAR(banded.at(c, 1 << 20).beta_s_per_byte, large.beta_s_per_byte, 1e-6 * large.beta_s_per_byte);
  }
  // One band cannot hold both: β lands between them.
  const double one = fit_link(samples, "synthetic")[Collective::all_reduce].back().link.beta_s_per_byte;
  EXPECT_GT(one, small.beta_s_per_byte * 1.01);
  EXPECT_LT(one, large.beta_s_per_byte * 0.99);
  // Written and read back: the same bands.
  const Network n = parse_network({{"links", {{"shared_memory", link_json(banded)}, {"interconnect", link_json(banded)}}}}, "b.json");
  EXPECT_NEAR(n.link(Link::interconnect).at(Collective::all_gather, 1e5).beta_s_per_byte, small.beta_s_per_byte, 1e-12);
  EXPECT_NEAR(n.link(Link::interconnect).at(Collective::all_gather, 1e7).beta_s_per_byte, large.beta_s_per_byte, 1e-12);
  // A band with one size cannot be fitted: the message says which.
  try {
    fit_link(samples, "synthetic", {8192});
    ADD_FAILURE() << "a one-size band was fitted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("band from 0 bytes below 8192"), std::string::npos) << e.what();
  }
}

TEST(Network, BadFilesNameTheFieldAndWhatIsAllowed) {
  const auto message = [](nlohmann::json j) {
    try {
      parse_network(j, "net.json");
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  nlohmann::json j = network_file();
  j["links"].erase("interconnect");
  EXPECT_EQ(message(j), "net.json: /links/interconnect: missing (both link classes are required)");
  j = network_file();
  j["links"]["shared_memory"]["bandwidth_gb_s"] = 0;
  EXPECT_EQ(message(j), "net.json: /links/shared_memory/bandwidth_gb_s: must be a number > 0");
  j = network_file();
  j["links"]["interconnect"]["latency"] = 1;
  EXPECT_NE(message(j).find("/links/interconnect/latency: unknown field"), std::string::npos);
  j = network_file();
  j["links"]["shared_memory"]["collectives"]["broadcast"] = {{"alpha_us", 1}, {"bandwidth_gb_s", 1}};
  EXPECT_NE(message(j).find("/collectives/broadcast: unknown collective 'broadcast'"), std::string::npos);
  j = network_file();
  j["links"]["shared_memory"]["collectives"]["all_to_all"]["bands"] = {{{"below_bytes", 4096}, {"alpha_us", 1}, {"bandwidth_gb_s", 1}},
                                                                       {{"below_bytes", 1024}, {"alpha_us", 1}, {"bandwidth_gb_s", 1}}};
  EXPECT_EQ(message(j), "net.json: /links/shared_memory/collectives/all_to_all/bands/1/below_bytes: must grow from band to band");
}

RunConfig tiny_run() {
  RunConfig run;
  run.model.vocab_size = 64, run.model.n_layers = 2, run.model.d_model = 16, run.model.n_heads = 4;
  run.model.d_ff = 32, run.model.seq_len = 8;
  run.parallel.bucket_mib = 1024;  // one bucket
  run.parallel.overlap = false;
  return run;
}

// 1 rank: the measured compute itself; 4 dp ranks on 2 nodes: the gradient all-reduce crosses the
// interconnect, by the formula, and efficiency falls by exactly the communication's share.
TEST(Predict, StepTimeIsComputePlusItsCollectives) {
  const RunConfig run = tiny_run();
  const Network net = parse_network(network_file(), "net.json");
  Measured m;
  m.gemm = 0.3, m.elementwise = 0.1, m.optimizer = 0.05, m.other = 0.05, m.rows = 4;
  Options o;
  o.ranks_per_node = 2;
  const Prediction one = predict_step(run, m, net, {1, 1, 1}, 4, o);
  EXPECT_DOUBLE_EQ(one.step_s, 0.5);
  EXPECT_DOUBLE_EQ(one.efficiency, 1.0);

  const Prediction four = predict_step(run, m, net, {4, 1, 1}, 4, o);
  double grad_bytes = 0;  // every parameter of the tiny model trains
  const auto layout = make_param_layout(run.model);  // named: tensors() refers into it
  for (const ellm::TensorInfo& t : layout.tensors()) grad_bytes += 4.0 * t.numel;
  const AlphaBeta& ib = net.link(Link::interconnect).at(Collective::all_reduce, 1);
  const double expected_dp = collective_seconds(Collective::all_reduce, 4, grad_bytes, ib) +
                             collective_seconds(Collective::all_reduce, 4, 8, ib) +    // the loss
                             collective_seconds(Collective::all_reduce, 4, 16, ib);    // stop flags
  EXPECT_NEAR(four.dp_s, expected_dp, 1e-12);
  EXPECT_DOUBLE_EQ(four.compute_s, 0.5);  // weak scaling: the same rows per replica
  EXPECT_NEAR(four.efficiency, 0.5 / (0.5 + four.dp_s), 1e-12);  // weak: against one replica's rows
  // Strong scaling over tp = 2 inside a node: the work phases and the optimizer halve
  const Prediction tp = predict_step(run, m, net, {1, 2, 1}, 4, o);
  EXPECT_DOUBLE_EQ(tp.compute_s, 0.4 / 2 + 0.05 / 2 + 0.05);
  EXPECT_GT(tp.tp_s, 0.0);
  EXPECT_NEAR(tp.efficiency, 0.5 / (2 * tp.step_s), 1e-12);
  // no dp group: only the stop flags (world, both ranks in one node)
  EXPECT_DOUBLE_EQ(tp.dp_s, collective_seconds(Collective::all_reduce, 2, 16, net.link(Link::shared_memory).at(Collective::all_reduce, 1)));
}

TEST(Predict, CurveReachesTenThousandRanksWithTheLayoutsThatFit) {
  const RunConfig run = tiny_run();
  const Network net = parse_network(network_file(), "net.json");
  Measured m;
  m.gemm = 0.2, m.rows = 8;
  const auto curve = predict_curve(run, m, net, 2, 1, 10000, 0, {});
  ASSERT_FALSE(curve.empty());
  EXPECT_EQ(curve.front().layout.ranks(), 2);  // 1 rank cannot hold tp = 2
  EXPECT_EQ(curve.back().layout.ranks(), 10000);
  EXPECT_EQ(curve.back().layout.dp, 5000);
  for (std::size_t i = 1; i < curve.size(); i++) EXPECT_LE(curve[i].efficiency, curve[i - 1].efficiency + 1e-12);
  // strong scaling at a global batch of 8: only dp dividing 8
  const auto strong = predict_curve(run, m, net, 1, 1, 10000, 8, {});
  ASSERT_EQ(strong.size(), 4u);
  EXPECT_EQ(strong.back().rows_per_replica, 1);
  // strong: against one rank doing all 8 rows; the optimizer and `other` do not shrink with the
  // rows, so efficiency stays below 1 even where communication is negligible
  for (const Prediction& p : strong) EXPECT_LE(p.efficiency, 1.0 + 1e-12) << p.layout.ranks() << " ranks";
  m.optimizer = 0.1, m.other = 0.1;
  for (const Prediction& p : predict_curve(run, m, net, 1, 1, 8, 8, {})) {
    const double one_rank = 0.2 + 0.1 + 0.1;
    EXPECT_NEAR(p.efficiency, one_rank / (p.layout.ranks() * p.step_s), 1e-12);
    EXPECT_LE(p.efficiency, 1.0);
  }
}

}  // namespace
// Weak scaling with ZeRO-1: each replica updates 1/dp of the weights, so its step can be shorter
// than one rank's alone; the reference keeps that share and the efficiency stays at most 1.
TEST(Predict, WeakScalingEfficiencyWithZero1StaysAtMostOne) {
  RunConfig run = tiny_run();
  run.parallel.zero1 = true;
  const Network net = parse_network(network_file(), "net.json");
  Measured m;
  m.gemm = 0.1, m.optimizer = 1.0, m.rows = 4;  // optimizer-heavy: sharding it saves more than the collectives cost
  for (const Prediction& p : predict_curve(run, m, net, 1, 1, 64, 0, {})) {
    EXPECT_LE(p.efficiency, 1.0 + 1e-12) << p.layout.ranks() << " ranks";
    EXPECT_GT(p.efficiency, 0.0);
  }
}

}  // namespace ellm::predict

